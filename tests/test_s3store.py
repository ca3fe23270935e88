"""The S3 archive store against a real S3 server (SeaweedFS): checksums the server verifies,
Object Lock it enforces, and the self-test that notices when it does not."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from botocore.exceptions import ClientError

from pipeline.errors import ChecksumMismatch, ObjectLocked, StorageError
from pipeline.settings import Settings
from pipeline.storage.local import open_store
from pipeline.storage.s3 import S3Store, open_s3_store, original_key
from pipeline.storage.s3client import S3Client, b64, make_client
from pipeline.storage.s3lock import check_lock, ensure_bucket
from pipeline.storage.s3parts import Hashed
from tests.conftest import make_settings
from tests.seaweed import Seaweed, running_seaweed

MIB = 1 << 20


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


def s3_settings(home: Path, server: Seaweed, **s3: object) -> Settings:
    """Settings of an S3 store in a bucket of its own; small parts so multipart is cheap."""
    values: dict[str, object] = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "bucket": f"ev-{uuid.uuid4().hex[:12]}",
        "single_put_max": 5 * MIB,
        "part_size": 5 * MIB,
    }
    values.update(s3)
    return make_settings(home, store={"kind": "s3", "s3": values})


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config file (read from EVIDENCE_HOME) may leak into these settings."""
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path / "home"))


@pytest.fixture
def settings(tmp_path: Path, seaweed: Seaweed) -> Settings:
    return s3_settings(tmp_path / "home", seaweed)


@pytest.fixture(scope="module")
def client(seaweed: Seaweed, tmp_path_factory: pytest.TempPathFactory) -> S3Client:
    """The project's own client, made once: building one takes a few tenths of a second."""
    return make_client(s3_settings(tmp_path_factory.mktemp("home"), seaweed).store.s3)


@pytest.fixture
def store(settings: Settings, client: S3Client) -> S3Store:
    """A store in a fresh bucket, made as open_s3_store does (whose self-test runs once per
    process and bucket, and is tested below)."""
    s3 = settings.store.s3
    ensure_bucket(client, s3.bucket, s3.region)
    return S3Store(client, s3, settings.s3_work_dir, settings.ingest.block_size)


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions(client: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    listing = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def test_open_store_picks_s3_and_creates_the_bucket_with_object_lock(
    settings: Settings, seaweed: Seaweed, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        store = open_store(settings)
    assert isinstance(store, S3Store)
    assert caplog.records == [], "the self-test found the lock enforced"
    lock = seaweed.client.get_object_lock_configuration(Bucket=settings.store.s3.bucket)
    assert lock["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert seaweed.secret_key not in repr(settings), "the secret never shows in a repr"


def test_small_original_is_one_put_checked_by_the_server_and_locked(
    store: S3Store, tmp_path: Path, seaweed: Seaweed
) -> None:
    src = _file(tmp_path / "clip.mp4", 300_000)
    before = datetime.now(UTC).replace(microsecond=0)  # S3 keeps whole seconds

    digest = store.put_original(src)

    assert digest.sha256 == _sha(src) and digest.size == 300_000
    key = original_key(digest.sha256)
    assert key == f"originals/{digest.sha256[:2]}/{digest.sha256[2:4]}/{digest.sha256}"
    head = seaweed.client.head_object(Bucket=store.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == b64(bytes.fromhex(digest.sha256)), "one PUT: full SHA-256"
    assert head["Metadata"]["sha256"] == digest.sha256
    status = store.lock_status(digest.sha256)
    assert status.mode == "COMPLIANCE" and not status.legal_hold
    assert status.retain_until is not None
    assert (
        before + timedelta(days=184)
        <= status.retain_until
        <= datetime.now(UTC) + timedelta(days=184, seconds=1)
    ), "6 months of retention by default"
    with store.original_file(digest.sha256) as local:
        assert local.read_bytes() == src.read_bytes()
    assert not local.exists(), "downloaded originals are removed after use"
    assert list(store.tmp.iterdir()) == [], "nothing left behind in tmp/"


def test_large_original_is_multipart_with_the_composite_beside_the_full_sha256(
    store: S3Store, tmp_path: Path, seaweed: Seaweed
) -> None:
    src = _file(tmp_path / "long.mp4", 11 * MIB + 123)

    digest = store.put_original(src)

    head = seaweed.client.head_object(
        Bucket=store.bucket, Key=original_key(digest.sha256), ChecksumMode="ENABLED"
    )
    assert head["ChecksumSHA256"].endswith("-3"), "three parts of 5 MiB, checked by the server"
    assert head["Metadata"] == {
        "sha256": digest.sha256,
        "sha256-composite": head["ChecksumSHA256"],
        "part-size": str(5 * MIB),
    }
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert store.verify_original(digest.sha256).sha256 == _sha(src)
    assert seaweed.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads") is None


def test_the_same_bytes_twice_are_one_object_not_uploaded_again(
    store: S3Store, tmp_path: Path, seaweed: Seaweed
) -> None:
    a = _file(tmp_path / "a.mp4", 1000)
    b = tmp_path / "b.mp4"
    b.write_bytes(a.read_bytes())
    assert store.put_original(a) == store.put_original(b)
    versions = _versions(seaweed.client, store.bucket, original_key(_sha(a)))
    assert len(versions) == 1


def test_reread_downloads_the_object_again_only_when_configured(
    settings: Settings, client: S3Client, tmp_path: Path
) -> None:
    gets: list[int] = []

    def count_get(**_: Any) -> None:
        gets.append(1)

    ensure_bucket(client, settings.store.s3.bucket, settings.store.s3.region)
    client.meta.events.register("before-call.s3.GetObject", count_get)
    try:
        for reread, size in ((True, 1000), (False, 1000), (True, 11 * MIB), (False, 11 * MIB)):
            s3 = settings.store.s3.model_copy(update={"reread": reread})
            store = S3Store(client, s3, settings.s3_work_dir)
            gets.clear()
            store.put_original(_file(tmp_path / "clip.mp4", size))
            # Off, the server's checksum (full or composite) of the object is the proof.
            assert len(gets) == (1 if reread else 0), (reread, size)
    finally:
        client.meta.events.unregister("before-call.s3.GetObject", count_get)


def test_an_empty_file_is_stored(store: S3Store, tmp_path: Path) -> None:
    digest = store.put_original(_file(tmp_path / "empty.mp4", 0))
    assert digest.sha256 == hashlib.sha256(b"").hexdigest() and digest.size == 0
    assert store.verify_original(digest.sha256).size == 0


class CorruptingS3Store(S3Store):
    """A dock file rewritten in place between the store's two reads: one bit flipped, on the
    disk, after the source was hashed and before it is uploaded."""

    def _hash(self, source: BinaryIO) -> Hashed:
        hashed = super()._hash(source)
        middle = hashed.digest.size // 2
        # The same file, opened again for writing, whatever its name in the dock.
        with open(f"/proc/self/fd/{source.fileno()}", "r+b") as rewrite:
            rewrite.seek(middle)
            byte = rewrite.read(1)[0]
            rewrite.seek(middle)
            rewrite.write(bytes([byte ^ 0x01]))
        return hashed


class DamagingS3Store(S3Store):
    """Bytes damaged after the upload's read (memory, bus, network): one bit of what is
    sent flipped, the source left as it is."""

    def _read_at(self, source: BinaryIO, offset: int, size: int) -> bytes:
        data = bytearray(super()._read_at(source, offset, size))
        middle = os.fstat(source.fileno()).st_size // 2 - offset
        if 0 <= middle < len(data):
            data[middle] ^= 0x01
        return bytes(data)


class GrowingS3Store(S3Store):
    """A dock file appended to between the store's two reads."""

    def _hash(self, source: BinaryIO) -> Hashed:
        hashed = super()._hash(source)
        with open(f"/proc/self/fd/{source.fileno()}", "ab") as append:
            append.write(b"written later")
        return hashed


@pytest.mark.parametrize("size", [100_000, 11 * MIB], ids=["single-put", "multipart"])
def test_a_source_grown_after_it_was_hashed_is_stored_as_it_was_read(
    store: S3Store, settings: Settings, tmp_path: Path, size: int
) -> None:
    src = _file(tmp_path / "clip.mp4", size)
    read = src.read_bytes()

    digest = _twin(GrowingS3Store, store, settings).put_original(src)

    assert digest.sha256 == hashlib.sha256(read).hexdigest() and digest.size == size
    with store.original_file(digest.sha256) as local:
        assert local.read_bytes() == read


def _twin(kind: type[S3Store], store: S3Store, settings: Settings) -> S3Store:
    """A faulty twin of ``store``: same client, bucket and settings."""
    return kind(store.client, store.s3, settings.s3_work_dir, settings.ingest.block_size)


def _nothing_published(store: S3Store, seaweed: Seaweed, sha: str) -> None:
    assert not store.has_original(sha), "nothing unverified is visible under the key"
    client = seaweed.client
    assert _versions(client, store.bucket, original_key(sha)) == []
    assert client.list_multipart_uploads(Bucket=store.bucket).get("Uploads") is None
    assert list(store.tmp.iterdir()) == []


@pytest.mark.parametrize("size", [100_000, 11 * MIB], ids=["single-put", "multipart"])
def test_a_source_changed_between_the_reads_is_refused_by_the_server_and_nothing_is_published(
    store: S3Store, settings: Settings, tmp_path: Path, seaweed: Seaweed, size: int
) -> None:
    src = _file(tmp_path / "clip.mp4", size)
    sha = _sha(src)
    flipped = bytearray(src.read_bytes())
    flipped[size // 2] ^= 0x01
    with pytest.raises(ChecksumMismatch) as caught:
        _twin(CorruptingS3Store, store, settings).put_original(src)

    err = caught.value
    assert err.expected == sha and err.found == hashlib.sha256(flipped).hexdigest()
    assert "clip.mp4" in str(err) and err.expected in str(err) and err.found in str(err)
    _nothing_published(store, seaweed, sha)


@pytest.mark.parametrize("size", [100_000, 11 * MIB], ids=["single-put", "multipart"])
def test_bytes_damaged_after_the_read_are_refused_by_the_server_and_nothing_is_published(
    store: S3Store, settings: Settings, tmp_path: Path, seaweed: Seaweed, size: int
) -> None:
    src = _file(tmp_path / "clip.mp4", size)
    sha = _sha(src)

    with pytest.raises(StorageError, match="damaged on the way") as caught:
        _twin(DamagingS3Store, store, settings).put_original(src)

    assert "clip.mp4" in str(caught.value)
    assert _sha(src) == sha, "the source is left as it was"
    _nothing_published(store, seaweed, sha)


def test_a_body_with_its_sha256_is_signed_without_hashing_it_again(
    store: S3Store, client: S3Client, tmp_path: Path
) -> None:
    """Over plain HTTP botocore hashes every body once more for its signature. The bodies of
    originals carry their SHA-256, which the server checks: they go UNSIGNED-PAYLOAD with that
    checksum header signed; every other request keeps its signed payload."""
    sent: list[tuple[str, str, str]] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        headers = {
            k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        sent.append((event_name.rsplit(".", 1)[1], headers["x-amz-content-sha256"], signed))

    client.meta.events.register("before-send.s3", record)
    try:
        store.put_original(_file(tmp_path / "clip.mp4", 1000))
        store.put_original(_file(tmp_path / "long.mp4", 11 * MIB))
    finally:
        client.meta.events.unregister("before-send.s3", record)

    bodies = [
        (op, payload, signed) for op, payload, signed in sent if op in ("PutObject", "UploadPart")
    ]
    assert [op for op, _, _ in bodies] == ["PutObject", "UploadPart", "UploadPart", "UploadPart"]
    for _, payload, signed in bodies:
        assert payload == "UNSIGNED-PAYLOAD" and "x-amz-checksum-sha256" in signed.split(";")
    others = {op: payload for op, payload, _ in sent if op not in ("PutObject", "UploadPart")}
    assert {"CreateMultipartUpload", "CompleteMultipartUpload", "HeadObject"} <= set(others)
    assert all(len(payload) == 64 for payload in others.values()), "signed payloads"


@pytest.mark.parametrize("multipart", [False, True], ids=["single-put", "part"])
def test_bytes_damaged_on_the_way_are_refused_though_the_signature_does_not_hash_them(
    store: S3Store, client: S3Client, multipart: bool
) -> None:
    """What stands in for the payload hash: the server checks the signed SHA-256 header."""
    sent = os.urandom(5 * MIB)
    damaged = bytearray(sent)
    damaged[len(sent) // 2] ^= 0x01
    key, checksum = "originals/damaged", b64(hashlib.sha256(sent).digest())
    with pytest.raises(ClientError) as caught:
        if multipart:
            upload = client.create_multipart_upload(
                Bucket=store.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )["UploadId"]
            try:
                client.upload_part(
                    Bucket=store.bucket,
                    Key=key,
                    UploadId=upload,
                    PartNumber=1,
                    Body=bytes(damaged),
                    ChecksumSHA256=checksum,
                )
            finally:
                client.abort_multipart_upload(Bucket=store.bucket, Key=key, UploadId=upload)
        else:
            client.put_object(
                Bucket=store.bucket, Key=key, Body=bytes(damaged), ChecksumSHA256=checksum
            )
    assert _code(caught) == "BadDigest"
    assert _versions(client, store.bucket, key) == []


def test_a_wrong_checksum_sent_with_boto3_directly_is_refused(
    store: S3Store, seaweed: Seaweed
) -> None:
    with pytest.raises(ClientError) as caught:
        seaweed.client.put_object(
            Bucket=store.bucket,
            Key="originals/any",
            Body=b"bytes",
            ChecksumSHA256=b64(hashlib.sha256(b"other bytes").digest()),
        )
    assert _code(caught) == "BadDigest"


def test_a_locked_original_cannot_be_deleted_or_replaced_with_boto3_directly(
    store: S3Store, tmp_path: Path, seaweed: Seaweed
) -> None:
    src = _file(tmp_path / "clip.mp4", 50_000)
    sha = store.put_original(src).sha256
    key, client = original_key(sha), seaweed.client
    (locked,) = _versions(client, store.bucket, key)
    version = locked["VersionId"]

    with pytest.raises(ClientError) as caught:
        client.delete_object(Bucket=store.bucket, Key=key, VersionId=version)
    assert _code(caught) == "AccessDenied"
    with pytest.raises(ClientError) as caught:
        client.put_object_retention(
            Bucket=store.bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(1)},
        )
    assert _code(caught) == "AccessDenied", "COMPLIANCE retention cannot be shortened"
    with pytest.raises(ClientError) as caught:
        client.put_object(Bucket=store.bucket, Key=key, Body=b"forged", IfNoneMatch="*")
    assert _code(caught) == "PreconditionFailed"
    with pytest.raises(ClientError) as caught:
        client.delete_object(
            Bucket=store.bucket, Key=key, VersionId=version, BypassGovernanceRetention=True
        )
    assert _code(caught) == "AccessDenied", "COMPLIANCE is not bypassed, not even by an admin"

    # What S3 does allow: a newer version above the locked one, and a delete marker. Neither
    # touches the locked version, and the store keeps reading that one.
    client.put_object(Bucket=store.bucket, Key=key, Body=b"forged")
    client.delete_object(Bucket=store.bucket, Key=key)
    assert store.has_original(sha)
    assert store.verify_original(sha).sha256 == sha
    with store.original_file(sha) as local:
        assert local.read_bytes() == src.read_bytes()
    kept = client.get_object(Bucket=store.bucket, Key=key, VersionId=version)["Body"].read()
    assert kept == src.read_bytes()


def test_retention_can_be_extended_never_shortened_through_the_store(
    store: S3Store, tmp_path: Path
) -> None:
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    sha = store.put_original(_file(tmp_path / "clip.mp4", 1000), retain_until=until).sha256
    assert store.lock_status(sha).retain_until == until

    later = until + timedelta(days=3650)
    store.set_retention(sha, later)
    assert store.lock_status(sha).retain_until == later

    with pytest.raises(ObjectLocked, match="never shortened") as caught:
        store.set_retention(sha, until)
    assert caught.value.key.endswith(sha)
    assert store.lock_status(sha).retain_until == later


def test_a_legal_hold_forbids_deleting_even_when_retention_is_bypassed(
    tmp_path: Path, seaweed: Seaweed
) -> None:
    store = open_s3_store(s3_settings(tmp_path / "home", seaweed, retention_mode="GOVERNANCE"))
    sha = store.put_original(_file(tmp_path / "clip.mp4", 1000)).sha256
    key, client = original_key(sha), seaweed.client
    (locked,) = _versions(client, store.bucket, key)
    assert store.lock_status(sha).mode == "GOVERNANCE"

    store.set_legal_hold(sha, True)
    assert store.lock_status(sha).legal_hold
    with pytest.raises(ClientError) as caught:
        client.delete_object(
            Bucket=store.bucket,
            Key=key,
            VersionId=locked["VersionId"],
            BypassGovernanceRetention=True,
        )
    assert _code(caught) == "AccessDenied"

    store.set_legal_hold(sha, False)
    assert not store.lock_status(sha).legal_hold
    # GOVERNANCE lets a privileged user bypass the retention once no hold is left...
    client.delete_object(
        Bucket=store.bucket, Key=key, VersionId=locked["VersionId"], BypassGovernanceRetention=True
    )
    # ...and then whatever is put under the key is caught by the store's re-read.
    client.put_object(Bucket=store.bucket, Key=key, Body=b"forged")
    with pytest.raises(ChecksumMismatch) as mismatch:
        store.verify_original(sha)
    assert mismatch.value.expected == sha
    assert mismatch.value.found == hashlib.sha256(b"forged").hexdigest()


def test_a_missing_original_is_a_storage_error(store: S3Store) -> None:
    with pytest.raises(StorageError, match="missing"):
        store.verify_original("ab" * 32)
    with pytest.raises(StorageError, match="missing"), store.original_file("ab" * 32):
        pass


def test_derived_objects_are_apart_unlocked_and_cached_locally(
    store: S3Store, tmp_path: Path, seaweed: Seaweed
) -> None:
    proxy = _file(tmp_path / "proxy.mp4", 7 * MIB)
    key = store.put_derived("ab" * 32, "proxy.mp4", proxy)
    assert key == f"derived/{'ab' * 32}/proxy.mp4"
    head = seaweed.client.head_object(Bucket=store.bucket, Key=key)
    assert "ObjectLockMode" not in head, "derived objects can be made again: not locked"

    local = store.derived_path(key)
    assert local.read_bytes() == proxy.read_bytes()
    inode = local.stat().st_ino
    assert store.derived_path(key) == local and local.stat().st_ino == inode, "cached"
    # A proxy made again (on any host) replaces the cached copy.
    remade = _file(tmp_path / "remade.mp4", 1000)
    store.put_derived("ab" * 32, "proxy.mp4", remade)
    assert store.derived_path(key).read_bytes() == remade.read_bytes()
    with pytest.raises(StorageError, match="missing"):
        store.derived_path(f"derived/{'cd' * 32}/proxy.mp4")


def test_the_self_test_passes_where_the_lock_holds(store: S3Store) -> None:
    for mode in ("COMPLIANCE", "GOVERNANCE"):
        check = check_lock(store.client, store.bucket, mode, datetime.now(UTC))
        assert check.enforced, check.problems


def test_the_self_test_flags_a_bucket_without_object_lock_loudly(
    tmp_path: Path, seaweed: Seaweed, caplog: pytest.LogCaptureFixture
) -> None:
    settings = s3_settings(tmp_path / "home", seaweed)
    seaweed.client.create_bucket(Bucket=settings.store.s3.bucket)  # made by hand, no lock

    with caplog.at_level(logging.CRITICAL, logger="pipeline.storage.s3"):
        store = open_s3_store(settings)

    (record,) = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "OBJECT LOCK IS NOT ENFORCED" in record.getMessage()
    assert settings.store.s3.bucket in record.getMessage()
    check = check_lock(store.client, store.bucket, "COMPLIANCE", datetime.now(UTC))
    assert not check.enforced and "refused to lock" in check.problems[0]
    # The store does not write originals there unlocked: the server refuses the lock.
    with pytest.raises(StorageError, match="InvalidRequest"):
        store.put_original(_file(tmp_path / "clip.mp4", 100))


def test_wrong_credentials_are_one_clean_storage_error(tmp_path: Path, seaweed: Seaweed) -> None:
    settings = s3_settings(tmp_path / "home", seaweed, secret_key="not-the-secret")
    with pytest.raises(StorageError, match="Forbidden") as caught:
        open_store(settings)
    assert type(caught.value) is StorageError
    assert "not-the-secret" not in str(caught.value)


def test_s3_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.settings import load_settings

    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv("EVIDENCE_STORE__KIND", "s3")
    monkeypatch.setenv("EVIDENCE_STORE__S3__ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("EVIDENCE_STORE__S3__SECRET_KEY", "s3cr3t")
    monkeypatch.setenv("EVIDENCE_STORE__S3__RETENTION_MODE", "GOVERNANCE")
    s3 = load_settings().store.s3
    assert (s3.endpoint_url, s3.retention_mode, s3.retention_days) == (
        "http://127.0.0.1:8333",
        "GOVERNANCE",
        184,
    )
    assert s3.secret_key.get_secret_value() == "s3cr3t" and "s3cr3t" not in repr(s3)
    assert s3.reread and s3.addressing_style == "path"
