"""Typed settings, read once at the entry point and passed down.

Sources, lowest to highest precedence: ``config/default.toml`` shipped with the code, the user
config file (``$EVIDENCE_CONFIG``, else ``$EVIDENCE_HOME/config.toml``), then ``EVIDENCE_*``
environment variables with nested keys joined by ``__`` (``EVIDENCE_INGEST__RELEASE=delete``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
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


class WatchSettings(BaseModel):
    stable_s: float = Field(2.0, ge=0, description="unchanged size/mtime for this long = complete")
    sweep_interval_s: float = Field(60.0, gt=0, description="reconciliation sweep period")
    batch_window_s: float = Field(1.0, ge=0, description="gather ready files into one flow run")


class PrefectSettings(BaseModel):
    api_url: str = Field("", description="a Prefect API URL; empty means a local server")
    port: int = Field(4200, ge=1, le=65535, description="port of the local server")


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
