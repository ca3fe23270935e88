"""The domain vocabulary: enums for states and decisions, frozen dataclasses for values.

Every other module speaks in these terms; the catalog stores them, the CLI prints them.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.names import raw_name, readable


class Labelled(enum.StrEnum):
    """A state or kind with its zh-CN label, declared together: ``ARCHIVED = "archived",
    "已归档"``. The value is what the catalog and JSON hold; ``label_zh`` what people read."""

    label_zh: str

    def __new__(cls, value: str, label_zh: str = "") -> Labelled:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label_zh = label_zh or value
        return member


class MediaKind(Labelled):
    """What a media item is. The zh-CN label is what users see beside the id."""

    VIDEO = "video", "视频"
    AUDIO = "audio", "音频"
    PHOTO = "photo", "照片"
    DOCUMENT = "document", "文书"
    OTHER = "other", "其他"


class MediaStatus(Labelled):
    """Where a media item stands. Quarantined items keep their bytes in the store."""

    ARCHIVED = "archived", "已归档"
    QUARANTINED = "quarantined", "已隔离"
    # Disposed by an approved request (issue 19): the bytes are gone, a tombstone stays.
    DISPOSED = "disposed", "已销毁"


class JobState(Labelled):
    """Steps of one ingest job, in order. A job resumes from the last step it recorded."""

    PENDING = "pending", "待处理"  # seen on the dock, nothing stored yet
    STORED = "stored", "已存储"  # copy in the store, re-read and hash matched
    CATALOGUED = "catalogued", "已编目"  # probed, media item (or sighting) in the catalog
    DERIVED = "derived", "已转码"  # proxy and thumbnail made (or not needed, or quarantined)
    DONE = "done", "已完成"  # source released from the dock
    HELD = "held", "留存采集站"  # source kept on the dock on purpose (e.g. checksum mismatch)
    VANISHED = "vanished", "已消失"  # the source left the dock before it was stored (alert raised)

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.HELD, JobState.VANISHED)


class Outcome(Labelled):
    """How one file of a sweep ended."""

    ARCHIVED = "archived", "已归档"  # a new media item, archived
    DUPLICATE = "duplicate", "重复"  # bytes already archived: a sighting was recorded
    QUARANTINED = "quarantined", "已隔离"  # preserved (or held on the dock) with a reason
    WAITING = "waiting", "等待"  # still being written (or taken by another sweep): next sweep
    FAILED = "failed", "失败"  # a system error: nothing decided, the job will be retried
    REFUSED = "refused", "拒收"  # a link, FIFO… or not the dock's: left, reported
    VANISHED = "vanished", "已消失"  # left the dock before a verified copy: an alert


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
    CASE_CHANGED = "case_changed"  # a case created, edited or concluded
    LINKED = "linked"
    UNLINKED = "unlinked"
    DESCRIBED = "described"  # written description (文字说明) or text-record fields set
    TAGGED = "tagged"
    VIEWED = "viewed"  # access supervision (调阅监督): who looked, and why
    EXPORTED = "exported"
    SEALED = "sealed"  # a case file archived
    FIXITY_CHECKED = "fixity_checked"
    FIXITY_FAILED = "fixity_failed"
    # Accounts (issue 15): who may act, and every sign-in, failure and sign-out.
    USER_CHANGED = "user_changed"  # an account added, disabled, enabled, its password or roles set
    SIGNED_IN = "signed_in"
    SIGN_IN_FAILED = "sign_in_failed"  # bad password, unknown login, disabled or locked account
    SIGNED_OUT = "signed_out"
    REFUSED = "refused"  # a signed-in person asked for evidence their roles do not reach
    # Station API (issue 17): tokens issued and revoked, uploads received whole.
    STATION_CHANGED = "station_changed"  # a station's token issued or revoked
    UPLOAD_RECEIVED = "upload_received"  # a station's upload complete, its SHA-256 checked
    # Supervision (issue 18): access that needs approval (调取、复制要经过审批).
    ACCESS_REQUESTED = "access_requested"  # a person asked to view, copy or export
    ACCESS_GRANTED = "access_granted"  # an approver granted it, time-limited, exactly as asked
    ACCESS_DENIED = "access_denied"  # an approver refused it, with a comment
    # Retention (issue 19): how long each record is kept, holds, and disposal by request.
    MARKED = "marked"  # an important-file mark (重点文件) set or cleared, or a retention class set
    HELD = "held"  # a legal hold placed on the item (directly, by its case or by a query)
    HOLD_RELEASED = "hold_released"
    DISPOSAL_REQUESTED = "disposal_requested"
    DISPOSAL_APPROVED = "disposal_approved"  # the grace period starts
    DISPOSAL_REFUSED = "disposal_refused"
    DISPOSAL_UNDONE = "disposal_undone"  # taken back within the grace period
    DISPOSED = "disposed"  # original and derivatives removed; the catalog keeps a tombstone


@dataclass(frozen=True)
class Station:
    """A docking station (采集站): a dump folder with one sub-folder per recorder."""

    id: str
    root: Path
    name: str = ""
    location: str = ""
    # The station copies files with the recorder's own mtimes (rsync -t, cp -p): only then is
    # a file's mtime a clock to check the recorder's clock against.
    preserves_mtimes: bool = False
    # The station pushes over the station API; ``root`` is then its intake folder on the
    # archive server, where verified uploads wait for ingest (released by deleting them: the
    # station keeps its own copy until it hears the stored copy is verified).
    pushes: bool = False


@dataclass(frozen=True)
class SourceFile:
    """A file on a dock, as seen at one moment.

    ``path`` is the real name (a name that is not UTF-8 holds surrogate escapes of its
    bytes); ``shown`` is its readable text, which is what the catalog, reports and logs get.
    ``dev``, ``ino`` and ``ctime_ns`` tell which file it was (None when not known)."""

    station_id: str
    path: Path
    size: int
    mtime_ns: int
    text: str = ""  # readable form of ``path``, decoded with the station's encodings
    dev: int | None = None
    ino: int | None = None
    ctime_ns: int | None = None

    @classmethod
    def seen(cls, station_id: str, path: Path, st: os.stat_result, text: str) -> SourceFile:
        """The file as ``lstat`` found it just now."""
        return cls(
            station_id,
            path,
            st.st_size,
            st.st_mtime_ns,
            text=text,
            dev=st.st_dev,
            ino=st.st_ino,
            ctime_ns=st.st_ctime_ns,
        )

    @property
    def shown(self) -> str:
        return self.text or readable(self.path)

    @property
    def name(self) -> str:
        """The readable file name."""
        return self.shown.rsplit("/", 1)[-1]

    @property
    def raw(self) -> bytes | None:
        """The name's bytes when they are not UTF-8 (the catalog keeps them to reopen it)."""
        return raw_name(self.path)


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
    device_serial: str | None = None
    officer_id: str | None = None
    recorded_start: datetime | None = None  # on the true clock (device offset corrected)
    recorded_end: datetime | None = None
    time_source: str | None = None  # IdSource value
    id_sources: dict[str, str] = field(default_factory=dict)  # IdSource value -> serial
    flags: tuple[Flag, ...] = ()
    description: str | None = None  # written description 文字说明
    described_by: str | None = None
    record_type: str | None = None  # RecordType value, for text records
    signature: str | None = None  # Signature value, for text records


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
    job_id: int | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None


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


# ------------------------------------------------------------------------- device registry


class DeviceKind(Labelled):
    BODY_WORN = "body-worn", "执法记录仪"
    FIXED_CAMERA = "fixed-camera", "固定摄像机"
    AUDIO_RECORDER = "audio-recorder", "录音笔"
    OTHER = "other", "其他"


class DeviceStatus(Labelled):
    ACTIVE = "active", "在用"
    REPAIR = "repair", "维修"
    LOST = "lost", "遗失"
    RETIRED = "retired", "报废"


class Role(Labelled):
    ENFORCEMENT = "enforcement", "执法人员"
    LEGAL_REVIEWER = "legal-reviewer", "法制审核"
    ARCHIVIST = "archivist", "档案管理"
    OPERATOR = "operator", "运维"


@dataclass(frozen=True)
class Device:
    """A registered recorder. ``clock_offset_s`` is how far its clock runs ahead of true
    time (negative: behind); recorded times are corrected by subtracting it."""

    serial: str
    kind: DeviceKind
    status: DeviceStatus = DeviceStatus.ACTIVE
    vendor: str = ""
    model: str = ""
    clock_offset_s: float = 0.0


@dataclass(frozen=True)
class Officer:
    id: str  # officer number, as recorders and file names carry it
    name: str
    cert_no: str  # enforcement certificate number 执法证号
    department: str = ""
    roles: tuple[Role, ...] = (Role.ENFORCEMENT,)


@dataclass(frozen=True)
class Assignment:
    """Officer ``officer_id`` held device ``device_serial`` from ``start`` until ``end``
    (None: still holds it). Intervals are half-open: [start, end)."""

    id: int
    device_serial: str
    officer_id: str
    start: datetime
    end: datetime | None = None


class IdSource(enum.StrEnum):
    """Where a device serial or a recorded time was read from."""

    LAYOUT = "layout"  # <station root>/<device serial>/…
    FILENAME = "filename"  # a configured file-name pattern
    METADATA = "metadata"  # tags embedded in the file
    STATION = "station"  # what a pushing station read from the recorder over USB
    MTIME = "mtime"  # the file's modification time (times only)


@dataclass(frozen=True)
class Flag:
    """Something about a media item a person should review; never silently resolved."""

    code: str  # stable: device-disagreement, clock-drift, unattributed, spans-assignments, …
    message: str

    @property
    def explained(self) -> str:
        """What the flag means, in words people read (zh-CN); the code itself when unknown."""
        return FLAG_EXPLANATIONS.get(self.code, self.code)


#: What each flag code means to the archivist who reviews the item.
FLAG_EXPLANATIONS = {
    "device-disagreement": "设备编号来源不一致（目录、文件名、元数据所记设备不同）",
    "officer-disagreement": "执法人员来源不一致",
    "clock-drift": "设备时钟偏差：所记录制时间可能不准",
    "unattributed": "无法确定执法人员（无录制时间或不在任何领用期内）",
    "spans-assignments": "录像跨越多名执法人员的领用期",
    "serial-unusable": "读取到的设备编号不可用",
    "unregistered-device": "设备未登记",
    "device-in-repair": "设备登记为维修中",
    "grew-after-release": "文件在释放后继续增长：是前一记录的续段",
}


@dataclass(frozen=True)
class Identification:
    """Which device made a file, when, and who held the device then."""

    device_serial: str | None
    serials: dict[str, str]  # IdSource value -> serial it gave
    recorded_start: datetime | None
    recorded_end: datetime | None
    time_source: IdSource | None
    officer_id: str | None
    flags: tuple[Flag, ...] = ()


# ------------------------------------------------------------------------------------ cases


class CaseStatus(Labelled):
    OPEN = "open", "办理中"
    CONCLUDED = "concluded", "已办结"  # the enforcement act has ended, the 15-day clock runs
    ARCHIVED = "archived", "已归档"  # the case file is sealed


class RecordType(Labelled):
    """Text records (笔录) the rule names."""

    ON_SITE = "on-site", "现场笔录"
    INTERROGATION = "interrogation", "询问笔录"
    HEARING = "hearing", "听证笔录"
    PROPERTY_LIST = "property-list", "财物清单"
    OTHER = "other", "其他文书"


class Signature(Labelled):
    """Whether the party signed a text record, or the refusal was noted on it."""

    SIGNED = "signed", "当事人已签字"
    REFUSAL_NOTED = "refusal-noted", "拒绝签字已注明"
    MISSING = "missing", "未签字且未注明"


@dataclass(frozen=True)
class Category:
    """An enforcement category from config/categories.toml."""

    id: str
    name_zh: str
    name_en: str
    mandatory_av: bool  # whole-process A/V recording required (查封扣押, 强制拆除 …)
    retention: str  # retention class id


@dataclass(frozen=True)
class Case:
    number: str
    title: str
    category: str
    department: str
    status: CaseStatus
    officers: tuple[str, ...]
    action_start: datetime | None = None
    action_end: datetime | None = None
    due: date | None = None  # action end + 15 days, by the configured counting
    due_provisional: bool = False  # the working-day calendar did not know a year
    archived_at: datetime | None = None
    archived_on: date | None = None  # local date of sealing
    archive_key: str | None = None


class LinkMethod(Labelled):
    RULE = "rule", "按规则关联"  # officer + time overlap, or case number
    MANUAL = "manual", "人工关联"  # a person linked it, with a reason


@dataclass(frozen=True)
class Link:
    case_number: str
    media_id: int
    method: LinkMethod
    rule: str  # which rule matched, or the person's reason
    actor: str
    created_at: datetime


def plain(value: Any) -> Any:
    """A value as JSON-ready data: dataclasses as dicts, enums as values, times as ISO text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # a NamedTuple (Problem)
        return {str(k): plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value
