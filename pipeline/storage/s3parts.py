"""Uploads checked part by part against SHA-256s of our own, taken before the upload.

A first read of the source computes the file's SHA-256 (its key) and the SHA-256 of every
multipart part. The upload reads the bytes again and sends every part (or the single PUT)
with its SHA-256 from the first read: the server refuses a body that differs, so what it
stores is exactly what was hashed, whatever happened to the bytes in between.

Why not boto3's managed transfer (``upload_file`` + TransferConfig) for originals: it computes
each part's checksum from the bytes it reads for the upload, so bytes changed or damaged after
the first read (a dock file rewritten in place, a bad disk) would be accepted, published under
the original's key and locked there for months before any check after the upload objected.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.models import Digest
from pipeline.storage.hashing import copy_and_hash
from pipeline.storage.s3client import S3Client, b64

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: S3 allows at most this many parts in one upload.
MAX_PARTS = 10_000

#: Reads ``size`` bytes at ``offset`` of the source (fewer only at its end).
ReadAt = Callable[[int, int], bytes]


class PartHashes:
    """SHA-256 of each ``part_size`` slice of a byte stream fed in blocks of any size."""

    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self._done: list[bytes] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, data: memoryview) -> None:
        while data:
            take = min(len(data), self.part_size - self._filled)
            self._current.update(data[:take])
            self._filled += take
            data = data[take:]
            if self._filled == self.part_size:
                self._done.append(self._current.digest())
                self._current, self._filled = hashlib.sha256(), 0

    def digests(self) -> tuple[bytes, ...]:
        """Every part's digest; a last partial part, or an empty stream, is one part."""
        tail = (self._current.digest(),) if self._filled or not self._done else ()
        return (*self._done, *tail)


class _PartSink(io.RawIOBase):
    """Where the hashing read "copies" to: the part hashes, no file. (It has no descriptor,
    so the copy gives no write-back hints.)"""

    def __init__(self, parts: PartHashes) -> None:
        super().__init__()
        self._parts = parts

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        view = memoryview(data).cast("B")
        self._parts.update(view)
        return len(view)


@dataclass(frozen=True)
class Hashed:
    """A source read once, with the digests the server must confirm."""

    digest: Digest
    parts: tuple[bytes, ...]
    part_size: int

    @property
    def checksum(self) -> str:
        """The ChecksumSHA256 of a single PUT: the whole object's SHA-256."""
        return b64(bytes.fromhex(self.digest.sha256))

    @property
    def composite_checksum(self) -> str:
        """The ChecksumSHA256 S3 reports for a multipart object: the SHA-256 of the parts'
        digests, then ``-<number of parts>``."""
        return f"{b64(hashlib.sha256(b''.join(self.parts)).digest())}-{len(self.parts)}"


def hash_source(source: BinaryIO, block_size: int, part_size: int) -> Hashed:
    """Hash ``source`` from its current position, whole and per part, in one read. Raises
    SourceError (or SourceChanged) like :func:`pipeline.hashing.copy_and_hash`."""
    parts = PartHashes(part_size)
    digest = copy_and_hash(source, cast(BinaryIO, _PartSink(parts)), block_size)
    return Hashed(digest, parts.digests(), part_size)


def pread_all(fd: int, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of an open file (fewer only at its end)."""
    chunks: list[bytes] = []
    while size > 0 and (chunk := os.pread(fd, size, offset)):
        chunks.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Body(io.RawIOBase):
    """``size`` bytes from ``offset`` of the source: a body botocore streams in the blocks the
    HTTP client asks for, and rewinds for a retry."""

    def __init__(self, read_at: ReadAt, offset: int, size: int) -> None:
        super().__init__()
        self._read_at, self._offset, self._size, self._position = read_at, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self._size - self._position)
        size = left if size is None or size < 0 else min(size, left)
        data = self._read_at(self._offset + self._position, size) if size else b""
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def upload_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    read_at: ReadAt,
    hashed: Hashed,
    workers: int,
    **create_args: Any,
) -> None:
    """Upload the source in ``hashed.part_size`` parts read with ``read_at``, each with its
    SHA-256 from ``hashed``.

    The object appears only when CompleteMultipartUpload succeeds, i.e. after the server
    accepted every part's checksum; ``If-None-Match: *`` refuses to replace an existing one.
    Raises botocore's errors (the caller translates them); on any failure the upload is
    aborted, so no orphaned parts are left (and billed) on the server.
    """
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **create_args
    )["UploadId"]

    def send(number: int) -> dict[str, Any]:
        # Only the bytes that were hashed: a file grown since is uploaded as it was read.
        offset = (number - 1) * hashed.part_size
        body = read_at(offset, min(hashed.part_size, hashed.digest.size - offset))
        checksum = b64(hashed.parts[number - 1])
        response = client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ChecksumSHA256=checksum,
        )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": checksum}

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(send, range(1, len(hashed.parts) + 1)))
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
            IfNoneMatch="*",
        )
    except BaseException:
        with contextlib.suppress(ClientError, BotoCoreError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
