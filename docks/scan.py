"""Which files on a station's dump folder are candidates for ingest.

A sweep takes every regular file below the station root, except names matching the ignore
patterns (partial uploads, temporary and hidden files) and the ``.ingested`` folder where
released sources go. Nothing is skipped in silence:

- a file changed within the last ``stable_s`` seconds, or one a process still holds open for
  writing, is still being written: it is reported as waiting;
- a symbolic link, FIFO, socket or device file is never followed nor read: it is reported as
  refused, with what it is;
- a folder that cannot be read is reported too.

The walk goes by directory descriptors and never follows a link (see pipeline.dockfs), so a
name of any length or encoding, and a link swapped in mid-walk, are handled like any other.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import names
from pipeline.errors import SourceError
from pipeline.ingest import dockfs
from pipeline.ingest.steps import INGESTED_DIR
from pipeline.ingest.writers import open_for_writing
from pipeline.models import FileReport, Outcome, SourceFile, Station


def is_ignored(name: str, patterns: Iterable[str]) -> bool:
    """True when a file name (not a path) matches one of the ignore patterns."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class Scan:
    ready: tuple[SourceFile, ...]
    waiting: tuple[SourceFile, ...]  # changed too recently, or open for writing
    refused: tuple[FileReport, ...] = ()  # links, special files, unreadable folders
    writing: frozenset[Path] = field(default_factory=frozenset)  # waiting: held open

    def waiting_reason(self, source: SourceFile, min_age: float) -> str:
        if source.path in self.writing:
            return "仍在写入 still open for writing by a process on this machine"
        return f"仍在写入 still being written (changed within {min_age:g} s)"


def scan_station(
    station: Station,
    ignore: Iterable[str],
    stable_s: float,
    only: Iterable[Path] | None = None,
    now: float | None = None,
    *,
    encodings: Sequence[str] = names.DEFAULT_ENCODINGS,
    writer_check: bool = True,
) -> Scan:
    """List the station's candidate files, oldest first (the order they were recorded)."""
    patterns = tuple(ignore)
    clock = time.time() if now is None else now
    refused: list[FileReport] = []
    root = station.root
    entries = _walk(root, patterns, refused) if only is None else _named(root, only, patterns)
    # Read from /proc once there is a file to judge: an empty dump folder, what a watcher's
    # sweep meets most of the day, costs no scan of every process's open files.
    writers: set[tuple[int, int]] | None = None if writer_check else set()
    ready: list[SourceFile] = []
    waiting: list[SourceFile] = []
    writing: set[Path] = set()
    for path, st in entries:
        shown = names.readable(path, encodings)
        if st is None:
            continue  # vanished between listing and stat: not ours to ingest any more
        if isinstance(st, BaseException):
            refused.append(FileReport(shown, Outcome.REFUSED, reason=str(st)))
            continue
        if not stat.S_ISREG(st.st_mode):
            refused.append(
                FileReport(
                    shown, Outcome.REFUSED, reason=f"{dockfs.kind_of(st.st_mode)}: 不读取 not read"
                )
            )
            continue
        source = SourceFile.seen(station.id, path, st, shown)
        if writers is None:
            writers = open_for_writing([root])
        if (st.st_dev, st.st_ino) in writers:
            writing.add(path)
            waiting.append(source)
        elif clock - st.st_mtime < stable_s:
            waiting.append(source)
        else:
            ready.append(source)
    ready.sort(key=lambda s: (s.mtime_ns, s.shown))
    return Scan(tuple(ready), tuple(waiting), tuple(refused), frozenset(writing))


Entry = tuple[Path, "os.stat_result | BaseException | None"]


def _walk(root: Path, patterns: tuple[str, ...], refused: list[FileReport]) -> Iterator[Entry]:
    def unreadable(exc: OSError) -> None:
        where = names.readable(exc.filename or root)
        refused.append(
            FileReport(
                where, Outcome.REFUSED, reason=f"文件夹不可读 folder unreadable: {exc.strerror}"
            )
        )

    # fwalk: every step relative to the folder's descriptor, never following a link.
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, onerror=unreadable):
        # Never descend into released sources or hidden folders; fwalk lists a link to a
        # folder among the folders (and would pass over it without a word): report it.
        for d in [d for d in dirnames if d != INGESTED_DIR and not is_ignored(d, patterns)]:
            try:
                entry = os.stat(d, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(entry.st_mode):
                dirnames.remove(d)
                yield Path(dirpath) / d, entry
        dirnames[:] = sorted(
            d for d in dirnames if d != INGESTED_DIR and not is_ignored(d, patterns)
        )
        if Path(dirpath) == root and _not_a_folder(INGESTED_DIR, dirfd):
            filenames = [n for n in filenames if n != INGESTED_DIR]
            problem = SourceError(
                root / INGESTED_DIR,
                ".ingested 不是文件夹 is not a folder (a file or a link): "
                "released files cannot be moved there",
            )
            yield root / INGESTED_DIR, problem
        for name in sorted(filenames):
            if is_ignored(name, patterns):
                continue
            try:
                st: os.stat_result | None = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            except OSError as exc:
                yield (
                    Path(dirpath) / name,
                    SourceError(
                        Path(names.readable(Path(dirpath) / name)), f"cannot stat: {exc.strerror}"
                    ),
                )
                continue
            yield Path(dirpath) / name, st


def _not_a_folder(name: str, dirfd: int) -> bool:
    try:
        return not stat.S_ISDIR(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _named(root: Path, paths: Iterable[Path], patterns: tuple[str, ...]) -> Iterator[Entry]:
    for path in paths:
        if INGESTED_DIR in path.parts or is_ignored(path.name, patterns):
            continue
        try:
            yield path, dockfs.lstat_in_dock(root, path)
        except FileNotFoundError:
            continue
        except SourceError as exc:
            yield path, exc
        except OSError as exc:
            yield path, SourceError(Path(names.readable(path)), f"cannot stat: {exc.strerror}")
