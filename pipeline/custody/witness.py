"""Witnesses: copies of every signed checkpoint kept where this instance cannot rewrite them.

A checkpoint in the catalog proves nothing once someone who can write the catalog deletes it
together with the events it covered. So each checkpoint is also written to witnesses, and
verify reads them back: a witnessed checkpoint missing from the catalog, or naming another
hash than the log has, is tampering.

- the **home file** ``EVIDENCE_HOME/custody/checkpoints.jsonl``: always written, but on the
  instance's own disk, so it only catches clumsy edits (an attacker who can write the catalog
  can empty it too);
- a **folder** elsewhere (``custody.witness_dir``): another machine's disk, a share mounted
  append-only; ``checkpoints.jsonl`` in it;
- the **S3 bucket** (with ``store.kind = "s3"`` and ``custody.witness_s3``): one object per
  checkpoint under Object Lock in COMPLIANCE mode, which no credential can delete or shorten.

Writing happens after the checkpoint committed (a line always names a checkpoint that
exists). A witness that is down misses checkpoints; the next signing writes every checkpoint
the witness has not got yet, so a witness catches up by itself.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pipeline.custody.verify_bag import Problem
from pipeline.errors import StorageError
from pipeline.settings import Settings
from pipeline.storage.s3client import S3Client, make_client, s3_errors

log = logging.getLogger(__name__)

FIELDS = frozenset({"seq", "hash", "at", "key_id", "signature"})
S3_PREFIX = "custody/checkpoints/"
TAIL_BYTES = 64 << 10
#: Witness objects are tiny and are the proof of the log's history: locked for ten years.
S3_RETENTION_DAYS = 3650


class Witness(Protocol):
    """Somewhere checkpoints are copied to and read back from."""

    @property
    def name(self) -> str:
        """Shown in problems (``s3://bucket/custody/checkpoints/``)."""
        ...

    @property
    def external(self) -> bool:
        """Off the instance's own disk: one who can write EVIDENCE_HOME cannot rewrite it."""
        ...

    def write(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def read(self) -> list[dict[str, Any]]:
        """Every checkpoint witnessed; ValueError names an entry that is not one."""
        ...

    def newest(self, hint: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The witnessed checkpoint with the highest seq (None: none yet). ``hint``: the
        catalog's newest checkpoint, which the witness most likely holds as its newest too
        (a witness may use it to answer without reading everything)."""
        ...


def check_record(record: object, where: str) -> dict[str, Any]:
    if not isinstance(record, dict) or not record.keys() >= FIELDS:
        raise ValueError(f"{where} is not a checkpoint")
    return record


@dataclass(frozen=True)
class FileWitness:
    """A JSON Lines file, appended to and fsync'd."""

    path: Path
    external: bool

    @property
    def name(self) -> str:
        return str(self.path)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        lines = "".join(json.dumps(dict(r), sort_keys=True) + "\n" for r in records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found: list[dict[str, Any]] = []
        for number, line in enumerate(self.path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{self.path} line {number} is not JSON: {exc}") from exc
            found.append(check_record(record, f"{self.path} line {number}"))
        return found

    def newest(self, hint: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        # Signing asks this every time: read the file's tail, not a year of lines.
        try:
            with self.path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL_BYTES))
                tail = f.read().decode("utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return None
        for line in reversed(tail[1:] if size > TAIL_BYTES else tail):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.keys() >= FIELDS:
                return record
        return max(self.read(), key=lambda r: int(r["seq"]), default=None) if tail else None


@dataclass(frozen=True)
class S3Witness:
    """One object per checkpoint, ``custody/checkpoints/<seq>-<key id>.json``, locked."""

    client: S3Client
    bucket: str
    clock: Any = None  # () -> datetime; None: the real clock
    external: bool = True

    @property
    def name(self) -> str:
        return f"s3://{self.bucket}/{S3_PREFIX}"

    def key(self, record: Mapping[str, Any]) -> str:
        return f"{S3_PREFIX}{int(record['seq']):015d}-{str(record['key_id'])[:16]}.json"

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        now = self.clock() if self.clock else datetime.now(UTC)
        until = now + timedelta(days=S3_RETENTION_DAYS)
        for record in records:
            body = json.dumps(dict(record), sort_keys=True).encode("utf-8")
            with s3_errors(f"cannot witness checkpoint {record['seq']} in {self.name}"):
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.key(record),
                    Body=body,
                    ContentType="application/json",
                    ObjectLockMode="COMPLIANCE",
                    ObjectLockRetainUntilDate=until,
                )

    def _keys(self, start_after: str = "") -> list[str]:
        keys: list[str] = []
        with s3_errors(f"cannot list {self.name}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=S3_PREFIX, StartAfter=start_after
            )
            for page in pages:
                keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)

    def read(self) -> list[dict[str, Any]]:
        # Each object is its own GET: a few in flight at once keep a long history quick.
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(self._get, self._keys()))

    def newest(self, hint: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        # Keys sort by their zero-padded seq. Signing asks this at every batch: with the
        # catalog's newest as the hint, list only from its seq on (its own key included),
        # not years of checkpoints; a witness without it is behind, and is listed whole.
        if hint is not None:
            after = self._keys(start_after=f"{S3_PREFIX}{int(hint['seq']):015d}")
            if after:
                return self._get(after[-1])
        keys = self._keys()
        return self._get(keys[-1]) if keys else None

    def _get(self, key: str) -> dict[str, Any]:
        # The newest version: a later PUT to the same key (anyone with the bucket's keys can
        # make one) cannot remove what was witnessed, and what it adds must still be signed.
        with s3_errors(f"cannot read {self.bucket}/{key}"):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            record = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"{self.bucket}/{key} is not JSON: {exc}") from exc
        return check_record(record, f"{self.bucket}/{key}")


def home_file(home: Path) -> Path:
    return home / "custody" / "checkpoints.jsonl"


def configured(settings: Settings, clock: Any = None) -> list[Witness]:
    """The witnesses of this instance: the home file first, then the external ones."""
    found: list[Witness] = [FileWitness(home_file(settings.home), external=False)]
    if settings.custody.witness_dir:
        folder = Path(settings.custody.witness_dir).expanduser()
        external = not _inside(folder, settings.home)
        found.append(FileWitness(folder / "checkpoints.jsonl", external=external))
    if settings.store.kind == "s3" and settings.custody.witness_s3:
        found.append(S3Witness(make_client(settings.store.s3), settings.store.s3.bucket, clock))
    return found


def _inside(folder: Path, home: Path) -> bool:
    try:
        return folder.resolve().is_relative_to(home.resolve())
    except OSError:
        return False


WITNESS_ERRORS = (OSError, ValueError, StorageError)


def local_only(witnesses: Sequence[Witness]) -> list[Problem]:
    """A warning when no witness is off this instance's disk."""
    if any(w.external for w in witnesses):
        return []
    return [
        Problem(
            "W-WITNESS-LOCAL",
            "custody.witness_dir",
            "every checkpoint witness is on this instance's disk: a rewrite of the whole log "
            "with its checkpoints would go unseen (set custody.witness_dir, or use an S3 "
            "store)",
        )
    ]
