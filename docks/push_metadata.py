"""What the dock agent tells the server besides the bytes (docs/station-api.md).

``register`` and ``keepalive`` carry the station's state: its software, free disk, queue and
recorders. Each recorder is known by its folder in the dump folder and, when the station's USB
reader wrote one, by the ``recorder.json`` inside it (station data, not evidence: never
uploaded). Each upload's tus metadata names the file: digest, readable path, mtime, when it was
docked, and its recorder's identity.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

from docks.push_state import Entry, StateFile
from docks.scan import is_ignored
from pipeline import names
from pipeline.errors import SourceError
from pipeline.ingest import dockfs
from pipeline.ingest.steps import INGESTED_DIR
from pipeline.models import SourceFile

#: Written by the station's USB reader into each recorder folder: station data, not evidence.
RECORDER_FILE = "recorder.json"


def station_info(
    root: Path,
    state: StateFile,
    *,
    ignore: Sequence[str],
    encodings: Sequence[str],
    software_version: str,
) -> dict[str, Any]:
    """The body of ``register`` and ``keepalive``; ``software_version`` when this package's
    own version is unknown."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        software = version("evidence-pipeline")
    except PackageNotFoundError:
        software = software_version
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = 0
    recorders = [
        {"serial": r["serial"], "officer_number": r.get("officer", ""),
         "unit_number": r.get("unit", "")}
        for r in (recorder_identity(root, f, encodings) for f in recorder_folders(root, ignore))
    ][:200]  # fmt: skip
    with state.lock:
        queue = len(state.files)
    return {
        "software_version": software,
        "free_disk_bytes": free,
        "queue_length": queue,
        "recorders": recorders,
    }


def recorder_folders(root: Path, ignore: Sequence[str]) -> list[str]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    return sorted(
        e.name
        for e in entries
        if e.is_dir(follow_symlinks=False)
        and e.name != INGESTED_DIR
        and not is_ignored(e.name, ignore)
    )


def recorder_identity(root: Path, folder: str, encodings: Sequence[str]) -> dict[str, str]:
    """The recorder's identity as the station's USB reader wrote it, else the folder's
    name as its serial."""
    identity = {"serial": names.readable(folder, encodings)}
    path = root / folder / RECORDER_FILE
    try:
        handle, found = dockfs.open_in_dock(root, path, str(path))
        with handle:
            data = json.loads(handle.read(64 << 10)) if found.size <= 64 << 10 else None
    except (SourceError, OSError, ValueError):
        return identity
    if isinstance(data, dict):
        for key, ours in (("serial", "serial"), ("officer_number", "officer"),
                          ("unit_number", "unit")):  # fmt: skip
            value = data.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                identity[ours] = str(value)
    return identity


def upload_metadata(
    root: Path, rel: str, source: SourceFile, entry: Entry, encodings: Sequence[str]
) -> dict[str, str]:
    """The tus ``Upload-Metadata`` of the file at ``rel`` (relative to the dump folder)."""
    parts = PurePath(rel).parts
    docked_ns = source.ctime_ns or entry.mtime_ns
    metadata = {
        "sha256": entry.sha256,
        "path": "/".join(names.readable(p, encodings) for p in parts),
        "mtime": _seconds(entry.mtime_ns),
        "docked_at": datetime.fromtimestamp(docked_ns / 1e9, UTC).isoformat(),
    }
    if len(parts) > 1:
        metadata.update(recorder_identity(root, parts[0], encodings))
    return metadata


def _seconds(ns: int) -> str:
    """Seconds since the epoch, exact to the nanosecond the station's file system gave."""
    whole, frac = divmod(ns, 10**9)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") if frac else str(whole)
