"""One exception tree for the whole project.

Every error names the file, device, station or case it concerns. Errors of ffmpeg, MediaInfo,
SQLAlchemy and the filesystem are translated into these at the adapter's edge, so callers (the
CLI, the flows) catch ``EvidenceError`` and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class EvidenceError(Exception):
    """Base of every error this project raises on purpose."""

    #: Stable machine-readable code, used in quarantine entries and ``--json`` output.
    code = "error"


class ConfigError(EvidenceError):
    """Settings or a config file are invalid."""

    code = "config"


class CatalogError(EvidenceError):
    """The catalog database could not be opened, migrated or written."""

    code = "catalog"


class NotFound(EvidenceError):
    """A media item, station, job or quarantine entry does not exist."""

    code = "not-found"

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} not found: {key}")
        self.what = what
        self.key = key


class StationError(EvidenceError):
    """A station is unknown, duplicated, or its dump folder is unusable."""

    code = "station"

    def __init__(self, station_id: str, message: str) -> None:
        super().__init__(f"station {station_id}: {message}")
        self.station_id = station_id


class StorageError(EvidenceError):
    """The archive store could not write, read or find an object."""

    code = "storage"


class SourceError(EvidenceError):
    """A source file on a dock could not be read, or vanished while being ingested."""

    code = "source-unreadable"

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class SourceChanged(SourceError):
    """A source changed size or mtime while it was read: the dock is still writing it."""

    code = "source-changed"


class IntegrityError(EvidenceError):
    """Bytes are not what they should be."""

    code = "integrity"


class ChecksumMismatch(IntegrityError):
    """A stored copy re-read from the store does not hash to the source's digest."""

    code = "checksum-mismatch"

    def __init__(self, path: Path | str, algorithm: str, expected: str, found: str) -> None:
        super().__init__(
            f"{path}: {algorithm} mismatch: expected {expected}, stored copy has {found}"
        )
        self.path = path
        self.algorithm = algorithm
        self.expected = expected
        self.found = found


class MediaError(EvidenceError):
    """A media file cannot be understood or converted."""

    code = "media"

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class UnreadableMedia(MediaError):
    """MediaInfo finds no audio, video, image or known document in the file."""

    code = "unreadable-media"


class NameContradictsContent(MediaError):
    """The file's name promises recorded media, its content is something else."""

    code = "name-contradicts-content"


class TranscodeError(MediaError):
    """ffmpeg failed, timed out, or produced no output for a proxy or thumbnail."""

    code = "transcode-failed"


class DeviceError(EvidenceError):
    """A recorder is not one the registry lets record: unknown, lost or retired."""

    code = "device"

    def __init__(self, serial: str | None, message: str) -> None:
        super().__init__(message)
        self.serial = serial
        self.reason = message


class UnknownDevice(DeviceError):
    code = "unknown-device"


class DeviceLost(DeviceError):
    code = "device-lost"


class DeviceRetired(DeviceError):
    code = "device-retired"


class RegistryError(EvidenceError):
    """A registry change or import is refused: names the record (and file and line)."""

    code = "registry"


@dataclass(frozen=True)
class RecordProblem:
    """One problem of a record file a person wrote (a registry, a case list): where it is
    (file, line, section, and the field when the problem is about one) and what it is."""

    file: str
    line: int
    section: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.section}: {self.message}"


def record_problem(
    path: Path, line: int, section: str, columns: Sequence[str], message: str
) -> RecordProblem:
    """The problem, with its field when the message names one of the section's columns
    first (the checks word their messages "roles: …", "clock_offset_s must …")."""
    head = message.split(":", 1)[0].split(" ", 1)[0]
    return RecordProblem(str(path), line, section, head if head in columns else None, message)


class RecordFileError(EvidenceError):
    """A record file is refused as a whole; ``problems`` lists every one found, so that a
    page can show them as a table (the message lists them as lines)."""

    code = "record-file"

    def __init__(self, path: Path, problems: Sequence[RecordProblem]) -> None:
        lines = "\n".join(str(p) for p in problems)
        EvidenceError.__init__(self, f"{len(problems)} problem(s) in {path}:\n{lines}")
        self.path = path
        self.problems = tuple(problems)


class RegistryFileError(RecordFileError, RegistryError):
    """A registry file (stations, officers, devices, assignments) is refused."""

    code = "registry"


class CaseError(EvidenceError):
    """A case change is refused; names the case."""

    code = "case"

    def __init__(self, number: str | None, message: str) -> None:
        super().__init__(f"case {number}: {message}" if number else message)
        self.number = number


class CaseFileError(RecordFileError, CaseError):
    """A case file (cases, descriptions, text records) is refused."""

    code = "case"

    def __init__(self, path: Path, problems: Sequence[RecordProblem]) -> None:
        RecordFileError.__init__(self, path, problems)
        self.number = None


class QuarantineError(EvidenceError):
    """A quarantine entry cannot be released (already released, or about the file itself)."""

    code = "quarantine"


class FfmpegNotFound(EvidenceError):
    """No ffmpeg binary: neither the configured path nor the imageio-ffmpeg one."""

    code = "ffmpeg-missing"


class PrefectUnavailable(EvidenceError):
    """The Prefect server could not be reached or started."""

    code = "prefect-unavailable"


class ObjectLocked(StorageError):
    """The archive server refused to change a locked object (Object Lock retention or legal
    hold): deleting it, shortening its retention, replacing it."""

    code = "object-locked"

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


# ------------------------------------------------------------------------ chain of custody


class InstanceKeyError(EvidenceError):
    """The instance's signing key is missing, unreadable, or readable by others."""

    code = "instance-key"

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class CustodyBroken(IntegrityError):
    """The custody log since the last signed checkpoint does not hold together: nothing is
    signed or exported on top of it until a person has looked (``evidence verify``)."""

    code = "custody-broken"


class FixityProblems(IntegrityError):
    """A fixity run found problems; they are recorded as custody events and listed."""

    code = "fixity-problems"


class AccessRefused(EvidenceError):
    """Viewing or exporting evidence without an actor or a reason (access supervision)."""

    code = "access-refused"

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(f"{subject}: {message}")
        self.subject = subject


class ExportError(EvidenceError):
    """An export cannot be written where it was asked to go."""

    code = "export"

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


# ------------------------------------------------------------------------------------ search


class QueryError(EvidenceError):
    """A search query does not parse; names the term as typed, its number and its column."""

    code = "query"

    def __init__(self, term: str, index: int, column: int, problem: str) -> None:
        super().__init__(f"{term}: {problem} (term {index} at column {column})")
        self.term = term
        self.index = index
        self.column = column
        self.problem = problem


class TagError(EvidenceError):
    """A tag cannot be used as given (empty, too long, or with characters the query language
    gives a meaning to)."""

    code = "tag"

    def __init__(self, tag: str, message: str) -> None:
        super().__init__(f"tag {tag!r}: {message}")
        self.tag = tag


# ---------------------------------------------------------------------------- transcoding


class TranscoderUnusable(EvidenceError):
    """ffmpeg, as configured, cannot make a derivative of a test clip it generated itself: the
    binary or a transcode setting is wrong, so a failure on a recording says nothing about the
    recording (the job fails and is retried; nothing is quarantined)."""

    code = "transcoder-unusable"

    def __init__(self, ffmpeg: str, what: str, settings: str, reason: str) -> None:
        super().__init__(
            f"ffmpeg {ffmpeg} cannot make {what} of a test clip with these settings "
            f"({settings}): {reason}"
        )
        self.ffmpeg = ffmpeg
        self.what = what
        self.settings = settings
        self.reason = reason


# ---------------------------------------------------------------------------------- accounts


class AccountError(EvidenceError):
    """An account cannot be added or changed as asked; names the login."""

    code = "account"

    def __init__(self, login: str, message: str) -> None:
        super().__init__(f"user {login}: {message}")
        self.login = login


class SignInFailed(EvidenceError):
    """A sign-in is refused. The message never says whether the login exists or the
    password was wrong (the custody event does, for the audit)."""

    code = "sign-in-failed"

    def __init__(self, message: str = "登录名或密码错误 (wrong login or password)") -> None:
        super().__init__(message)


class AccountLocked(SignInFailed):
    """Too many failed sign-ins of a login in the lockout window."""

    code = "account-locked"

    def __init__(self, login: str, minutes: float) -> None:
        super().__init__(
            f"登录失败次数过多，请 {minutes:g} 分钟后再试 "
            f"(too many failed sign-ins for {login}: try again in {minutes:g} min)"
        )
        self.login = login
        self.minutes = minutes


class AddressThrottled(SignInFailed):
    """Too many failed sign-ins from one address, whatever the logins, in the window."""

    code = "sign-in-throttled"

    def __init__(self, address: str, minutes: float) -> None:
        super().__init__(
            f"该地址登录失败次数过多，请 {minutes:g} 分钟后再试 "
            f"(too many failed sign-ins from {address}: try again in {minutes:g} min)"
        )
        self.address = address
        self.minutes = minutes


class NotSignedIn(EvidenceError):
    """No session, or one that expired or was revoked."""

    code = "not-signed-in"

    def __init__(self, message: str = "请先登录 (sign in first)") -> None:
        super().__init__(message)


class PermissionDenied(AccessRefused):
    """A signed-in person's roles and department do not reach what they asked for."""

    code = "forbidden"


# ------------------------------------------------------------------ station API (issue 17)


class StationApiError(EvidenceError):
    """A pushing station's request refused; ``station_id`` names the station (or the one
    its URL named)."""

    code = "station-api"

    def __init__(self, station_id: str, message: str) -> None:
        super().__init__(message)
        self.station_id = station_id


class StationTokenRefused(StationApiError):
    """No token, an unknown one, or a revoked one."""

    code = "station-token-refused"


class StationForbidden(StationApiError):
    """A valid token of one station used for another station's URL or files."""

    code = "station-forbidden"


class UploadRefused(StationApiError):
    """An upload the station API cannot take as described (metadata missing or wrong)."""

    code = "upload-refused"


class UploadNotFound(StationApiError):
    code = "upload-not-found"


class UploadGone(StationApiError):
    """An upload that was refused, terminated or has already been completed."""

    code = "upload-gone"


class AlreadyArchived(StationApiError):
    """The archive already holds these bytes, verified: nothing to send."""

    code = "already-archived"


class OffsetMismatch(StationApiError):
    """A PATCH at another offset than the server's: the station asks HEAD and goes on."""

    code = "offset-mismatch"

    def __init__(self, station_id: str, message: str, offset: int) -> None:
        super().__init__(station_id, message)
        self.offset = offset


class UploadBusy(StationApiError):
    """Another PATCH of the same upload is in progress."""

    code = "upload-busy"


class TooManyUploads(StationApiError):
    """The station sends more uploads at once than ``dock.max_concurrent_uploads``."""

    code = "too-many-uploads"


class UploadTooLarge(StationApiError):
    code = "upload-too-large"


class ChunkChecksumMismatch(StationApiError):
    """A PATCH whose bytes do not match its Upload-Checksum: discarded, to be sent again."""

    code = "checksum-mismatch"


class UploadDigestMismatch(StationApiError):
    """A whole upload whose SHA-256 is not the one its station declared: dropped."""

    code = "digest-mismatch"


# ------------------------------------------------------------ approvals (issue 18, part 1)


class ApprovalRequired(AccessRefused):
    """An access the policy (config/access-policy.toml) asks approval for, and no grant
    covers now (调取、复制要经过审批). ``rules`` names the policy rules that ask for it."""

    code = "approval-required"

    def __init__(self, subject: str, action: str, rules: tuple[str, ...]) -> None:
        super().__init__(
            subject,
            f"须经审批：请先申请（网页“审批”或 evidence access request --action {action}）"
            f"(approval required by {', '.join(rules)}: request it first, on the web's "
            f"approvals page or with `evidence access request --action {action}`)",
        )
        self.action = action
        self.rules = rules


class ApprovalError(EvidenceError):
    """An access request or a decision that cannot be made as asked (no items, hours out of
    bounds, a request already decided); ``request`` names it (or "new")."""

    code = "approval"

    def __init__(self, request: str, message: str) -> None:
        super().__init__(f"access request {request}: {message}")
        self.request = request


# ------------------------------------------------------------------ disposal (issue 19)


class DisposalError(EvidenceError):
    """A disposal request or a step of it that cannot be taken as asked (no disposable item,
    already decided, past its grace period); ``request`` names it (or "new")."""

    code = "disposal"

    def __init__(self, request: str, message: str) -> None:
        super().__init__(f"disposal request {request}: {message}")
        self.request = request


# ------------------------------------------------------------------- retention (issue 19)


class RetentionError(EvidenceError):
    """A retention action that cannot be done as asked (a mark or class without a reason, a
    class that does not exist, a hold on nothing, a hold released already); ``subject``
    names the item, case or hold."""

    code = "retention"

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(f"{subject}: {message}")
        self.subject = subject


class LockNotExtended(RetentionError):
    """The store did not extend an original's lock (or set its legal hold) as its retention
    asks; the change that asked for it stands, and an ALERT custody event says so."""

    code = "lock-not-extended"
