"""Which files on a station's dump folder are candidates for ingest.

A sweep takes every regular file below the station root, except names matching the ignore
patterns (partial uploads, temporary and hidden files) and the ``.ingested`` folder where
released sources go. A file changed within the last ``stable_s`` seconds is still being
written: it is reported as waiting, never silently skipped.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.ingest import INGESTED_DIR
from pipeline.models import SourceFile, Station


def is_ignored(name: str, patterns: Iterable[str]) -> bool:
    """True when a file name (not a path) matches one of the ignore patterns."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class Scan:
    ready: tuple[SourceFile, ...]
    waiting: tuple[SourceFile, ...]  # changed too recently: still being written


def scan_station(
    station: Station,
    ignore: Iterable[str],
    stable_s: float,
    only: Iterable[Path] | None = None,
    now: float | None = None,
) -> Scan:
    """List the station's candidate files, oldest first (the order they were recorded)."""
    patterns = tuple(ignore)
    clock = time.time() if now is None else now
    paths = _walk(station.root, patterns) if only is None else _existing(only, patterns)
    ready: list[SourceFile] = []
    waiting: list[SourceFile] = []
    for path in paths:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # vanished between listing and stat: not ours to ingest any more
        source = SourceFile(station.id, path, st.st_size, st.st_mtime_ns)
        (waiting if clock - st.st_mtime < stable_s else ready).append(source)
    ready.sort(key=lambda s: (s.mtime_ns, str(s.path)))
    return Scan(tuple(ready), tuple(waiting))


def _walk(root: Path, patterns: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        # Never descend into released sources or hidden folders.
        dirnames[:] = sorted(
            d for d in dirnames if d != INGESTED_DIR and not is_ignored(d, patterns)
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not is_ignored(name, patterns) and path.is_file() and not path.is_symlink():
                yield path


def _existing(paths: Iterable[Path], patterns: tuple[str, ...]) -> Iterator[Path]:
    for path in paths:
        if INGESTED_DIR in path.parts or is_ignored(path.name, patterns):
            continue
        if path.is_file() and not path.is_symlink():
            yield path
