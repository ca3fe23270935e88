"""Letting a quarantined file through once the reason is gone.

Two kinds of quarantine can be released, and the release is a custody event naming who did it:

- for the *device* (unknown, lost or retired recorder): once a person has registered the device
  or corrected its status, the file is identified again, attributed, given its proxy and
  archived;
- a *failed transcode*, which may have been the system's fault rather than the file's (a wrong
  ffmpeg or transcode setting quarantined good recordings before derivation learnt to test
  itself): the proxy and thumbnail are made again with the current settings, and if that now
  works the file is archived with them.

A file that is itself unusable (truncated, undecodable while ffmpeg converts a test clip with
the same settings) stays quarantined: its bytes are kept, there is nothing to release it into.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import stations
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.errors import (
    DeviceLost,
    DeviceRetired,
    EvidenceError,
    QuarantineError,
    TranscodeError,
    TranscoderUnusable,
    UnknownDevice,
)
from pipeline.ingest.identify import device_verdict, identify
from pipeline.ingest.steps import IngestContext, record_derivatives, record_quarantine
from pipeline.instance import Instance
from pipeline.media.derive import Derived, make_derivatives
from pipeline.models import (
    Device,
    EventKind,
    Identification,
    MediaItem,
    MediaStatus,
    QuarantineEntry,
)

DEVICE_CODES = frozenset({UnknownDevice.code, DeviceLost.code, DeviceRetired.code})
#: Released when deriving again succeeds: the failure may have been the configuration's.
RETRIED_CODES = frozenset({TranscodeError.code})
RELEASABLE = DEVICE_CODES | RETRIED_CODES

#: The zh-CN label of each quarantine and hold code (docs/problems.md), as pages show them.
CODE_LABELS = {
    "unknown-device": "未登记的记录仪",
    "device-lost": "记录仪已挂失",
    "device-retired": "记录仪已停用",
    "unreadable-media": "无法读取的媒体",
    "transcode-failed": "转码失败",
    "name-contradicts-content": "文件名与内容不符",
    "checksum-mismatch": "校验值不符",
    "source-unreadable": "源文件无法读取",
    "sparse-file": "稀疏文件（内容缺失）",
    "too-large": "文件过大",
    "internal-error": "内部错误",
}


def code_label(code: str) -> str:
    """The zh-CN label of a quarantine code (the code itself for one not listed)."""
    return CODE_LABELS.get(code, code)


@dataclass(frozen=True)
class Release:
    """How releasing one entry went: the item it archived, or why it was kept."""

    entry_id: int
    item: MediaItem | None = None
    error: EvidenceError | None = None

    @property
    def released(self) -> bool:
        return self.item is not None


def release(ctx: IngestContext, entry_id: int, actor: str, reason: str | None = None) -> MediaItem:
    """Release one quarantine entry (``reason``, when given, is recorded with it); raises
    QuarantineError saying why it cannot be."""
    now = ctx.clock()
    with ctx.catalog.begin() as conn:
        entry = media_db.quarantine_entry(conn, entry_id)
        _refuse_if_resolved(entry)
        if entry.code not in RELEASABLE or entry.media_id is None or entry.job_id is None:
            raise QuarantineError(
                f"quarantine {entry_id} ({entry.code}: {entry.reason}) is about the file itself; "
                "only quarantines for an unknown, lost or retired device, or a failed transcode "
                "that now succeeds, can be released"
            )
        item = media_db.get(conn, entry.media_id)
        job = jobs_db.get(conn, entry.job_id)
        source = job.source()
        # A device quarantine is decided by the registry again; a transcode one keeps the
        # item's identification, which nothing about the transcode could have changed.
        ident: Identification | None = None
        device: Device | None = None
        if entry.code in DEVICE_CODES:
            root, preserves_mtimes = conn.execute(
                select(stations.c.root, stations.c.preserves_mtimes).where(
                    stations.c.id == job.station_id
                )
            ).one()
            ident, device = identify(
                conn,
                ctx.settings.devices,
                Path(root),
                source,
                item.probe,
                now,
                preserves_mtimes=bool(preserves_mtimes),
            )
    if ident is not None:
        problem, flags = device_verdict(ident, device, ctx.settings.devices.unknown)
        if problem is not None:
            raise QuarantineError(
                f"quarantine {entry_id}: {problem.reason}; register the device or correct its "
                "status first (evidence devices add / set-status)"
            )
        ident = replace(ident, flags=(*ident.flags, *flags))
    derived = _derive_again(ctx, entry_id, item)
    if entry.code in RETRIED_CODES and derived.failure is not None:
        raise QuarantineError(
            f"quarantine {entry_id} ({entry.code}: {entry.reason}) is about the file itself: "
            f"ffmpeg still fails on it ({derived.failure.reason}) with settings that convert "
            "a test clip"
        )
    with ctx.catalog.begin() as conn:
        # Another release may have won while ffmpeg ran: one release, one custody event.
        _refuse_if_resolved(media_db.quarantine_entry(conn, entry_id))
        media_db.resolve_quarantine(conn, entry_id, actor, now)
        written = {}
        if ident is not None:
            written = media_db.set_identification(conn, item.id, ident)
        written.update(media_db.set_archived(conn, item.id))
        custody.append(
            conn,
            EventKind.QUARANTINE_RELEASED,
            actor,
            media_id=item.id,
            station_id=job.station_id,
            subject=str(entry_id),
            details={
                "quarantine": entry_id,
                "code": entry.code,
                "device": ident.device_serial if ident else item.device_serial,
                "officer": ident.officer_id if ident else item.officer_id,
                "flags": [f.code for f in (ident.flags if ident else item.flags)],
                "row": replay.recorded_row(written),
                **({"reason": reason} if reason else {}),
            },
        )
        record_derivatives(ctx, conn, item.id, job.station_id, derived, now)
        if derived.failure is not None:
            failure = derived.failure
            record_quarantine(ctx, conn, item.id, job, source, failure.code, failure.reason, now)
        return media_db.get(conn, item.id)


def release_many(
    ctx: IngestContext, entry_ids: Iterable[int], actor: str, reason: str | None = None
) -> list[Release]:
    """Release each entry in turn (each id once, in the order given); an entry that cannot be
    released is reported with its error and the others go on."""
    results: list[Release] = []
    for entry_id in dict.fromkeys(entry_ids):
        try:
            results.append(Release(entry_id, item=release(ctx, entry_id, actor, reason)))
        except EvidenceError as exc:
            results.append(Release(entry_id, error=exc))
    return results


def device_entries(ctx: IngestContext, serial: str) -> list[int]:
    """The open quarantine entries of a device's files, oldest first."""
    with ctx.catalog.read() as conn:
        return [e.id for e in media_db.quarantine_entries(conn, device_serial=serial)]


# --------------------------------------------------------------------------------- use cases


@dataclass(frozen=True)
class Released:
    """An entry released: the item it archived, and to whom it is now attributed."""

    entry: int
    released: Literal[True] = field(default=True, init=False)
    media: int
    status: MediaStatus
    device: str | None
    officer: str | None


@dataclass(frozen=True)
class Kept:
    """An entry still in quarantine, and why (the error's code and message)."""

    entry: int
    released: Literal[False] = field(default=False, init=False)
    code: str
    error: str


def list_entries(instance: Instance, *, include_resolved: bool = False) -> list[QuarantineEntry]:
    """Quarantined files with their reasons (and, with ``include_resolved``, released ones)."""
    with instance.catalog.read() as conn:
        return media_db.quarantine_entries(conn, include_resolved=include_resolved)


def release_entries(
    instance: Instance,
    entry_ids: Iterable[int] = (),
    *,
    device: str | None = None,
    reason: str | None = None,
) -> list[Released | Kept]:
    """Release the given entries and, with ``device``, every open entry of that device's
    files, each in turn; one that cannot be released is kept and reported, the others go
    on. Releasing is done by the instance's actor, named in the custody log with the
    ``reason`` given (the web requires one; the CLI takes ``--reason``)."""
    if not instance.actor:
        raise QuarantineError("a release needs a named actor (--as OFFICER-ID)")
    ctx = IngestContext(
        catalog=instance.catalog,
        store=instance.store,
        settings=instance.settings,
        owner=jobs_db.new_owner(),
        clock=instance.clock,
    )
    ids = list(entry_ids)
    if device is not None:
        ids += device_entries(ctx, device)
        if not ids:
            raise QuarantineError(f"device {device} has no files in quarantine")
    why = (reason or "").strip() or None
    return [_outcome(r) for r in release_many(ctx, ids, instance.actor, why)]


def _outcome(result: Release) -> Released | Kept:
    if result.item is not None:
        item = result.item
        return Released(result.entry_id, item.id, item.status, item.device_serial, item.officer_id)
    assert result.error is not None
    return Kept(result.entry_id, result.error.code, str(result.error))


def _refuse_if_resolved(entry: QuarantineEntry) -> None:
    if entry.resolved_at is not None:
        raise QuarantineError(
            f"quarantine {entry.id} was already released by {entry.resolved_by} "
            f"at {entry.resolved_at:%Y-%m-%d %H:%M:%S} UTC"
        )


def _derive_again(ctx: IngestContext, entry_id: int, item: MediaItem) -> Derived:
    try:
        return make_derivatives(ctx.store, ctx.settings, item)
    except TranscoderUnusable as exc:
        raise QuarantineError(
            f"quarantine {entry_id}: {exc}; correct the transcode settings first"
        ) from exc
