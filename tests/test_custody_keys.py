"""The instance key: `evidence init` makes it (0600), keeps it, `evidence keys export` prints
its public half; a key others can read is refused."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.custody import verify_bag as rules
from pipeline.custody.keys import create_instance_key, key_dir, load_signer
from pipeline.errors import InstanceKeyError
from tests.custody_helpers import EVIDENCE


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    env["EVIDENCE_HOME"] = str(home)
    return subprocess.run([*EVIDENCE, *args], env=env, capture_output=True, text=True, timeout=60)


def test_init_creates_a_private_key_and_keeps_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = _cli(home, "init", "--json")
    assert first.returncode == 0, first.stderr
    key_id = json.loads(first.stdout)["key_id"]
    private = key_dir(home) / "instance.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir(home).stat().st_mode) == 0o700
    again = create_instance_key(home)  # what a second `evidence init` does
    assert (again.key_id, again.created) == (key_id, False), "a second init keeps the key"

    exported = _cli(home, "keys", "export")
    assert exported.returncode == 0, exported.stderr
    public = rules.load_public_key(exported.stdout.encode())
    assert rules.key_id(public) == key_id == load_signer(home).key_id
    assert key_id in exported.stderr, "the key id goes beside the PEM, not into it"


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    create_instance_key(home)
    (key_dir(home) / "instance.key").chmod(0o644)
    with pytest.raises(InstanceKeyError, match="0644 lets others read it"):
        load_signer(home)


def test_without_a_key_the_commands_say_run_init(tmp_path: Path) -> None:
    result = _cli(tmp_path / "home", "keys", "export")
    assert result.returncode == 2
    assert "run `evidence init`" in result.stderr and "Traceback" not in result.stderr
