"""The bytes of uploads in progress: part files, their running SHA-256, a lock per upload.

One PATCH is one *chunk*, taken whole or not at all: its bytes are written at the upload's
offset as they arrive, but they count (the offset moves, in the catalog) only once they match
the chunk's ``Upload-Checksum`` and are on disk (fdatasync). A chunk cut off mid-stream or
with a wrong checksum is cut off the part file again, so the offset a station reads from HEAD
is always the end of bytes that were checked and kept.

The whole file's SHA-256 runs along chunk by chunk (kept per upload in this process; after a
restart it is recomputed from the part file once), so completing a 1 GiB upload costs no
second read. Part files live in ``settings.uploads_dir``, never in a dump folder: a sweep sees
an upload only once it is whole, checked and renamed into the station's intake folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.catalog.uploads import UploadRow
from pipeline.errors import (
    ChunkChecksumMismatch,
    OffsetMismatch,
    StorageError,
    TooManyUploads,
    UploadBusy,
    UploadRefused,
    UploadTooLarge,
)
from pipeline.models import Station
from pipeline.settings import Settings

#: Checksum algorithms a PATCH may name (tus checksum extension: SHA-1 is the one required).
ALGORITHMS = ("sha256", "sha1")
_READ = 4 << 20


def _writeback_starter() -> Callable[[int, int, int], None]:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE): start writing a range to the disk now,
    without waiting. Called after each piece, it keeps the disk busy while the rest of the
    chunk arrives, so the fdatasync that makes the chunk count waits for little (without it
    that wait was most of an 8 MiB chunk's time on the wire: benchmark 8). A no-op where
    the call does not exist."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.sync_file_range
    except (OSError, AttributeError):
        return lambda _fd, _offset, _count: None
    call.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, count: int) -> None:
        call(fd, offset, count, 2)  # SYNC_FILE_RANGE_WRITE; a failure only loses the head start

    return start


_start_writeback = _writeback_starter()


def checked_relative(station_id: str, text: str, ignore: list[str]) -> PurePosixPath:
    """The path a station gave, if it can be a dump-folder path: relative, ``/``-separated,
    no ``..``, no hidden or ignored name (a sweep would never take such a file, so it would
    sit in the intake unseen)."""
    import fnmatch

    if not text or len(text.encode("utf-8", "surrogatepass")) > 4096 or "\\" in text:
        raise UploadRefused(station_id, f"路径无效 path {text[:80]!r}: empty, too long or has '\\'")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise UploadRefused(station_id, "路径无效 path holds NUL or undecodable characters")
    path = PurePosixPath(text)
    if path.is_absolute() or not path.parts:
        raise UploadRefused(station_id, f"路径无效 path {text[:80]!r} is not relative")
    for part in path.parts:
        if part in (".", "..") or part.startswith(".") or len(part.encode()) > 255:
            raise UploadRefused(station_id, f"路径无效 path {text[:80]!r}: {part[:40]!r}")
    if any(fnmatch.fnmatchcase(path.name, p) for p in ignore):
        raise UploadRefused(
            station_id, f"路径无效 {path.name!r} matches ingest.ignore: a sweep never takes it"
        )
    return path


@dataclass
class _Running:
    offset: int
    hasher: Any  # hashlib._Hash


class Receiver:
    """What one server process keeps of the uploads it receives: the running SHA-256 of
    each, and how many chunks each station sends at once (``dock.max_concurrent_uploads``).
    A second process serving the same home is safe (an upload is locked with ``flock``
    while a chunk is written), only its concurrency count is its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.uploads_dir
        self._lock = threading.Lock()
        self._running: dict[str, _Running] = {}
        self._active: dict[str, int] = {}
        self._alerted: dict[tuple[str, ...], float] = {}

    def should_alert(self, key: tuple[str, ...], now: float, every_s: float = 60.0) -> bool:
        """Whether a refusal deserves a custody alert now: once a minute per kind of
        refusal and origin, so that a station retrying a bad token all night (or someone
        trying tokens) cannot fill the custody log."""
        with self._lock:
            last = self._alerted.get(key)
            if last is not None and now - last < every_s:
                return False
            self._alerted[key] = now
            return True

    def active(self, station_id: str) -> int:
        """Chunks of the station being received now."""
        with self._lock:
            return self._active.get(station_id, 0)

    def part(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.part"

    def create(self, upload_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(
            self.part(upload_id), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
        os.close(fd)

    def offset(self, upload: UploadRow) -> int:
        """The offset to resume from: what the catalog counts, unless the disk holds less."""
        try:
            size = os.stat(self.part(upload.id)).st_size
        except FileNotFoundError:
            size = 0
        return min(upload.received, size)

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._running.pop(upload_id, None)

    def remove(self, upload_id: str) -> None:
        self.forget(upload_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.part(upload_id))

    @contextlib.contextmanager
    def chunk(
        self,
        upload: UploadRow,
        offset: int,
        checksum: tuple[str, bytes] | None,
        counted: Callable[[], int] | None = None,
    ) -> Iterator[Chunk]:
        """A chunk of ``upload`` starting at ``offset``: write it, then ``keep()`` it; left
        without ``keep()`` (an error, a cut connection) it is cut off the part file again.
        ``counted`` reads the offset the catalog counts once the upload is locked: a row
        read before the lock may be stale, and cutting the file at a stale offset would
        drop bytes another request had just added."""
        station_id = upload.station_id
        with self._lock:
            active = self._active.get(station_id, 0)
            if active >= self.settings.dock.max_concurrent_uploads:
                raise TooManyUploads(
                    station_id,
                    f"同时上传过多 too many uploads at once (at most "
                    f"{self.settings.dock.max_concurrent_uploads} per station): retry later",
                )
            self._active[station_id] = active + 1
        try:
            with self._open(upload) as fd:
                if counted is not None:
                    upload = replace(upload, received=counted())
                have = os.fstat(fd).st_size
                if have < upload.received:
                    # The disk lost what the catalog counted (it should not: each chunk is
                    # synced before it counts): resume from what is there.
                    raise OffsetMismatch(
                        station_id, f"upload {upload.id}: resume from {have}", have
                    )
                if offset != upload.received:
                    raise OffsetMismatch(
                        station_id,
                        f"偏移不符 offset {offset} is not the upload's {upload.received}",
                        upload.received,
                    )
                if have > offset:
                    os.ftruncate(fd, offset)  # an earlier chunk cut off before it counted
                running = self._running_hash(upload, fd)
                found = Chunk(self, upload, fd, offset, running.copy(), checksum)
                try:
                    yield found
                finally:
                    if not found.kept:
                        os.ftruncate(fd, offset)
        finally:
            with self._lock:
                self._active[station_id] -= 1

    @contextlib.contextmanager
    def _open(self, upload: UploadRow) -> Iterator[int]:
        try:
            fd = os.open(self.part(upload.id), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StorageError(f"upload {upload.id}: its part file is missing") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UploadBusy(
                    upload.station_id,
                    f"上传进行中 upload {upload.id} is being written by another request",
                ) from None
            yield fd
        finally:
            os.close(fd)  # also releases the lock

    def _running_hash(self, upload: UploadRow, fd: int) -> Any:
        with self._lock:
            known = self._running.get(upload.id)
        if known is not None and known.offset == upload.received:
            return known.hasher
        hasher = hashlib.sha256()
        done = 0
        while done < upload.received:
            block = os.pread(fd, min(_READ, upload.received - done), done)
            if not block:
                break
            hasher.update(block)
            done += len(block)
        return hasher

    def _kept(self, upload_id: str, offset: int, hasher: Any) -> None:
        with self._lock:
            self._running[upload_id] = _Running(offset, hasher)


class Chunk:
    """One PATCH's bytes on their way to the part file."""

    def __init__(
        self,
        receiver: Receiver,
        upload: UploadRow,
        fd: int,
        start: int,
        running: Any,
        checksum: tuple[str, bytes] | None,
    ) -> None:
        self.receiver = receiver
        self.upload = upload
        self.start = start
        self.end = start
        self.kept = False
        self._fd = fd
        self._running = running
        self._checksum = checksum
        self._hasher = hashlib.new(checksum[0]) if checksum else None

    def write(self, data: bytes | bytearray) -> None:
        if self.end + len(data) > self.upload.size:
            raise UploadTooLarge(
                self.upload.station_id,
                f"超出声明长度 more bytes than the upload's length {self.upload.size}",
            )
        view = memoryview(data)
        start = self.end
        while view:
            written = os.pwrite(self._fd, view, self.end)
            self.end += written
            view = view[written:]
        _start_writeback(self._fd, start, self.end - start)
        self._running.update(data)
        if self._hasher is not None:
            self._hasher.update(data)

    def keep(self) -> str | None:
        """Check the chunk's checksum and put it on disk; the whole file's SHA-256 once it is
        complete. ChunkChecksumMismatch leaves the chunk to be cut off."""
        if self._checksum is not None and self._hasher is not None:
            algorithm, expected = self._checksum
            if self._hasher.digest() != expected:
                raise ChunkChecksumMismatch(
                    self.upload.station_id,
                    f"分块校验失败 {algorithm} of bytes {self.start}..{self.end} of upload "
                    f"{self.upload.id} does not match Upload-Checksum: send them again",
                )
        os.fdatasync(self._fd)
        self.kept = True
        self.receiver._kept(self.upload.id, self.end, self._running)
        return self._running.hexdigest() if self.end == self.upload.size else None


def place(receiver: Receiver, station: Station, upload: UploadRow) -> Path | None:
    """Move a whole, checked upload into the station's intake folder, with the station's
    mtime; None while a file of that name is still there (not yet ingested)."""
    relative = PurePosixPath(upload.path)
    target = station.root.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = receiver.part(upload.id)
    os.utime(part, (upload.mtime, upload.mtime))
    try:
        os.link(part, target)  # never over a file still waiting there (rename would be)
    except FileExistsError:
        return None
    except OSError as exc:
        raise StorageError(
            f"upload {upload.id}: cannot move it into the intake folder: {exc.strerror}"
        ) from exc
    os.unlink(part)
    fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)  # the move survives a crash: the catalog says it was placed
    finally:
        os.close(fd)
    receiver.forget(upload.id)
    return target
