"""Streaming SHA-256: copy and hash in one read, and re-read a stored copy from the disk.

Blocks of a few MiB keep memory flat whatever the file size; hashlib releases the GIL on
large updates, so files hashed in parallel threads use several cores.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import SourceChanged, SourceError
from pipeline.models import Digest

ALGORITHM = "sha256"


def copy_and_hash(source: Path, target: BinaryIO, block_size: int) -> Digest:
    """Copy ``source`` into the open ``target`` and hash it in the same pass.

    Raises SourceError when the source cannot be read or changes while it is read: a file
    still being written by the dock must not be taken with half its bytes.
    """
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(block_size)
    view = memoryview(buffer)
    try:
        before = source.stat()
        with source.open("rb", buffering=0) as src:
            while n := src.readinto(buffer):
                chunk = view[:n]
                digest.update(chunk)
                target.write(chunk)
                size += n
        after = source.stat()
    except OSError as exc:
        raise SourceError(source, f"cannot read: {exc.strerror or exc}") from exc
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) or (
        size != after.st_size
    ):
        raise SourceChanged(source, "changed while being read (still being written?)")
    return Digest(digest.hexdigest(), size)


def hash_file(path: Path, block_size: int, *, from_disk: bool = False) -> Digest:
    """Hash a file. ``from_disk`` first drops its pages from the OS cache, so the bytes
    compared are the ones on the disk, not the ones we just wrote from memory."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(block_size)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        if from_disk and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while n := f.readinto(buffer):
            digest.update(view[:n])
            size += n
    return Digest(digest.hexdigest(), size)
