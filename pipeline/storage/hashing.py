"""Streaming SHA-256: copy and hash in one read, and re-read a stored copy from the disk.

Blocks of a few MiB keep memory flat whatever the file size (a few blocks in flight per
stream). Each pass runs its two halves in two threads, a block apart: the copy hashes a block
while the one before is being written, the re-read hashes a block while the next one is read.
hashlib and file I/O release the GIL, so the halves really overlap (on a 1 GiB file this took
the store's copy-hash-fsync-verify from ~370 to ~600 MB/s; see BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import SourceChanged, SourceError
from pipeline.models import Digest

ALGORITHM = "sha256"

#: Blocks in flight per stream: one being filled, one being drained, one spare so neither
#: side waits for the other on every block.
_DEPTH = 3


def subject_of(source: Path | BinaryIO) -> Path:
    """What an error about a source names: its path, or the text name of an open file."""
    return source if isinstance(source, Path) else Path(str(source.name))


def copy_and_hash(source: Path | BinaryIO, target: BinaryIO, block_size: int) -> Digest:
    """Copy ``source`` into the open ``target`` and hash it in the same pass.

    ``source`` is a path, or a file already opened for reading (a dock file opened without
    following links, see pipeline.dockfs: its ``name`` is the text that errors show).
    Raises SourceError when the source cannot be read or changes while it is read: a file
    still being written by the dock must not be taken with half its bytes. An error writing
    ``target`` (a full archive disk) is the OSError it is: the store's failure, not the file's.
    """
    if isinstance(source, Path):
        with _reading(source):
            src = source.open("rb", buffering=0)
        with src:
            return _copy_and_hash(src, source, target, block_size, restat=source.stat)
    return _copy_and_hash(source, subject_of(source), target, block_size)


def _copy_and_hash(
    src: BinaryIO,
    subject: Path,
    target: BinaryIO,
    block_size: int,
    restat: Callable[[], os.stat_result] | None = None,
) -> Digest:
    stat_now = restat or (lambda: os.fstat(src.fileno()))
    digest = hashlib.sha256()
    with _reading(subject):
        before = stat_now()

    def read_and_hash(buffer: bytearray) -> int:
        with _reading(subject):
            n = src.readinto(buffer) or 0  # type: ignore[attr-defined]
        digest.update(memoryview(buffer)[:n])
        return n

    size = _overlapped(read_and_hash, _writer(target), block_size, before.st_size)
    with _reading(subject):
        after = stat_now()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or (
        size != after.st_size
    ):
        raise SourceChanged(subject, "changed while being read (still being written?)")
    return Digest(digest.hexdigest(), size)


def hash_file(path: Path, block_size: int, *, from_disk: bool = False) -> Digest:
    """Hash a file. ``from_disk`` first drops its pages from the OS cache, so the bytes
    compared are the ones on the disk, not the ones we just wrote from memory."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as f:
        if from_disk and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

        def read(buffer: bytearray) -> int:
            return f.readinto(buffer) or 0

        size = _overlapped(read, digest.update, block_size, os.fstat(f.fileno()).st_size)
    return Digest(digest.hexdigest(), size)


@contextmanager
def _reading(source: Path) -> Iterator[None]:
    """An OSError here means the dock's file cannot be read."""
    try:
        yield
    except OSError as exc:
        raise SourceError(source, f"cannot read: {exc.strerror or exc}") from exc


def _overlapped(
    fill: Callable[[bytearray], int],
    drain: Callable[[memoryview], object],
    block_size: int,
    expected_size: int,
) -> int:
    """Fill blocks in this thread and drain them, in order, in a helper thread; return the
    bytes filled. A block is refilled only once its drain is done; errors of either side
    come out here."""
    if expected_size <= block_size:
        # One block: nothing to overlap, and handing it to a thread only costs a wake-up.
        # The buffer is no larger than the file: a new bytearray is zeroed, which would
        # cost a small file more than copying it.
        return _in_turn(fill, drain, max(1, expected_size))
    buffers = [bytearray(block_size) for _ in range(_DEPTH)]
    draining: deque[Future[object]] = deque()
    size = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drain") as helper:
        for buffer in itertools.cycle(buffers):
            if len(draining) == _DEPTH:
                draining.popleft().result()
            n = fill(buffer)
            if n == 0:
                break
            size += n
            draining.append(helper.submit(drain, memoryview(buffer)[:n]))
        for pending in draining:
            pending.result()
    return size


def _in_turn(
    fill: Callable[[bytearray], int], drain: Callable[[memoryview], object], buffer_size: int
) -> int:
    buffer = bytearray(buffer_size)
    size = 0
    while n := fill(buffer):
        drain(memoryview(buffer)[:n])
        size += n
    return size


def _writer(target: BinaryIO) -> Callable[[memoryview], None]:
    """Write blocks to ``target`` and start putting each on the disk at once.

    POSIX_FADV_DONTNEED on freshly written (dirty) pages makes Linux start their writeback
    without waiting for it (PostgreSQL's pg_flush_data uses it the same way): the disk
    works while the next blocks are hashed, and the fsync that follows waits for the last
    few blocks instead of the whole file.
    """
    try:
        fd: int | None = target.fileno()
    except (OSError, ValueError):
        fd = None  # not a real file: nothing to hint
    written = 0

    def write(block: memoryview) -> None:
        nonlocal written
        start, rest = written, block
        while rest:
            rest = rest[target.write(rest) :]
        written += len(block)
        if fd is not None and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, start, len(block), os.POSIX_FADV_DONTNEED)

    return write
