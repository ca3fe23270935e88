"""Typed settings, read once at the entry point and passed down.

Sources, lowest to highest precedence: ``config/default.toml`` shipped with the code, the user
config file (``$EVIDENCE_CONFIG``, else ``$EVIDENCE_HOME/config.toml``), then ``EVIDENCE_*``
environment variables with nested keys joined by ``__`` (``EVIDENCE_INGEST__RELEASE=delete``).

Mistakes are refused at load, naming the key and where its value came from: an unknown key
(a typo such as ``relase`` would otherwise leave the default in force, silently), a number out
of its bounds (infinity and NaN included), a time zone or encoding that does not exist, a file
that is not TOML.
"""

from __future__ import annotations

import codecs
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from pipeline.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_TOML = CONFIG_DIR / "default.toml"
DEFAULT_HOME = Path("~/.local/share/evidence")
DAY_S = 86400.0


class Section(BaseModel):
    """A table of settings: unknown keys and infinite or NaN numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"{value!r} is not a time zone (like Asia/Shanghai)") from None
    return value


class CatalogSettings(Section):
    url: str = Field("", description="SQLAlchemy URL; empty means SQLite in EVIDENCE_HOME")


class IngestSettings(Section):
    release: Literal["move", "delete"] = Field(
        "move", description="after verification: move the source to .ingested/ or delete it"
    )
    workers: int = Field(2, ge=1, le=64, description="files ingested at once in one sweep")
    block_size: int = Field(4 << 20, ge=64 << 10, le=256 << 20, description="copy block, bytes")
    ignore: list[str] = Field(
        default_factory=lambda: ["*.part", "*.tmp", "*.crdownload", ".*"],
        description="file-name patterns a sweep never takes",
    )
    max_file_bytes: int = Field(
        64 << 30, ge=1, description="a file larger than this is held on the dock, not copied"
    )
    sparse_ratio: float = Field(
        0.5,
        ge=0,
        le=1,
        description="a file whose allocated blocks cover less than this share of its size is "
        "held on the dock as sparse",
    )
    legacy_encodings: list[str] = Field(
        default_factory=lambda: ["gbk"],
        description="encodings tried to show file names that are not UTF-8",
    )
    orphan_temporary_s: float = Field(
        6 * 3600, gt=0, description="a temporary older than this belongs to no running copy"
    )

    @field_validator("legacy_encodings")
    @classmethod
    def _encodings_exist(cls, value: list[str]) -> list[str]:
        for name in value:
            try:
                codecs.lookup(name)
            except LookupError:
                raise ValueError(f"{name!r} is not an encoding Python knows") from None
        return value


class TranscodeSettings(Section):
    ffmpeg: str = Field("", description="ffmpeg binary; empty means imageio-ffmpeg's")
    max_height: int = Field(720, ge=144, le=2160)
    crf: int = Field(28, ge=0, le=51)
    preset: Literal[
        "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
        "veryslow", "placebo",
    ] = Field("veryfast", description="x264 preset of the proxies")  # fmt: skip
    audio_bitrate: str = Field(
        "96k", pattern=r"^[1-9][0-9]{0,6}[kKmM]?$", description="AAC bit rate of the proxies"
    )
    timeout_s: float = Field(600, gt=0, le=DAY_S, description="seconds one ffmpeg run may take")
    thumbnail_width: int = Field(320, ge=32, le=1920)
    nice: int = Field(10, ge=0, le=19, description="ffmpeg's niceness: it yields the CPU")


class WatchSettings(Section):
    stable_s: float = Field(
        2.0, ge=0, le=DAY_S, description="unchanged size/mtime for this long = complete"
    )
    settle_s: float = Field(
        0.25,
        ge=0,
        le=3600,
        description="the same, for a file its writer closed or renamed into place",
    )
    network_stable_s: float = Field(
        30.0,
        ge=0,
        le=86400,
        description="stable_s for a dump folder on a network mount, whose writers /proc can't see",
    )
    writer_check: bool = Field(
        True, description="on Linux, a file some process holds open for writing is not complete"
    )
    sweep_interval_s: float = Field(60.0, gt=0, le=DAY_S, description="reconciliation sweep period")
    batch_window_s: float = Field(
        0.0, ge=0, le=3600, description="gather ready files into one flow run"
    )


class PrefectSettings(Section):
    api_url: str = Field("", description="a Prefect API URL; empty means a local server")
    port: int = Field(4200, ge=1, le=65535, description="port of the local server")
    database_url: str = Field(
        "",
        description="the local server's database: empty means SQLite under EVIDENCE_HOME; "
        "a postgresql+asyncpg:// URL lets flow runs go concurrently",
    )
    deployments: bool = Field(
        False, description="watch submits runs to the server's deployments (workers run them)"
    )
    work_pool: str = Field("evidence", min_length=1, description="process work pool of workers")
    code_path: str = Field(
        "", description="where workers find this project's code; empty: this installation"
    )
    hashing_limit: int = Field(
        0, ge=0, le=10_000, description="tag limit on files hashed at once; 0: none"
    )
    transcode_limit: int = Field(
        0, ge=0, le=10_000, description="tag limit on transcodes at once; 0: none"
    )


class FilenamePattern(Section):
    """A recorder file-name convention. Named groups: ``device`` (serial), optionally
    ``officer`` (officer number) and ``ts`` (recording start, read with ``time_format``
    in the devices' time zone)."""

    name: str
    regex: str
    time_format: str = "%Y%m%d%H%M%S"

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        if "device" not in compiled.groupindex:
            raise ValueError("needs a named group (?P<device>…)")
        return value


class DevicesSettings(Section):
    unknown: Literal["quarantine", "accept"] = Field(
        "quarantine", description="files from unregistered devices: quarantine or accept"
    )
    precedence: list[Literal["metadata", "station", "filename", "layout"]] = Field(
        # "station": the serial a pushing station read from the recorder over USB.
        default=["metadata", "station", "filename", "layout"],
        description="which serial wins when sources disagree (the disagreement is flagged)",
    )
    timezone: str = Field("Asia/Shanghai", description="zone of recorder clocks and file names")
    drift_tolerance_s: float = Field(
        300.0,
        ge=0,
        le=365 * DAY_S,
        description="recorded end vs the file's time on a station that keeps mtimes, beyond "
        "this: clock drift",
    )
    not_docked_days: int = Field(
        3, ge=1, le=3650, description="health: device not docked in this long"
    )
    drift_repeat: int = Field(
        2, ge=1, le=100_000, description="health: this many drifted files = repeated"
    )
    filename_patterns: list[FilenamePattern] = Field(default_factory=list)

    _timezone_exists = field_validator("timezone")(_zone)


class S3Settings(Section):
    """An S3-compatible archive with Object Lock (WORM): AWS, SeaweedFS, MinIO, Ceph…"""

    endpoint_url: str = Field("", description="S3 endpoint URL; empty means AWS for the region")
    region: str = Field("us-east-1", description="region the requests are signed for")
    bucket: str = Field("evidence-archive", min_length=3, max_length=63)
    access_key: str = Field("", description="access key id; empty means boto3's own lookup")
    secret_key: SecretStr = Field(SecretStr(""), description="secret access key")
    addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path", description="bucket in the URL path (most self-hosted servers) or host name"
    )
    single_put_max: int = Field(
        64 << 20, ge=0, le=5 << 30, description="bytes up to which an original is one PUT"
    )
    part_size: int = Field(
        16 << 20, ge=5 << 20, le=5 << 30, description="multipart part size, bytes (S3: >= 5 MiB)"
    )
    upload_workers: int = Field(4, ge=1, le=32, description="parts of one file sent at once")
    retention_mode: Literal["COMPLIANCE", "GOVERNANCE"] = Field(
        "COMPLIANCE", description="Object Lock mode of originals"
    )
    retention_days: int = Field(
        184, ge=1, le=36500, description="default retain-until of an original, days from ingest"
    )
    reread: bool = Field(True, description="after an upload, download and hash the object again")


class StoreSettings(Section):
    kind: Literal["local", "s3"] = Field(
        "local", description="archive back end: a folder in EVIDENCE_HOME, or an S3 bucket"
    )
    s3: S3Settings = S3Settings()


class PinnedKey(Section):
    """A signing key the verifiers trust, by id (the SHA-256 of its raw public key). A key
    that took over from another names it in ``replaces``: its rotation statement, signed by
    the old key, must then exist (``evidence keys rotate`` writes it)."""

    id: str = Field(pattern=r"^[0-9a-f]{64}$", description="the key id (64 hex digits)")
    replaces: str = Field("", pattern=r"^([0-9a-f]{64})?$", description="the key it replaced")


def _pin(value: object) -> object:
    return {"id": value} if isinstance(value, str) else value


class CustodySettings(Section):
    """Chain of custody: signed checkpoints, trust anchors and scheduled fixity checks."""

    pinned_keys: list[PinnedKey] = Field(
        default_factory=list,
        description="the only keys verify trusts; set outside EVIDENCE_HOME (docs/deploy.md)",
    )
    witness_dir: str = Field(
        "", description="a folder off this instance's disk that receives every checkpoint"
    )
    witness_s3: bool = Field(
        True, description="with an S3 store: each checkpoint also as an object under Object Lock"
    )
    checkpoint_grace_minutes: float = Field(
        60.0,
        ge=0,
        le=10080,
        description="how late a due checkpoint may be before verify reports it missing",
    )

    checkpoint_every_events: int = Field(
        1000, ge=1, le=1_000_000, description="sign a checkpoint at every N-th custody event"
    )
    checkpoint_every_minutes: float = Field(
        15.0, gt=0, le=1440, description="and sign the head at least this often while it moves"
    )
    fixity_sample: int = Field(
        100, ge=1, le=10_000_000, description="originals the daily sample re-hashes"
    )
    fixity_sample_cron: str = Field("30 2 * * *", description="when the sample runs (cron)")
    fixity_full_cron: str = Field("0 3 1 * *", description="when the full pass runs (cron)")
    fixity_timezone: str = Field("Asia/Shanghai", description="zone of the two cron schedules")
    fixity_workers: int = Field(2, ge=1, le=64, description="originals re-hashed at once")

    _timezone_exists = field_validator("fixity_timezone")(_zone)

    @field_validator("pinned_keys", mode="before")
    @classmethod
    def _pins(cls, value: object) -> object:
        # A pin may be written as the bare key id, or as a table with ``replaces``.
        return [_pin(v) for v in value] if isinstance(value, list) else value


class CasesSettings(Section):
    categories_file: str = Field("", description="categories TOML; empty: config/categories.toml")
    deadline_days: int = Field(15, ge=1, le=365, description="days after the act ends to file")
    deadline_mode: Literal["calendar", "working"] = Field(
        "calendar", description="count calendar days, or working days (Chinese holiday calendar)"
    )
    holidays_file: str = Field(
        "", description="official holiday schedules (TOML); empty: EVIDENCE_HOME/holidays.toml"
    )
    due_soon_days: int = Field(
        3, ge=0, le=365, description="'due soon' this many days before the deadline"
    )
    link_margin_min: float = Field(
        30.0,
        ge=0,
        le=7 * 24 * 60,
        description="auto-link: recordings this close to the action window count",
    )
    coverage_gap_s: float = Field(
        60.0,
        ge=0,
        le=DAY_S,
        description="mandatory categories: uncovered stretches longer than this",
    )
    upload_limit_hours: float = Field(
        24.0,
        gt=0,
        le=30 * 24,
        description="upload timeliness: a recording docked within this long after it ended",
    )
    auto_seal: bool = Field(False, description="compliance sweep seals complete concluded cases")
    compliance_cron: str = Field("0 6 * * *", description="schedule of the compliance sweep")


class WebSettings(Section):
    """The archivists' web application (``evidence web``): where it listens, sessions,
    sign-in lockout, and how long a reason given for viewing an item holds."""

    host: str = Field("127.0.0.1", min_length=1, description="address the web server binds")
    port: int = Field(8000, ge=1, le=65535, description="port the web server listens on")
    session_minutes: float = Field(
        480.0, ge=1, le=43200, description="a sign-in lasts this long, then it must be redone"
    )
    secure_cookies: bool = Field(
        False, description="cookies only over HTTPS (set behind a TLS reverse proxy)"
    )
    lockout_failures: int = Field(
        5, ge=1, le=1000, description="failed sign-ins of one login that lock it"
    )
    lockout_minutes: float = Field(
        15.0, gt=0, le=10080, description="the window those failures count in, and the lock"
    )
    lockout_address_failures: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="failed sign-ins from one address (any logins) that refuse it meanwhile",
    )
    reason_minutes: float = Field(
        30.0,
        ge=1,  # playing a recording takes many requests, all under the one reason
        le=1440,
        description="a reason given to view an item holds this long (playing, seeking)",
    )


class ApprovalsSettings(Section):
    """Approval of viewings, copies and exports (调阅审批): which of them need it (the
    policy file, data rather than code) and the longest a grant may last."""

    policy_file: str = Field("", description="access policy TOML; empty: config/access-policy.toml")
    max_hours: int = Field(
        168, ge=1, le=8760, description="the longest a grant may last, hours (a week)"
    )


class DockSettings(Section):
    """The station API (``/api/v1/dock/``): what a pushing station may send, and when a
    silent one is reported."""

    max_upload_bytes: int = Field(
        64 << 30, ge=1, le=1 << 44, description="largest file a station may upload, bytes"
    )
    max_concurrent_uploads: int = Field(
        25, ge=1, le=1000, description="uploads one station may send at once (25 recorders)"
    )
    chunk_bytes: int = Field(
        8 << 20, ge=64 << 10, le=1 << 30, description="bytes per PATCH the server suggests"
    )
    keepalive_s: float = Field(60.0, gt=0, le=DAY_S, description="keepalive period it suggests")
    silent_after_s: float = Field(
        7200.0, gt=0, le=30 * DAY_S, description="a push station silent this long is offline"
    )


class ReportsSettings(Section):
    """Printable reports (``evidence reports``, ``/reports``): the font their PDFs embed and
    the agency named at the top of every page."""

    font_file: str = Field(
        "",
        description="a TrueType font with Chinese glyphs (.ttf, or the first face of a .ttc) "
        "that PDF reports embed; empty: the first found of the usual Debian fonts "
        "(fonts-wqy-microhei, …)",
    )
    agency: str = Field(
        "", max_length=200, description="the agency named in every report's page header"
    )


# ---------------------------------------------------------------- retention (issue 19)


class RetentionSettings(Section):
    """How long records are kept (保存期限): the rules file (data rather than code) and how
    far ahead a permanent record's lock is set (docs/retention.md)."""

    rules_file: str = Field("", description="retention rules TOML; empty: config/retention.toml")
    permanent_lock_years: int = Field(
        100,
        ge=1,
        le=1000,
        description="a permanent record's Object Lock runs this many years from its recording",
    )
    # Disposal (issue 19, part 2: pipeline/retention/disposal.py, sweep.py, plan.py).
    grace_days: int = Field(
        7,
        ge=1,
        le=365,
        description="days an approved disposal waits (undo possible) before removal",
    )
    sweep_cron: str = Field("30 5 * * *", description="schedule of the daily retention sweep")
    intake_days: int = Field(
        30, ge=1, le=3650, description="days of ingest the storage forecast takes its rate from"
    )


class Settings(BaseSettings):
    """All settings of one instance. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="EVIDENCE_", env_nested_delimiter="__", extra="forbid"
    )

    home: Path = Field(DEFAULT_HOME, description="data directory: catalog, archive, keys, logs")
    actor: str = Field("system", description="who acts when a command is not told")
    catalog: CatalogSettings = CatalogSettings()
    ingest: IngestSettings = IngestSettings()
    transcode: TranscodeSettings = TranscodeSettings()
    watch: WatchSettings = WatchSettings()
    prefect: PrefectSettings = PrefectSettings()
    devices: DevicesSettings = DevicesSettings()
    cases: CasesSettings = CasesSettings()
    store: StoreSettings = StoreSettings()
    custody: CustodySettings = CustodySettings()
    web: WebSettings = WebSettings()
    approvals: ApprovalsSettings = ApprovalsSettings()
    dock: DockSettings = DockSettings()
    reports: ReportsSettings = ReportsSettings()
    retention: RetentionSettings = RetentionSettings()

    @field_validator("home", mode="before")
    @classmethod
    def _home_named(cls, value: object) -> object:
        # An empty EVIDENCE_HOME would silently mean the current folder: a catalog and an
        # archive would appear wherever a command happens to run.
        if isinstance(value, str | Path) and str(value).strip() in ("", "."):
            raise ValueError("the data directory is empty: name it (EVIDENCE_HOME or --home)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        tomls = [InitSettingsSource(settings_cls, read_toml(f)) for f in config_files()]
        # Earlier sources win: explicit arguments, environment, user file, defaults.
        return (init_settings, env_settings, *reversed(tomls))

    @property
    def zone(self) -> ZoneInfo:
        """The zone of recorder clocks and file names (``devices.timezone``)."""
        return ZoneInfo(self.devices.timezone)

    # Derived locations: one place decides the layout of EVIDENCE_HOME.
    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def s3_work_dir(self) -> Path:
        """Local room of the S3 store: downloaded originals and the derived cache."""
        return self.home / "s3"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def intake_dir(self) -> Path:
        """Where a pushing station's verified uploads wait for ingest: one folder each."""
        return self.home / "intake"

    @property
    def uploads_dir(self) -> Path:
        """Where uploads in progress are written (never a station's dump folder)."""
        return self.home / "uploads"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def config_files() -> list[Path]:
    """The config files read, lowest precedence first."""
    return [f for f in (DEFAULT_TOML, *_user_config_files()) if f.exists()]


def read_toml(path: Path) -> dict[str, Any]:
    """One config file; ConfigError names it (tomllib's own errors do not)."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: not UTF-8 ({exc})") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc


def _user_config_files() -> list[Path]:
    explicit = os.environ.get("EVIDENCE_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ConfigError(f"EVIDENCE_CONFIG names a file that does not exist: {path}")
        return [path]
    home = Path(os.environ.get("EVIDENCE_HOME", DEFAULT_HOME)).expanduser()
    return [home / "config.toml"]


def load_settings(**overrides: Any) -> Settings:
    """Read settings once; raise ConfigError naming the bad key, and where its value came
    from, instead of a traceback."""
    try:
        settings = Settings(**overrides)
        home = settings.home.expanduser().resolve()
    except ValidationError as exc:
        problems = [_problem(e["loc"], e["msg"], overrides) for e in exc.errors()]
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
    except SettingsError as exc:  # an EVIDENCE_* variable that is not the JSON a list needs
        raise ConfigError(f"invalid settings: {_unparsed(exc)}") from exc
    except (OSError, ValueError, RuntimeError) as exc:  # a home with a NUL, a symlink loop
        raise ConfigError(f"invalid settings: home: {exc}") from exc
    return settings.model_copy(update={"home": home})


def _unparsed(exc: SettingsError) -> str:
    """pydantic-settings names the table, not the variable: list the variables it may be."""
    found = re.search(r'field "(\w+)"', str(exc))
    if found is None:
        return str(exc)
    prefix = f"EVIDENCE_{found.group(1)}__".upper()
    names = sorted(n for n in os.environ if n.upper().startswith(prefix))
    return (
        f"{found.group(1)}: {exc.__cause__ or exc} (a list or table is given as JSON, "
        f"e.g. '[\"*.part\"]'; from one of {', '.join(names)})"
    )


def origin_of(*loc: int | str) -> str:
    """Where the setting at ``loc`` (e.g. ``"custody", "pinned_keys"``) came from, as the
    error messages say it: ``from EVIDENCE_…``, ``in /path/config.toml``, …"""
    return _origin(loc, {})


def file_giving(*loc: int | str) -> Path | None:
    """The config file the setting at ``loc`` is read from (None: the environment, a
    default, or a caller gave it)."""
    names = {name.upper() for name in os.environ}
    for n in range(len(loc), 0, -1):
        if "EVIDENCE_" + "__".join(str(p) for p in loc[:n]).upper() in names:
            return None
    for path in reversed(config_files()):
        if _holds(read_toml(path), loc):
            return path
    return None


def _problem(loc: tuple[int | str, ...], message: str, overrides: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in loc)
    return f"{key}: {message} ({_origin(loc, overrides)})"


def _origin(loc: tuple[int | str, ...], overrides: dict[str, Any]) -> str:
    """Where the value at ``loc`` came from: the source of highest precedence that has it."""
    if _holds(overrides, loc):
        return "given by the caller"
    names = {name.upper() for name in os.environ}
    for n in range(len(loc), 0, -1):  # a variable may hold a whole table or list, as JSON
        name = "EVIDENCE_" + "__".join(str(p) for p in loc[:n]).upper()
        if name in names:
            return f"from {name}"
    files = config_files()
    for path in reversed(files):
        if _holds(read_toml(path), loc):
            return f"in {path}"
    return "config files read: " + (", ".join(str(f) for f in files) or "none")


def _holds(table: Any, loc: tuple[int | str, ...]) -> bool:
    for part in loc:
        in_table = isinstance(table, dict) and part in table
        in_list = isinstance(table, list) and isinstance(part, int) and part < len(table)
        if not (in_table or in_list):
            return False
        table = table[part]
    return True
