"""Uploads from pushing docking stations (the station API, docs/station-api.md).

``receive`` holds the bytes of uploads in progress; ``usecases`` is what a station and an
admin do. A whole, checked upload is moved into the station's intake folder, a dump folder
like any other: from there the station's ingest takes it (pipeline.ingest).
"""
