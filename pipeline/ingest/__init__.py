"""One file from a dock into the archive: the durable steps (``steps``), reading a dock
without trusting it (``dockfs``, ``writers``), who recorded it and when (``identify``), and
quarantine (``quarantine``, with its use cases)."""

from pipeline.ingest.steps import (
    INGESTED_DIR,
    IngestContext,
    catalogue_job,
    ingest_job,
    open_context,
    prepare,
    store_job,
)

__all__ = [
    "INGESTED_DIR",
    "IngestContext",
    "catalogue_job",
    "ingest_job",
    "open_context",
    "prepare",
    "store_job",
]
