"""The evidence domain: hashing, probing, transcoding, storage, catalog, custody, ingest.

Nothing here imports Prefect, watchdog or an interface framework: every step is a plain
function over plain values, so it is testable without a server.
"""
