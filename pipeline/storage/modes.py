"""The instance's files are its own: nobody else on the host reads them.

Access supervision (调阅监督) records every viewing; a file another user can read is a
viewing nobody records. So the data folder is 0700, the catalog (descriptions, GPS, the
custody log) 0600 with its ``-wal`` and ``-shm``, originals 0400 (read-only as well),
proxies, thumbnails, logs and the checkpoint witness 0600, every folder 0700.

:func:`make_private` sets these modes on what exists (``evidence init``, which also fixes an
older home); :func:`check_modes` finds what is open (``evidence verify``). The CLI sets the
umask to 077, so what an instance creates later is private from the start.
"""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from sqlalchemy.engine import make_url

from pipeline.custody.verify_bag import Problem
from pipeline.settings import Settings
from pipeline.storage.local import DERIVED_MODE, FOLDER_MODE, ORIGINAL_MODE

#: The umask of every process of the instance: nothing it creates is for group or others.
UMASK = 0o077
#: Files that hold evidence or its record: the catalog, logs, the witness, keys.
PRIVATE_FILE_MODE = 0o600
#: How many originals (and derived objects) :func:`check_modes` looks at: a bounded sample,
#: so that verify stays quick with a million of them; :func:`make_private` walks them all.
SAMPLE = 1000

#: Mode bits nobody but the owner may hold.
_OPEN = stat.S_IRWXG | stat.S_IRWXO
_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def witness_file(home: Path) -> Path:
    """The home file of signed checkpoints (``pipeline.custody.witness.home_file``)."""
    return home / "custody" / "checkpoints.jsonl"


def catalog_files(settings: Settings) -> list[Path]:
    """The SQLite catalog and its journal files; none for a PostgreSQL catalog."""
    url = make_url(settings.catalog_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return []
    db = Path(url.database)
    return [db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


@dataclass(frozen=True)
class Expected:
    """A path and the mode it should have."""

    path: Path
    mode: int
    read_only: bool = False  # an original: no write bit either


def _fixed(settings: Settings) -> Iterator[Expected]:
    """What is checked every time: the folders and the files that are few."""
    home = settings.home
    for folder in (
        home,
        settings.log_dir,
        settings.prefect_home,
        home / "keys",
        home / "custody",
        settings.archive_dir,
        settings.archive_dir / "originals",
        settings.archive_dir / "derived",
        settings.archive_dir / "tmp",
        settings.s3_work_dir,
    ):
        yield Expected(folder, FOLDER_MODE)
    for path in catalog_files(settings):
        yield Expected(path, PRIVATE_FILE_MODE)
    yield Expected(witness_file(home), PRIVATE_FILE_MODE)
    yield Expected(home / "keys" / "instance.key", PRIVATE_FILE_MODE)


def _walk(root: Path, limit: int | None, shuffle: bool = False) -> Iterator[os.DirEntry[str]]:
    """Entries under ``root`` (folders before what they hold), at most ``limit`` files; the
    folders of each level in random order when ``shuffle``, so that successive bounded checks
    look at different originals."""
    files = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                folders = []
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry)
                        yield entry
                    elif entry.is_file(follow_symlinks=False):
                        yield entry
                        files += 1
                        if limit is not None and files >= limit:
                            return
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        if shuffle:
            random.shuffle(folders)
        stack.extend(f.path for f in folders)


def _archive(settings: Settings, limit: int | None) -> Iterator[Expected]:
    """The archive's folders and files: originals read-only, derived objects 0600."""
    archive = settings.archive_dir
    for root, mode, read_only, shuffle in (
        (archive / "originals", ORIGINAL_MODE, True, True),
        # One folder per original: a million entries, read in the order the disk gives.
        (archive / "derived", DERIVED_MODE, False, False),
    ):
        for entry in _walk(root, limit, shuffle):
            if entry.is_dir(follow_symlinks=False):
                yield Expected(Path(entry.path), FOLDER_MODE)
            else:
                yield Expected(Path(entry.path), mode, read_only)


def _logs(settings: Settings, limit: int | None) -> Iterator[Expected]:
    for entry in _walk(settings.log_dir, limit):
        is_dir = entry.is_dir(follow_symlinks=False)
        yield Expected(Path(entry.path), FOLDER_MODE if is_dir else PRIVATE_FILE_MODE)


def _subject(path: Path, home: Path) -> str:
    try:
        return str(path.relative_to(home)) if path != home else "."
    except ValueError:
        return str(path)


def _present(settings: Settings, limit: int | None) -> Iterator[tuple[Expected, int]]:
    """What should have a mode and exists (links are not followed, nor changed), with the
    mode it has."""
    for expected in chain(_fixed(settings), _archive(settings, limit), _logs(settings, limit)):
        try:
            st = expected.path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(st.st_mode):
            yield expected, stat.S_IMODE(st.st_mode)


def check_modes(settings: Settings, *, sample: int = SAMPLE) -> list[Problem]:
    """Every path of the instance that others can reach, or an original that can be written:
    the data folder and its folders, the catalog files, the keys, the witness file, the logs,
    and a bounded sample of ``sample`` originals and of as many derived objects (folders
    picked at random at each level: successive runs cover the archive).

    E-MODE-OPEN: group or others have a permission; E-MODE-WRITABLE: an original has a write
    bit. The subject is the path relative to the data folder."""
    problems: list[Problem] = []
    home = settings.home
    for expected, mode in _present(settings, sample):
        subject = _subject(expected.path, home)
        want = f"{expected.mode:04o}"
        if mode & _OPEN:
            problems.append(
                Problem(
                    "E-MODE-OPEN",
                    subject,
                    f"mode {mode:04o} lets other users reach it; it should be {want} "
                    "(evidence init fixes it)",
                )
            )
        elif expected.read_only and mode & _WRITE:
            problems.append(
                Problem(
                    "E-MODE-WRITABLE",
                    subject,
                    f"an original with mode {mode:04o} can be written; it should be {want} "
                    "(evidence init fixes it)",
                )
            )
    return problems


def make_private(settings: Settings) -> int:
    """Give everything of the instance that exists its mode (the folders, the catalog files,
    keys, witness, logs, every original and derived object: a whole walk, for ``evidence
    init`` on an older home). Returns how many paths changed."""
    changed = 0
    for expected, mode in _present(settings, None):
        if mode != expected.mode:
            expected.path.chmod(expected.mode)
            changed += 1
    return changed
