"""Settings: defaults from config/default.toml, a user file, then EVIDENCE_* variables."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel, SecretStr

from pipeline.errors import ConfigError
from pipeline.settings import DEFAULT_TOML, Settings, load_settings


def test_defaults_come_from_the_shipped_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    s = load_settings()
    assert s.home == tmp_path.resolve()
    assert s.ingest.release == "move" and s.transcode.max_height == 720
    assert s.catalog_url == f"sqlite:///{tmp_path.resolve() / 'catalog.db'}"


def test_user_file_then_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text('[ingest]\nrelease = "delete"\nworkers = 3\n')
    monkeypatch.setenv("EVIDENCE_INGEST__WORKERS", "5")
    s = load_settings()
    assert s.ingest.release == "delete", "the user file overrides the default"
    assert s.ingest.workers == 5, "the environment overrides the user file"


def test_explicit_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text('actor = "archivist-7"\n')
    monkeypatch.setenv("EVIDENCE_CONFIG", str(cfg))
    assert load_settings().actor == "archivist-7"
    monkeypatch.setenv("EVIDENCE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings()


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("EVIDENCE_INGEST__RELEASE", "shred", "ingest.release"),
        ("EVIDENCE_TRANSCODE__MAX_HEIGHT", "10", "transcode.max_height"),
        ("EVIDENCE_INGEST__WORKERS", "many", "ingest.workers"),
    ],
)
def test_bad_values_name_the_key(
    var: str, value: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings()


def test_broken_toml_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("[ingest\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_settings()


# ------------------------------------------------------------------ mistakes refused at load


@pytest.mark.parametrize(
    "toml",
    ['[ingest]\nrelase = "delete"\n', '[store.s3]\nbuckit = "x"\n', "[watch]\nstabel_s = 5\n"],
)
def test_unknown_nested_keys_in_a_file_are_refused_naming_the_file(
    toml: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match="Extra inputs are not permitted") as caught:
        load_settings()
    assert f"in {tmp_path / 'config.toml'}" in str(caught.value)


def test_unknown_nested_keys_in_the_environment_are_refused_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv("EVIDENCE_INGEST__RELASE", "delete")
    with pytest.raises(ConfigError, match=r"ingest\.relase: .*EVIDENCE_INGEST__RELASE"):
        load_settings()


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[devices]\ntimezone = "Mars/Base"\n', "devices.timezone"),
        ('[devices]\ntimezone = "Asia"\n', "devices.timezone"),
        ('[devices]\ntimezone = "/etc/passwd"\n', "devices.timezone"),
        ('[devices]\ntimezone = ""\n', "devices.timezone"),
        ('[custody]\nfixity_timezone = "Asia/Beijing"\n', "custody.fixity_timezone"),
    ],
)
def test_a_bad_timezone_is_refused_at_load(
    toml: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: .*time zone"):
        load_settings()


def test_the_zone_of_the_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv("EVIDENCE_DEVICES__TIMEZONE", "Asia/Urumqi")
    assert load_settings().zone == ZoneInfo("Asia/Urumqi")


def test_broken_toml_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    config = tmp_path / "config.toml"
    config.write_text("[ingest\n")
    with pytest.raises(ConfigError, match=rf"config file {config} is not valid TOML: .*line 1"):
        load_settings()
    config.write_bytes(b'actor = "\xff"\n')
    with pytest.raises(ConfigError, match=rf"config file {config} is not"):
        load_settings()
    config.unlink()
    config.mkdir()
    with pytest.raises(ConfigError, match=rf"config file {config}"):
        load_settings()


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("EVIDENCE_WATCH__STABLE_S", "inf"),
        ("EVIDENCE_WATCH__STABLE_S", "nan"),
        ("EVIDENCE_WATCH__STABLE_S", "86401"),
        ("EVIDENCE_WATCH__SWEEP_INTERVAL_S", "inf"),
        ("EVIDENCE_TRANSCODE__TIMEOUT_S", "0"),
        ("EVIDENCE_TRANSCODE__TIMEOUT_S", "1e300"),
        ("EVIDENCE_TRANSCODE__PRESET", "warp"),
        ("EVIDENCE_TRANSCODE__AUDIO_BITRATE", "lots"),
        ("EVIDENCE_DEVICES__DRIFT_TOLERANCE_S", "1e300"),
        ("EVIDENCE_CASES__LINK_MARGIN_MIN", "inf"),
        ("EVIDENCE_CASES__DUE_SOON_DAYS", "100000"),
        ("EVIDENCE_CUSTODY__FIXITY_SAMPLE", "1000000000000"),
        ("EVIDENCE_INGEST__MAX_FILE_BYTES", "0"),
        ("EVIDENCE_INGEST__SPARSE_RATIO", "1.5"),
        ("EVIDENCE_INGEST__LEGACY_ENCODINGS", '["gbk", "klingon"]'),
        ("EVIDENCE_INGEST__ORPHAN_TEMPORARY_S", "0"),
    ],
)
def test_numbers_and_names_have_bounds(
    var: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv(var, value)
    key = ".".join(var.removeprefix("EVIDENCE_").lower().split("__"))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings()


def test_a_variable_that_is_not_json_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    monkeypatch.setenv("EVIDENCE_INGEST__IGNORE", "[not json")
    with pytest.raises(ConfigError, match=r"ingest: .*EVIDENCE_INGEST__IGNORE"):
        load_settings()


def test_the_settings_of_issue_12(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVIDENCE_HOME", str(tmp_path))
    s = load_settings()
    assert s.ingest.max_file_bytes == 64 << 30 and s.ingest.sparse_ratio == 0.5
    assert s.ingest.legacy_encodings == ["gbk"] and s.ingest.orphan_temporary_s == 6 * 3600
    assert s.watch.writer_check is True
    monkeypatch.setenv("EVIDENCE_WATCH__STABLE_S", "86400")
    monkeypatch.setenv("EVIDENCE_INGEST__LEGACY_ENCODINGS", '["gb18030", "big5"]')
    s = load_settings()
    assert s.watch.stable_s == 86400 and s.ingest.legacy_encodings == ["gb18030", "big5"]


def test_the_shipped_toml_sets_every_setting() -> None:
    """config/default.toml is the reference administrators read: every setting is in it,
    with the value the code would use without it."""
    shipped = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))

    def walk(model: type[BaseModel], table: dict[str, Any], where: str) -> None:
        for name, field in model.model_fields.items():
            if name == "home":
                continue  # decided by EVIDENCE_HOME
            assert name in table, f"{where}{name} is missing from config/default.toml"
            sub = field.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                walk(sub, table[name], f"{where}{name}.")
            elif name != "filename_patterns":
                default = field.get_default(call_default_factory=True)
                value = default.get_secret_value() if isinstance(default, SecretStr) else default
                assert table[name] == value, f"{where}{name}: {table[name]!r} != {value!r}"

    walk(Settings, shipped, "")


def test_an_empty_data_directory_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """EVIDENCE_HOME="" meant the current folder: a catalog and an archive appeared there."""
    monkeypatch.setenv("EVIDENCE_HOME", "")
    with pytest.raises(ConfigError, match="data directory is empty"):
        load_settings()
