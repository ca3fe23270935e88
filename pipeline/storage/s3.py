"""The S3 archive store: originals under content-addressed keys, write-once by Object Lock.

The same interface as the local store (pipeline.store.ArchiveStore). Putting an original:

1. read the source once, hashing it: the SHA-256 that names its key, and the SHA-256 of
   every multipart part (pipeline.s3parts);
2. an object already under the key is verified, not uploaded again;
3. upload it locked (retention mode, retain-until), its bytes read from the source again,
   with the checksums of the first read: one PUT with
   ChecksumSHA256 up to ``single_put_max``, above it a multipart upload with every part's
   ChecksumSHA256. The server refuses bytes that do not match, and an S3 object appears whole
   or not at all: nothing unverified becomes visible under the key;
4. ``head_object(ChecksumMode=ENABLED)``: the server's checksum must be the one we computed;
   with ``reread`` on, the object is also downloaded and hashed again.

Why two reads: the key is the SHA-256, known only once the whole source is read, and a PUT
sends its checksum before its body. The source could change between the reads (rewritten in
place on the dock): the server then refuses the part that differs, the source is hashed once
more, and the upload ends in ChecksumMismatch with nothing published. An earlier version
copied the source into a local staging file in the first read and uploaded that: the same
guarantee (the server checks the first read's checksums), for a write of every original to
the local disk, local room for the files in flight, and on a 2-core host with the server
beside it a third of the client's CPU (BENCHMARKS.md, benchmark 10). A just-docked file is
in the page cache, so its second read costs a memory copy.

A key's versions: Object Lock needs a versioned bucket. There a DELETE without a version id
only hides an object behind a delete marker, and a PUT adds a newer version above it; neither
touches the locked version. So the store always reads a key's first version, the one it wrote
and locked, whatever was put or "deleted" above it later.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import (
    ChecksumMismatch,
    EvidenceError,
    ObjectLocked,
    SourceError,
    StorageError,
)
from pipeline.models import Digest
from pipeline.settings import S3Settings, Settings
from pipeline.storage.hashing import ALGORITHM, subject_of
from pipeline.storage.local import remove_orphans, temporary_name
from pipeline.storage.s3client import S3Client, describe, error_code, make_client, s3_errors
from pipeline.storage.s3lock import LockCheck, LockStatus, check_lock, ensure_bucket
from pipeline.storage.s3parts import (
    MAX_PARTS,
    Body,
    Hashed,
    hash_source,
    pread_all,
    upload_multipart,
)

log = logging.getLogger(__name__)


def original_key(sha256: str) -> str:
    """The same layout as the local archive's ``originals/`` folder."""
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class S3Store:
    """Archive in an S3 bucket with Object Lock.

    Keys: ``originals/ab/cd/<sha256>`` (locked), ``derived/<sha256>/<name>`` (not locked: a
    proxy can be made again). Local room under ``work_dir``: ``tmp/`` (downloaded originals,
    deleted after use) and ``cache/`` (derived objects, for playing).
    """

    def __init__(
        self,
        client: S3Client,
        s3: S3Settings,
        work_dir: Path,
        block_size: int = 4 << 20,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.s3 = s3
        self.bucket = s3.bucket
        self.block_size = block_size
        self.clock = clock
        self.tmp = work_dir / "tmp"
        self.cache = work_dir / "cache"
        for folder in (self.tmp, self.cache):
            folder.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        # Derived objects (proxies, thumbnails) go through boto3's managed transfer: they
        # are not evidence, and botocore's own per-part SHA-256 is enough for them.
        self.transfer = TransferConfig(
            multipart_threshold=s3.single_put_max,
            multipart_chunksize=s3.part_size,
            max_concurrency=s3.upload_workers,
        )

    def _remove_stale_temporaries(self) -> None:
        remove_orphans(self.tmp, self.has_original, self.block_size, self.tmp.parent / "orphans")

    # ------------------------------------------------------------------------- originals

    def put_original(self, source: Path | BinaryIO, retain_until: datetime | None = None) -> Digest:
        """Store ``source`` locked until ``retain_until`` (default: now + ``retention_days``).
        Bytes already stored keep their own retention; extend it with :meth:`set_retention`.
        Raises ChecksumMismatch (nothing published), SourceError or StorageError."""
        subject = subject_of(source)
        with _opened(source) as handle:
            hashed = self._hash(handle)
            key = original_key(hashed.digest.sha256)
            if self._first_version(key) is None:
                until = retain_until or self.clock() + timedelta(days=self.s3.retention_days)
                self._upload(key, handle, hashed, until, subject=subject)
            self._check_stored(key, hashed, subject=subject)
            return hashed.digest

    def _hash(self, source: BinaryIO) -> Hashed:
        return hash_source(source, self.block_size, self.s3.part_size)

    def _read_at(self, source: BinaryIO, offset: int, size: int) -> bytes:
        """The upload's read of the source: ``size`` bytes at ``offset``."""
        try:
            return pread_all(source.fileno(), offset, size)
        except OSError as exc:
            raise SourceError(subject_of(source), f"cannot read: {exc.strerror or exc}") from exc

    def _upload(
        self, key: str, source: BinaryIO, hashed: Hashed, until: datetime, *, subject: Path
    ) -> None:
        lock = {"ObjectLockMode": self.s3.retention_mode, "ObjectLockRetainUntilDate": until}
        metadata = {"sha256": hashed.digest.sha256}

        def read_at(offset: int, size: int) -> bytes:
            return self._read_at(source, offset, size)

        try:
            if hashed.digest.size <= self.s3.single_put_max:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=Body(read_at, 0, hashed.digest.size),
                    ContentLength=hashed.digest.size,
                    ChecksumSHA256=hashed.checksum,
                    IfNoneMatch="*",
                    Metadata=metadata,
                    **lock,
                )
                return
            if len(hashed.parts) > MAX_PARTS:
                raise StorageError(
                    f"{subject}: {hashed.digest.size} bytes need more than {MAX_PARTS} parts "
                    f"of {self.s3.part_size} bytes; raise store.s3.part_size"
                )
            # The composite checksum, known before the upload, sits beside the full SHA-256
            # (and the part size it depends on), so an auditor can recompute both.
            metadata |= {
                "sha256-composite": hashed.composite_checksum,
                "part-size": str(hashed.part_size),
            }
            upload_multipart(
                self.client,
                self.bucket,
                key,
                read_at,
                hashed,
                self.s3.upload_workers,
                Metadata=metadata,
                **lock,
            )
        except ClientError as exc:
            if error_code(exc) == "PreconditionFailed":
                return  # another sweep stored the same bytes meanwhile: verified next
            if error_code(exc) in ("BadDigest", "InvalidDigest"):
                raise self._refused(key, source, hashed, subject) from exc
            raise StorageError(
                f"cannot upload {subject} to {self._at(key)}: {describe(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot upload {subject} to {self._at(key)}: {exc}") from exc

    def _refused(self, key: str, source: BinaryIO, hashed: Hashed, subject: Path) -> EvidenceError:
        """The server received other bytes than the SHA-256 we sent: say which."""
        source.seek(0)
        found = hash_source(source, self.block_size, hashed.part_size).digest
        if found.sha256 == hashed.digest.sha256:
            return StorageError(
                f"{subject}: bytes damaged on the way to {self._at(key)}; nothing was stored"
            )
        return ChecksumMismatch(subject, ALGORITHM, hashed.digest.sha256, found.sha256)

    def _check_stored(self, key: str, hashed: Hashed, *, subject: Path) -> None:
        """The server's checksum proves the stored bytes when it is one we computed; otherwise
        (stored earlier with another part size), or with ``reread`` on, a re-read decides."""
        version = self._require(key)
        with s3_errors(f"cannot check {self._at(key)}"):
            head = self.client.head_object(
                Bucket=self.bucket, Key=key, VersionId=version, ChecksumMode="ENABLED"
            )
        proven = head["ContentLength"] == hashed.digest.size and head.get("ChecksumSHA256") in (
            hashed.checksum,
            hashed.composite_checksum,
        )
        if proven and not self.s3.reread:
            return
        found = self._read(key, version)
        if found.sha256 != hashed.digest.sha256:
            raise ChecksumMismatch(subject, ALGORITHM, hashed.digest.sha256, found.sha256)

    def verify_original(self, sha256: str) -> Digest:
        key = original_key(sha256)
        found = self._read(key, self._require(key))
        if found.sha256 != sha256:
            raise ChecksumMismatch(self._at(key), ALGORITHM, sha256, found.sha256)
        return found

    def has_original(self, sha256: str) -> bool:
        return self._first_version(original_key(sha256)) is not None

    @contextlib.contextmanager
    def original_file(self, sha256: str) -> Iterator[Path]:
        """Download the original to ``tmp/``, hashing it on the way: nothing tampered is
        ever probed or transcoded as evidence."""
        key = original_key(sha256)
        version = self._require(key)
        path = self.tmp / temporary_name(".original")
        try:
            out_file = path.open("xb")
        except OSError as exc:
            raise StorageError(f"cannot download {self._at(key)} into {self.tmp}: {exc}") from exc
        try:
            with out_file as out:
                found = self._read(key, version, out)
            if found.sha256 != sha256:
                raise ChecksumMismatch(self._at(key), ALGORITHM, sha256, found.sha256)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _read(self, key: str, version: str, sink: BinaryIO | None = None) -> Digest:
        """Stream one version of an object, hashing it, into ``sink`` if given."""
        digest, size = hashlib.sha256(), 0
        with s3_errors(f"cannot read {self._at(key)}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key, VersionId=version)["Body"]
            try:
                for chunk in body.iter_chunks(self.block_size):
                    digest.update(chunk)
                    size += len(chunk)
                    if sink is not None:
                        sink.write(chunk)
            except OSError as exc:
                raise StorageError(f"cannot download {self._at(key)}: {exc}") from exc
            finally:
                body.close()
        return Digest(digest.hexdigest(), size)

    def _first_version(self, key: str) -> str | None:
        """The version the store wrote (S3 lists a key's versions newest first)."""
        versions: list[str] = []
        with s3_errors(f"cannot list {self._at(key)}"):
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                versions += [v["VersionId"] for v in page.get("Versions", []) if v["Key"] == key]
        return versions[-1] if versions else None

    def _require(self, key: str) -> str:
        version = self._first_version(key)
        if version is None:
            raise StorageError(f"original {key} is missing from bucket {self.bucket}")
        return version

    def _at(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # ----------------------------------------------------------------------- Object Lock

    def lock_status(self, sha256: str) -> LockStatus:
        key = original_key(sha256)
        with s3_errors(f"cannot read the lock of {self._at(key)}"):
            head = self.client.head_object(
                Bucket=self.bucket, Key=key, VersionId=self._require(key)
            )
        return LockStatus.from_head(head)

    def set_retention(self, sha256: str, until: datetime) -> None:
        """Keep an original locked until ``until``. The server allows extending a lock, never
        shortening it: a shorter date raises ObjectLocked."""
        key = original_key(sha256)
        version = self._require(key)
        # A lock keeps its mode: the server refuses to turn COMPLIANCE into GOVERNANCE.
        mode = self.lock_status(sha256).mode or self.s3.retention_mode
        try:
            self.client.put_object_retention(
                Bucket=self.bucket,
                Key=key,
                VersionId=version,
                Retention={"Mode": mode, "RetainUntilDate": until},
            )
        except ClientError as exc:
            if error_code(exc) == "AccessDenied":
                raise ObjectLocked(
                    self._at(key),
                    f"the server refused retention until {until:%Y-%m-%d %H:%M:%S %Z} "
                    f"(a lock can be extended, never shortened): {describe(exc)}",
                ) from exc
            raise StorageError(
                f"cannot set the retention of {self._at(key)}: {describe(exc)}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot set the retention of {self._at(key)}: {exc}") from exc

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """A legal hold (sealed or held cases) forbids deleting the original whatever its
        retention, until it is lifted."""
        key = original_key(sha256)
        with s3_errors(f"cannot set the legal hold of {self._at(key)}"):
            self.client.put_object_legal_hold(
                Bucket=self.bucket,
                Key=key,
                VersionId=self._require(key),
                LegalHold={"Status": "ON" if on else "OFF"},
            )

    # --------------------------------------------------------------------------- derived

    def put_derived(self, sha256: str, name: str, source: Path) -> str:
        key = f"derived/{sha256}/{name}"
        with s3_errors(f"cannot upload {source} to {self._at(key)}"):
            self.client.upload_file(
                str(source),
                self.bucket,
                key,
                ExtraArgs={"ChecksumAlgorithm": "SHA256"},
                Config=self.transfer,
            )
        return key

    def derived_path(self, key: str) -> Path:
        """A local copy in ``cache/``, downloaded again when the object's size or time
        differs from the copy's (a proxy made again, on this host or another)."""
        local = self.cache / key
        with s3_errors(f"derived object {self._at(key)} is missing or unreadable"):
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        stamp = head["LastModified"].timestamp()
        with contextlib.suppress(FileNotFoundError):
            st = local.stat()
            if (st.st_size, st.st_mtime) == (head["ContentLength"], stamp):
                return local
        local.parent.mkdir(parents=True, exist_ok=True)
        part = local.with_name(f".{local.name}.{uuid.uuid4().hex}.part")
        try:
            with s3_errors(f"cannot download {self._at(key)}"):
                self.client.download_file(self.bucket, key, str(part), Config=self.transfer)
            os.utime(part, (stamp, stamp))
            os.replace(part, local)
        except OSError as exc:
            raise StorageError(f"cannot cache {self._at(key)} in {self.cache}: {exc}") from exc
        finally:
            part.unlink(missing_ok=True)
        return local

    # -------------------------------------------------------------- disposal (issue 19)

    def remove_original(self, sha256: str) -> None:
        """Delete every version of the original's key, the locked one first: the server's
        Object Lock decides. A lock not expired (or a legal hold) is refused by the server
        (COMPLIANCE mode: by anyone) and raised as ObjectLocked with its answer; nothing is
        forced, no governance bypass is ever asked for."""
        key = original_key(sha256)
        for version in self._versions(key):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
            except ClientError as exc:
                if error_code(exc) == "AccessDenied":
                    raise ObjectLocked(
                        self._at(key), f"the server refused the deletion: {describe(exc)}"
                    ) from exc
                raise StorageError(f"cannot delete {self._at(key)}: {describe(exc)}") from exc
            except BotoCoreError as exc:
                raise StorageError(f"cannot delete {self._at(key)}: {exc}") from exc

    def remove_derived(self, key: str) -> None:
        """Delete every version of a derived object, and its copy in ``cache/``."""
        for version in self._versions(key):
            with s3_errors(f"cannot delete {self._at(key)}"):
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=version)
        (self.cache / key).unlink(missing_ok=True)

    def _versions(self, key: str) -> list[str]:
        """Every version of ``key``, oldest (the one the store wrote) first, then its delete
        markers (S3 lists each newest first)."""
        versions: list[str] = []
        markers: list[str] = []
        with s3_errors(f"cannot list {self._at(key)}"):
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.bucket, Prefix=key
            )
            for page in pages:
                for entry in page.get("Versions", []):
                    if entry["Key"] == key:
                        versions.append(entry["VersionId"])
                for entry in page.get("DeleteMarkers", []):
                    if entry["Key"] == key:
                        markers.append(entry["VersionId"])
        return [*versions[::-1], *markers]


@contextlib.contextmanager
def _opened(source: Path | BinaryIO) -> Iterator[BinaryIO]:
    """The source as an open file: both reads go to the same file, even if the path is
    replaced meanwhile. A file given open stays open."""
    if not isinstance(source, Path):
        yield source
        return
    try:
        handle = source.open("rb", buffering=0)
    except OSError as exc:
        raise SourceError(source, f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        yield handle


# ------------------------------------------------------------------------------ start-up

#: One self-test per process and bucket: a flow run opens a store for each sweep.
_lock_checks: dict[tuple[str, str], LockCheck] = {}
_lock_checks_guard = threading.Lock()


def open_s3_store(settings: Settings) -> S3Store:
    """The configured bucket, created with Object Lock if missing, and self-tested once."""
    s3 = settings.store.s3
    client = make_client(s3, connections=settings.ingest.workers * s3.upload_workers)
    with _lock_checks_guard:
        if (s3.endpoint_url, s3.bucket) not in _lock_checks:
            ensure_bucket(client, s3.bucket, s3.region)
            check = check_lock(client, s3.bucket, s3.retention_mode, datetime.now(UTC))
            if not check.enforced:
                log.critical(
                    "OBJECT LOCK IS NOT ENFORCED in bucket %s at %s: originals stored there "
                    "can be deleted or altered. %s",
                    s3.bucket,
                    s3.endpoint_url or "AWS",
                    "; ".join(check.problems),
                )
            _lock_checks[(s3.endpoint_url, s3.bucket)] = check
    return S3Store(client, s3, settings.s3_work_dir, settings.ingest.block_size)
