"""Staging copies and multipart uploads checked part by part against our own SHA-256s.

The source on the dock is read once, into a local staging file; that pass computes the
file's SHA-256 (its key) and the SHA-256 of every multipart part. A single PUT then sends the
whole file's digest, a multipart upload every part's: the server refuses bytes that differ.

Why not boto3's managed transfer (``upload_file`` + TransferConfig) for originals: it computes
each part's checksum from the bytes it reads back from the staging file, so a staging copy
damaged on the local disk would be accepted, published under the original's key and locked
there for months before any check after the upload could object.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.models import Digest
from pipeline.storage.hashing import copy_and_hash
from pipeline.storage.s3client import S3Client, b64

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: S3 allows at most this many parts in one upload.
MAX_PARTS = 10_000


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


class _StagingFile(io.FileIO):
    """A new file that also feeds what is written to it into part hashes."""

    def __init__(self, path: Path, parts: PartHashes) -> None:
        super().__init__(path, "xb")
        self._parts = parts

    def write(self, data: ReadableBuffer, /) -> int:
        written = super().write(data)
        self._parts.update(memoryview(data)[:written])
        return written


@dataclass(frozen=True)
class Staged:
    """A source copied to a staging file, with the digests the server must confirm."""

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


def stage(source: Path | BinaryIO, target: Path, block_size: int, part_size: int) -> Staged:
    """Copy ``source`` to the new file ``target`` and hash it, whole and per part, in one read.
    Raises SourceError (or SourceChanged) like :func:`pipeline.hashing.copy_and_hash`."""
    parts = PartHashes(part_size)
    with _StagingFile(target, parts) as out:
        digest = copy_and_hash(source, out, block_size)
    return Staged(digest, parts.digests(), part_size)


def upload_multipart(
    client: S3Client,
    bucket: str,
    key: str,
    path: Path,
    staged: Staged,
    workers: int,
    **create_args: Any,
) -> None:
    """Upload ``path`` in ``staged.part_size`` parts, each with its SHA-256 from ``staged``.

    The object appears only when CompleteMultipartUpload succeeds, i.e. after the server
    accepted every part's checksum; ``If-None-Match: *`` refuses to replace an existing one.
    Raises botocore's errors (the caller translates them); on any failure the upload is
    aborted, so no orphaned parts are left (and billed) on the server.
    """
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256", **create_args
    )["UploadId"]

    def send(number: int) -> dict[str, Any]:
        with path.open("rb") as f:
            f.seek((number - 1) * staged.part_size)
            body = f.read(staged.part_size)
        checksum = b64(staged.parts[number - 1])
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
            parts = list(pool.map(send, range(1, len(staged.parts) + 1)))
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
