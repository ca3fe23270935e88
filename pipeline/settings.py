"""Typed settings, read once at the entry point and passed down.

Sources, lowest to highest precedence: ``config/default.toml`` shipped with the code, the user
config file (``$EVIDENCE_CONFIG``, else ``$EVIDENCE_HOME/config.toml``), then ``EVIDENCE_*``
environment variables with nested keys joined by ``__`` (``EVIDENCE_INGEST__RELEASE=delete``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipeline.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_TOML = CONFIG_DIR / "default.toml"
DEFAULT_HOME = Path("~/.local/share/evidence")


class CatalogSettings(BaseModel):
    url: str = Field("", description="SQLAlchemy URL; empty means SQLite in EVIDENCE_HOME")


class IngestSettings(BaseModel):
    release: Literal["move", "delete"] = Field(
        "move", description="after verification: move the source to .ingested/ or delete it"
    )
    workers: int = Field(2, ge=1, le=64, description="files ingested at once in one sweep")
    block_size: int = Field(4 << 20, ge=64 << 10, le=256 << 20, description="copy block, bytes")
    ignore: list[str] = Field(
        default_factory=lambda: ["*.part", "*.tmp", "*.crdownload", ".*"],
        description="file-name patterns a sweep never takes",
    )


class TranscodeSettings(BaseModel):
    ffmpeg: str = Field("", description="ffmpeg binary; empty means imageio-ffmpeg's")
    max_height: int = Field(720, ge=144, le=2160)
    crf: int = Field(28, ge=0, le=51)
    preset: str = "veryfast"
    audio_bitrate: str = "96k"
    timeout_s: float = Field(600, gt=0, description="seconds one ffmpeg run may take")
    thumbnail_width: int = Field(320, ge=32, le=1920)
    nice: int = Field(10, ge=0, le=19, description="ffmpeg's niceness: it yields the CPU")


class WatchSettings(BaseModel):
    stable_s: float = Field(2.0, ge=0, description="unchanged size/mtime for this long = complete")
    settle_s: float = Field(
        0.25, ge=0, description="the same, for a file its writer closed or renamed into place"
    )
    sweep_interval_s: float = Field(60.0, gt=0, description="reconciliation sweep period")
    batch_window_s: float = Field(0.0, ge=0, description="gather ready files into one flow run")


class PrefectSettings(BaseModel):
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
    hashing_limit: int = Field(0, ge=0, description="tag limit on files hashed at once; 0: none")
    transcode_limit: int = Field(0, ge=0, description="tag limit on transcodes at once; 0: none")


class FilenamePattern(BaseModel):
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


class DevicesSettings(BaseModel):
    unknown: Literal["quarantine", "accept"] = Field(
        "quarantine", description="files from unregistered devices: quarantine or accept"
    )
    precedence: list[Literal["metadata", "filename", "layout"]] = Field(
        default=["metadata", "filename", "layout"],
        description="which serial wins when sources disagree (the disagreement is flagged)",
    )
    timezone: str = Field("Asia/Shanghai", description="zone of recorder clocks and file names")
    drift_tolerance_s: float = Field(
        300.0, ge=0, description="recorded end vs the dock's file time beyond this: clock drift"
    )
    not_docked_days: int = Field(3, ge=1, description="health: device not docked in this long")
    drift_repeat: int = Field(2, ge=1, description="health: this many drifted files = repeated")
    filename_patterns: list[FilenamePattern] = Field(default_factory=list)


class S3Settings(BaseModel):
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


class StoreSettings(BaseModel):
    kind: Literal["local", "s3"] = Field(
        "local", description="archive back end: a folder in EVIDENCE_HOME, or an S3 bucket"
    )
    s3: S3Settings = S3Settings()


class CustodySettings(BaseModel):
    """Chain of custody: signed checkpoints and scheduled fixity checks."""

    checkpoint_every_events: int = Field(
        1000, ge=1, le=1_000_000, description="sign a checkpoint at every N-th custody event"
    )
    checkpoint_every_minutes: float = Field(
        15.0, gt=0, le=1440, description="and sign the head at least this often while it moves"
    )
    fixity_sample: int = Field(100, ge=1, description="originals the daily sample re-hashes")
    fixity_sample_cron: str = Field("30 2 * * *", description="when the sample runs (cron)")
    fixity_full_cron: str = Field("0 3 1 * *", description="when the full pass runs (cron)")
    fixity_timezone: str = Field("Asia/Shanghai", description="zone of the two cron schedules")
    fixity_workers: int = Field(2, ge=1, le=64, description="originals re-hashed at once")


class CasesSettings(BaseModel):
    categories_file: str = Field("", description="categories TOML; empty: config/categories.toml")
    deadline_days: int = Field(15, ge=1, le=365, description="days after the act ends to file")
    deadline_mode: Literal["calendar", "working"] = Field(
        "calendar", description="count calendar days, or working days (Chinese holiday calendar)"
    )
    holidays_file: str = Field(
        "", description="official holiday schedules (TOML); empty: EVIDENCE_HOME/holidays.toml"
    )
    due_soon_days: int = Field(3, ge=0, description="'due soon' this many days before the deadline")
    link_margin_min: float = Field(
        30.0, ge=0, description="auto-link: recordings this close to the action window count"
    )
    coverage_gap_s: float = Field(
        60.0, ge=0, description="mandatory categories: uncovered stretches longer than this"
    )
    auto_seal: bool = Field(False, description="compliance sweep seals complete concluded cases")
    compliance_cron: str = Field("0 6 * * *", description="schedule of the compliance sweep")


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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULT_TOML, *_user_config_files()]
        tomls = [TomlConfigSettingsSource(settings_cls, toml_file=f) for f in files if f.exists()]
        # Earlier sources win: explicit arguments, environment, user file, defaults.
        return (init_settings, env_settings, *reversed(tomls))

    # Derived locations: one place decides the layout of EVIDENCE_HOME.
    @property
    def catalog_url(self) -> str:
        return self.catalog.url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def s3_work_dir(self) -> Path:
        """Local room of the S3 store: staging copies, downloaded originals, derived cache."""
        return self.home / "s3"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


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
    """Read settings once; raise ConfigError naming the bad key instead of a traceback."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file is not valid TOML: {exc}") from exc
    return settings.model_copy(update={"home": settings.home.expanduser().resolve()})
