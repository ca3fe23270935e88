"""Settings: defaults from config/default.toml, a user file, then EVIDENCE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import load_settings


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
