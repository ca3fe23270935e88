"""Object Lock: the locked bucket, the lock state of an object, and the start-up self-test.

Originals are write-once only if the server enforces the lock. A bucket made without Object
Lock, or a server that takes the lock headers and ignores them, would keep evidence that
anyone with the key can delete. The self-test writes a canary locked like an original, then
tries to shorten its retention and to delete it: a server that enforces the lock refuses both.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from pipeline.storage.s3client import S3Client, b64, describe, error_code, s3_errors

#: Canaries live under this prefix, apart from originals and derived objects.
CANARY_PREFIX = "selftest/"
#: Long enough for a client clock some minutes behind the server's (the retain-until must be
#: in the server's future), short enough that canaries can be removed soon.
CANARY_RETENTION = timedelta(minutes=5)
CANARY = b"evidence pipeline: Object Lock self-test canary\n"


@dataclass(frozen=True)
class LockStatus:
    """How an object is locked: retention mode and retain-until date, and legal hold."""

    mode: str | None
    retain_until: datetime | None
    legal_hold: bool

    @classmethod
    def from_head(cls, head: Mapping[str, Any]) -> LockStatus:
        return cls(
            mode=head.get("ObjectLockMode"),
            retain_until=head.get("ObjectLockRetainUntilDate"),
            legal_hold=head.get("ObjectLockLegalHoldStatus") == "ON",
        )


@dataclass(frozen=True)
class LockCheck:
    """The self-test's verdict on a bucket: every way the server failed to enforce the lock."""

    bucket: str
    problems: tuple[str, ...]

    @property
    def enforced(self) -> bool:
        return not self.problems


def ensure_bucket(client: S3Client, bucket: str, region: str) -> None:
    """Create the bucket, with Object Lock enabled, unless it exists (many servers can
    enable Object Lock only when a bucket is created)."""
    with s3_errors(f"cannot reach bucket {bucket}"):
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if error_code(exc) not in ("404", "NoSuchBucket"):
                raise
    # us-east-1 is the one region S3 wants no location constraint for.
    where = {} if region == "us-east-1" else {"LocationConstraint": region}
    with s3_errors(f"cannot create bucket {bucket}"):
        try:
            client.create_bucket(
                Bucket=bucket,
                ObjectLockEnabledForBucket=True,
                **({"CreateBucketConfiguration": where} if where else {}),
            )
        except ClientError as exc:
            # Another worker starting at the same moment created it first.
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                raise


def check_lock(client: S3Client, bucket: str, mode: str, now: datetime) -> LockCheck:
    """Lock a canary for a few minutes in ``mode``; the server must report the lock and refuse
    both shortening the retention and deleting the canary's version."""
    with s3_errors(f"Object Lock self-test in bucket {bucket}"):
        _remove_old_canaries(client, bucket, now)
        key = f"{CANARY_PREFIX}{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        try:
            put = client.put_object(
                Bucket=bucket,
                Key=key,
                Body=CANARY,
                ChecksumSHA256=b64(hashlib.sha256(CANARY).digest()),
                ObjectLockMode=mode,
                ObjectLockRetainUntilDate=now + CANARY_RETENTION,
            )
        except ClientError as exc:
            return LockCheck(
                bucket,
                (
                    f"the server refused to lock a canary ({describe(exc)}): "
                    "is Object Lock enabled on the bucket?",
                ),
            )
        # Without a version id (a server that ignored the lock and versioning) the DELETE
        # below removes the object itself.
        version = {"VersionId": put["VersionId"]} if put.get("VersionId") else {}
        problems: list[str] = []
        status = LockStatus.from_head(client.head_object(Bucket=bucket, Key=key, **version))
        if status.mode != mode:
            problems.append(f"the server took a {mode} lock on a canary but reports {status.mode}")
        shorter = {"Mode": mode, "RetainUntilDate": now + timedelta(seconds=1)}
        if _accepted(
            client.put_object_retention, Bucket=bucket, Key=key, Retention=shorter, **version
        ):
            problems.append("the server let the retention of a locked canary be shortened")
        if _accepted(client.delete_object, Bucket=bucket, Key=key, **version):
            problems.append("the server deleted a locked canary")
    return LockCheck(bucket, tuple(problems))


def _accepted(call: Callable[..., object], **kwargs: Any) -> bool:
    """Whether the server did what a locked object must not allow (any refusal counts)."""
    try:
        call(**kwargs)
    except ClientError:
        return False
    return True


def _remove_old_canaries(client: S3Client, bucket: str, now: datetime) -> None:
    """Canaries of earlier start-ups whose lock ran out. Younger ones may be another worker's
    self-test in progress, and are still locked anyway."""
    listing = client.list_object_versions(Bucket=bucket, Prefix=CANARY_PREFIX)
    for entry in (*listing.get("Versions", []), *listing.get("DeleteMarkers", [])):
        if entry["LastModified"] < now - 2 * CANARY_RETENTION:
            # A refusal (clock skew, a longer lock) leaves it for a later start-up.
            with contextlib.suppress(ClientError):
                client.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
