"""The local archive store: content addressing, durability rules, and tamper detection."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from pipeline.errors import ChecksumMismatch, StorageError
from pipeline.storage.local import LocalStore


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_original_is_content_addressed_read_only_and_hashed_in_one_pass(tmp_path: Path) -> None:
    data = b"recorder footage " * 100_000
    src = tmp_path / "clip.mp4"
    src.write_bytes(data)
    store = LocalStore(tmp_path / "archive", block_size=64 << 10)

    digest = store.put_original(src)

    assert digest.sha256 == _sha(data) and digest.size == len(data)
    stored = store.original_path(digest.sha256)
    assert (
        stored
        == tmp_path / "archive/originals" / digest.sha256[:2] / digest.sha256[2:4] / digest.sha256
    )
    assert stored.read_bytes() == data
    assert stat.S_IMODE(stored.stat().st_mode) & 0o222 == 0, "originals must be read-only"
    assert src.read_bytes() == data, "the source is never modified"
    assert list((tmp_path / "archive/tmp").iterdir()) == [], "no temporary left behind"


def test_same_bytes_twice_are_one_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "archive")
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert store.put_original(a) == store.put_original(b)
    assert len(list((tmp_path / "archive/originals").rglob("*/*/*"))) == 1


def test_empty_file_is_stored(tmp_path: Path) -> None:
    src = tmp_path / "empty.mp4"
    src.write_bytes(b"")
    digest = LocalStore(tmp_path / "archive").put_original(src)
    assert digest.sha256 == _sha(b"") and digest.size == 0


class CorruptingStore(LocalStore):
    """A disk that flips one bit of what was written, before the re-read."""

    def _write(self, source: Path, tmp: Path):  # type: ignore[no-untyped-def]
        digest = super()._write(source, tmp)
        data = bytearray(tmp.read_bytes())
        data[len(data) // 2] ^= 0x01
        tmp.write_bytes(bytes(data))
        return digest


def test_corrupted_write_is_a_checksum_mismatch_naming_both_digests(tmp_path: Path) -> None:
    data = b"x" * 10_000
    src = tmp_path / "clip.mp4"
    src.write_bytes(data)
    store = CorruptingStore(tmp_path / "archive")
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01

    with pytest.raises(ChecksumMismatch) as caught:
        store.put_original(src)

    err = caught.value
    assert err.algorithm == "sha256"
    assert err.expected == _sha(data) and err.found == _sha(bytes(flipped))
    assert err.expected in str(err) and err.found in str(err) and "clip.mp4" in str(err)
    assert not store.has_original(_sha(data)), "nothing unverified is published"
    assert list((tmp_path / "archive/tmp").iterdir()) == []


def test_verify_detects_a_flipped_byte_in_a_stored_original(tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"evidence bytes" * 1000)
    store = LocalStore(tmp_path / "archive")
    digest = store.put_original(src)
    stored = store.original_path(digest.sha256)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[0] ^= 0xFF
    stored.write_bytes(bytes(data))

    with pytest.raises(ChecksumMismatch) as caught:
        store.verify_original(digest.sha256)
    assert caught.value.expected == digest.sha256


def test_missing_original_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="missing"):
        LocalStore(tmp_path / "archive").verify_original("ab" * 32)


def test_derived_objects_are_kept_apart_from_originals(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "archive")
    proxy = tmp_path / "proxy.mp4"
    proxy.write_bytes(b"proxy")
    key = store.put_derived("ab" * 32, "proxy.mp4", proxy)
    assert key == f"derived/{'ab' * 32}/proxy.mp4"
    assert store.derived_path(key).read_bytes() == b"proxy"
    assert not (tmp_path / "archive/originals" / "ab").exists()


def test_stale_temporaries_of_a_killed_copy_are_removed_young_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    from pipeline.storage.local import STALE_TEMPORARY_S

    store = LocalStore(tmp_path / "archive")
    stale, young = store.tmp / "a.part", store.tmp / "b.part"
    stale.write_bytes(b"half")
    young.write_bytes(b"half")
    old = time.time() - STALE_TEMPORARY_S - 60
    os.utime(stale, (old, old))
    LocalStore(tmp_path / "archive")
    assert not stale.exists() and young.exists()
