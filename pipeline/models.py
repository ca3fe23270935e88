"""The domain vocabulary: enums for states and decisions, frozen dataclasses for values.

Every other module speaks in these terms; the catalog stores them, the CLI prints them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


class MediaKind(enum.StrEnum):
    """What a media item is. The zh-CN label is what users see beside the id."""

    VIDEO = "video"
    AUDIO = "audio"
    PHOTO = "photo"
    DOCUMENT = "document"
    OTHER = "other"

    @property
    def label_zh(self) -> str:
        return _KIND_ZH[self]


_KIND_ZH = {
    MediaKind.VIDEO: "视频",
    MediaKind.AUDIO: "音频",
    MediaKind.PHOTO: "照片",
    MediaKind.DOCUMENT: "文书",
    MediaKind.OTHER: "其他",
}


class MediaStatus(enum.StrEnum):
    """Where a media item stands. Quarantined items keep their bytes in the store."""

    ARCHIVED = "archived"  # 已归档
    QUARANTINED = "quarantined"  # 已隔离


class JobState(enum.StrEnum):
    """Steps of one ingest job, in order. A job resumes from the last step it recorded."""

    PENDING = "pending"  # seen on the dock, nothing stored yet
    STORED = "stored"  # copy in the store, re-read and hash matched
    CATALOGUED = "catalogued"  # probed, media item (or sighting) in the catalog
    DERIVED = "derived"  # proxy and thumbnail made (or not needed, or quarantined)
    DONE = "done"  # source released from the dock
    HELD = "held"  # source kept on the dock on purpose (e.g. checksum mismatch)

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.HELD)


class Outcome(enum.StrEnum):
    """How one file of a sweep ended."""

    ARCHIVED = "archived"  # a new media item, archived
    DUPLICATE = "duplicate"  # bytes already archived: a sighting was recorded
    QUARANTINED = "quarantined"  # preserved (or held on the dock) with a reason
    WAITING = "waiting"  # still being written (or taken by another sweep): next sweep
    FAILED = "failed"  # a system error: nothing decided, the job will be retried


class EventKind(enum.StrEnum):
    """The closed set of custody events. Every side effect on evidence emits one."""

    INGESTED = "ingested"
    VERIFIED = "verified"  # a stored copy re-read and its hash matched
    SIGHTED = "sighted"  # the same bytes seen again on a dock
    PROXY_MADE = "proxy_made"
    THUMBNAIL_MADE = "thumbnail_made"
    QUARANTINED = "quarantined"
    QUARANTINE_RELEASED = "quarantine_released"  # a person let a quarantined file through
    RELEASED = "released"  # the source left the dock
    STATION_ADDED = "station_added"
    REGISTRY_CHANGED = "registry_changed"  # device, officer or assignment added or changed
    ALERT = "alert"  # something a person must look at (unknown device, clock drift, …)
    LINKED = "linked"
    UNLINKED = "unlinked"
    DESCRIBED = "described"  # written description (文字说明) set
    TAGGED = "tagged"
    VIEWED = "viewed"  # access supervision (调阅监督): who looked, and why
    EXPORTED = "exported"
    SEALED = "sealed"  # a case file archived
    FIXITY_CHECKED = "fixity_checked"
    FIXITY_FAILED = "fixity_failed"


@dataclass(frozen=True)
class Station:
    """A docking station (采集站): a dump folder with one sub-folder per recorder."""

    id: str
    root: Path
    name: str = ""
    location: str = ""


@dataclass(frozen=True)
class SourceFile:
    """A file on a dock, as seen at one moment."""

    station_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Digest:
    """The result of copying and hashing one source."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ProbeResult:
    """What MediaInfo says about a file. Every field but ``kind`` may be unknown."""

    kind: MediaKind
    container: str | None = None
    duration_s: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    encoded_at: datetime | None = None
    recorded_at: datetime | None = None
    make: str | None = None
    model: str | None = None
    serial: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaItem:
    """One ingested original, keyed by its SHA-256."""

    id: int
    sha256: str
    size: int
    kind: MediaKind
    status: MediaStatus
    original_name: str
    station_id: str
    source_path: str
    ingested_at: datetime
    probe: ProbeResult
    proxy_key: str | None = None
    thumbnail_key: str | None = None
    quarantine_reason: str | None = None


@dataclass(frozen=True)
class QuarantineEntry:
    """A file that needs a person: why, and where its bytes are."""

    id: int
    station_id: str
    source_path: str
    code: str
    reason: str
    created_at: datetime
    sha256: str | None = None  # None when no verified copy exists (the source stays on the dock)
    media_id: int | None = None


@dataclass(frozen=True)
class FileReport:
    """How one file of a sweep ended, for the summary."""

    path: str
    outcome: Outcome
    sha256: str | None = None
    media_id: int | None = None
    kind: MediaKind | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SweepReport:
    """The summary of one sweep of one station."""

    station_id: str
    files: tuple[FileReport, ...]
    seconds: float

    def count(self, outcome: Outcome) -> int:
        return sum(1 for f in self.files if f.outcome is outcome)

    @property
    def ok(self) -> bool:
        """True unless a system error left a file undecided (waiting files come next sweep)."""
        return all(f.outcome is not Outcome.FAILED for f in self.files)
