"""Stations, recorders and the dump folders they fill: registry, layout parsing, watchers."""
