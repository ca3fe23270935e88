"""The boto3 client of the S3 store, and the one place where botocore errors become ours.

boto3 ships no type hints, so the client is typed ``Any``; botocore exceptions are caught in
the S3 modules and re-raised as StorageError (or a narrower error of pipeline.errors).
"""

from __future__ import annotations

import base64
import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import StorageError
from pipeline.settings import S3Settings

#: A boto3 S3 client.
S3Client = Any


def make_client(s3: S3Settings, connections: int = 10) -> S3Client:
    """A client for the configured endpoint; ``connections`` = requests in flight at once."""
    # Imported here: boto3 costs every `evidence` command a tenth of a second to load, and
    # only those that reach an S3 store use it.
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": s3.addressing_style},
        # boto3 >= 1.36 adds a CRC32 to every upload, sent as an aws-chunked trailer that
        # several S3-compatible servers reject. Our uploads carry their SHA-256 explicitly, so
        # a checksum only where an API demands one (Object Lock calls) loses nothing.
        request_checksum_calculation="when_required",
        # Downloads are hashed by the store itself, in full.
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=max(10, connections),
    )
    secret = s3.secret_key.get_secret_value()
    # A session of its own: boto3's default session is not safe to share between threads.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3.endpoint_url or None,
        region_name=s3.region,
        aws_access_key_id=s3.access_key or None,
        aws_secret_access_key=secret or None,
        config=config,
    )
    unsigned = config.merge(Config(s3={"addressing_style": s3.addressing_style, **_NO_BODY_HASH}))
    for operation in ("PutObject", "UploadPart"):
        client.meta.events.register(
            f"before-sign.s3.{operation}", functools.partial(_checked_body, unsigned)
        )
    return client


_NO_BODY_HASH = {"payload_signing_enabled": False}
_SHA256_HEADER = "x-amz-checksum-sha256"


def _checked_body(unsigned: Any, request: Any, **_: Any) -> None:
    """Sign a body that carries its SHA-256 for the server to check without hashing it again.

    Over plain HTTP botocore signs every body: it reads and hashes the whole body once more
    (a third SHA-256 of each original, after the hashing pass's two) only to put that hash
    in the signature. A body sent with ``x-amz-checksum-sha256`` needs none of it: that
    header is itself signed, and the server refuses a body that does not match it, so the
    body is bound to the signature as tightly as by a signed payload. botocore makes the same
    choice over HTTPS (UNSIGNED-PAYLOAD for a streamed body with a checksum header); here it
    is made for exactly those requests, and every other one keeps its signed payload.
    """
    if _SHA256_HEADER in request.headers:
        request.context["client_config"] = unsigned


def error_code(exc: ClientError) -> str:
    """The S3 error code (``AccessDenied``, ``BadDigest``; ``404`` for a HEAD)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(exc: BotoCoreError | ClientError) -> str:
    """One line for people: the S3 code and message, never a botocore traceback."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message') or 'no message'}"
    return str(exc)


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Raise botocore errors of the block as ``StorageError("<what>: <code>: <message>")``."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"{what}: {describe(exc)}") from exc


def b64(raw: bytes) -> str:
    """S3 checksums travel base64-encoded."""
    return base64.b64encode(raw).decode("ascii")
