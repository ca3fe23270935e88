"""The archive store: where originals and their derived files live.

One interface, two back ends: the local filesystem here, S3 with Object Lock in
pipeline.s3store. Originals are content-addressed by SHA-256 and immutable; proxies and
thumbnails are derived objects kept apart, under the original's digest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from pipeline import processes
from pipeline.errors import ChecksumMismatch, StorageError
from pipeline.models import Digest
from pipeline.settings import Settings
from pipeline.storage.hashing import ALGORITHM, copy_and_hash, hash_file, subject_of

#: Originals: readable by the instance's user alone, and by nobody writable.
ORIGINAL_MODE = stat.S_IRUSR  # 0400
#: Proxies and thumbnails: they show what the original shows.
DERIVED_MODE = stat.S_IRUSR | stat.S_IWUSR  # 0600
#: Every folder of the archive (mkdir's mode is also masked by the umask: never wider).
FOLDER_MODE = stat.S_IRWXU  # 0700

#: A temporary older than this cannot belong to a copy still running (6 h ≈ 5 TB at 250 MB/s).
STALE_TEMPORARY_S = 6 * 3600

log = logging.getLogger(__name__)


def temporary_name(suffix: str = ".part") -> str:
    """A temporary's name tells which process writes it, so an orphan is known at once."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}{suffix}"


def writer_gone(name: str, mtime: float) -> bool:
    """The process that wrote a temporary is dead (same host), or it is too old to belong to
    a copy still running."""
    if mtime < time.time() - STALE_TEMPORARY_S:
        return True
    pieces = name.rsplit("-", 2)
    # Another host's, or an older name without a pid: only its age can tell.
    return len(pieces) == 3 and processes.gone(pieces[0], pieces[1])


def remove_orphans(
    folder: Path, is_archived: Callable[[str], bool], block_size: int, keep_in: Path
) -> list[Path]:
    """A process killed mid-copy leaves its temporary. It was never published; it is removed
    once its writer is gone, after checking it holds nothing unarchived: a copy whose bytes
    are an archived original goes; any other (an interrupted copy, whose source stays on its
    dock until a verified copy exists) is moved to ``keep_in`` for a person to look at rather
    than deleted on that reasoning alone. Returns what was kept."""
    kept: list[Path] = []
    for leftover in sorted(folder.iterdir()):
        with contextlib.suppress(FileNotFoundError):
            st = leftover.lstat()
            if not stat.S_ISREG(st.st_mode) or not writer_gone(leftover.name, st.st_mtime):
                continue
            digest = hash_file(leftover, block_size)
            if is_archived(digest.sha256):
                leftover.unlink()
                continue
            keep_in.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            target = keep_in / f"{digest.sha256}.partial"
            os.replace(leftover, target)
            kept.append(target)
            log.warning(
                "interrupted copy kept for review: %s (%d bytes, sha256 %s, not archived)",
                target,
                digest.size,
                digest.sha256,
            )
    return kept


@contextlib.contextmanager
def scratch_folder(work: Path, suffix: str) -> Iterator[Path]:
    """A scratch folder for one piece of work, named after its process. Work killed midway
    (a sealing, a proxy) leaves its folder — copies of archived originals or things derived
    from them, nothing that is not in the store — and the next one of its kind removes every
    folder whose process is gone."""
    work.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    for leftover in work.glob("*" + suffix):
        with contextlib.suppress(FileNotFoundError):
            if writer_gone(leftover.name, leftover.stat().st_mtime):
                shutil.rmtree(leftover, ignore_errors=True)
    path = work / temporary_name(suffix)
    path.mkdir(mode=FOLDER_MODE)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class ArchiveStore(Protocol):
    """What the pipeline needs of a store."""

    def put_original(self, source: Path | BinaryIO) -> Digest:
        """Copy and hash ``source`` in one pass, make it durable, re-read it, and only then
        publish it under its digest. Idempotent: bytes already stored are verified, not
        written again. Raises ChecksumMismatch (nothing published) or StorageError."""
        ...

    def verify_original(self, sha256: str) -> Digest:
        """Re-read a stored original; raise ChecksumMismatch unless it hashes to ``sha256``."""
        ...

    def has_original(self, sha256: str) -> bool: ...

    @contextlib.contextmanager
    def original_file(self, sha256: str) -> Iterator[Path]:
        """A local path to read the original from (probe, ffmpeg), for the block's duration."""
        ...

    def put_derived(self, sha256: str, name: str, source: Path) -> str:
        """Store a derived file (proxy, thumbnail) of an original; returns its key."""
        ...

    def derived_path(self, key: str) -> Path:
        """A local path of a derived object, for playing or exporting it."""
        ...

    # Disposal (issue 19): only pipeline.retention.disposal calls these, after an approved
    # request's grace period, with the DISPOSED event written first.
    def remove_original(self, sha256: str) -> None:
        """Remove a stored original for good (every version of it); nothing there is not an
        error. ObjectLocked when the store refuses (a lock not yet expired)."""
        ...

    def remove_derived(self, key: str) -> None:
        """Remove a derived object (proxy, thumbnail); nothing there is not an error."""
        ...


class LocalStore:
    """Archive on a local filesystem.

    Layout under ``root``: ``originals/ab/cd/<sha256>`` (read-only files), ``derived/<sha256>/``
    (proxy, thumbnail), ``tmp/`` (writes in progress; never read as archived). Everything is
    the instance's alone (:mod:`pipeline.storage.modes`): recordings show people, and every
    viewing must go through access supervision, not through the file system.
    """

    def __init__(self, root: Path, block_size: int = 4 << 20) -> None:
        self.root = root
        self.block_size = block_size
        self.tmp = root / "tmp"
        for folder in (root, root / "originals", root / "derived", self.tmp):
            folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        remove_orphans(self.tmp, self.has_original, self.block_size, self.root / "orphans")

    def original_path(self, sha256: str) -> Path:
        return self.root / "originals" / sha256[:2] / sha256[2:4] / sha256

    def put_original(self, source: Path | BinaryIO) -> Digest:
        tmp = self.tmp / temporary_name()
        try:
            digest = self._write(source, tmp)
            final = self.original_path(digest.sha256)
            if final.exists():
                # Same bytes archived before: keep the stored copy, prove it is still intact.
                tmp.unlink()
                return self.verify_original(digest.sha256)
            self._verify(tmp, digest, subject=subject_of(source))
            self._publish(tmp, final)
            return digest
        except OSError as exc:
            raise StorageError(f"cannot store {subject_of(source)} in {self.root}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _write(self, source: Path | BinaryIO, tmp: Path) -> Digest:
        # Private from its first byte: a copy in progress is the original already.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DERIVED_MODE)
        with os.fdopen(fd, "wb", buffering=0) as out:
            digest = copy_and_hash(source, out, self.block_size)
            out.flush()
            os.fsync(out.fileno())
        return digest

    def _verify(self, path: Path, expected: Digest, *, subject: Path | str) -> Digest:
        found = hash_file(path, self.block_size, from_disk=True)
        if found.sha256 != expected.sha256:
            raise ChecksumMismatch(subject, ALGORITHM, expected.sha256, found.sha256)
        return found

    def _publish(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        tmp.chmod(ORIGINAL_MODE)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def verify_original(self, sha256: str) -> Digest:
        path = self.original_path(sha256)
        if not path.exists():
            raise StorageError(f"original {sha256} is missing from {self.root}")
        return self._verify(path, Digest(sha256, -1), subject=path)

    def has_original(self, sha256: str) -> bool:
        return self.original_path(sha256).exists()

    @contextlib.contextmanager
    def original_file(self, sha256: str) -> Iterator[Path]:
        path = self.original_path(sha256)
        if not path.exists():
            raise StorageError(f"original {sha256} is missing from {self.root}")
        yield path

    def put_derived(self, sha256: str, name: str, source: Path) -> str:
        key = f"derived/{sha256}/{name}"
        target = self.root / key
        try:
            target.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            tmp = target.with_name(f".{name}.{uuid.uuid4().hex}.part")
            shutil.copyfile(source, tmp)
            tmp.chmod(DERIVED_MODE)
            os.replace(tmp, target)
        except OSError as exc:
            raise StorageError(f"cannot store {key} in {self.root}: {exc}") from exc
        return key

    def derived_path(self, key: str) -> Path:
        path = self.root / key
        if not path.exists():
            raise StorageError(f"derived object {key} is missing from {self.root}")
        return path

    # ------------------------------------------------------------ disposal (issue 19)
    # The local store has no lock of its own: the dates the catalog keeps
    # (pipeline.retention.locks.may_remove) are checked by the disposal before it calls these.

    def remove_original(self, sha256: str) -> None:
        path = self.original_path(sha256)
        try:
            path.unlink(missing_ok=True)
            _fsync_dir(path.parent)
        except FileNotFoundError:
            return  # its folder went too: nothing there
        except OSError as exc:
            raise StorageError(f"cannot remove original {sha256} from {self.root}: {exc}") from exc

    def remove_derived(self, key: str) -> None:
        path = self.root / key
        if not key.startswith("derived/") or ".." in Path(key).parts:
            raise StorageError(f"not a derived object's key: {key}")
        try:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty: another derived file stays
                path.parent.rmdir()
        except OSError as exc:
            raise StorageError(f"cannot remove {key} from {self.root}: {exc}") from exc


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry must reach the disk too."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_store(settings: Settings) -> ArchiveStore:
    """The store the settings name: the local archive folder, or an S3 bucket."""
    if settings.store.kind == "s3":
        # Imported here: pipeline.s3store imports this module, and only S3 set-ups need boto3.
        from pipeline.storage.s3 import open_s3_store

        return open_s3_store(settings)
    return LocalStore(settings.archive_dir, settings.ingest.block_size)
