"""`make demo` runs `evidence demo`: it must keep working, end to end, and say what it shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from interfaces.demo import DEMO_LOGIN, DEMO_PASSWORD


def test_the_demo_runs_and_shows_what_the_readme_promises(prefect_api: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))}
    env["EVIDENCE_PREFECT__API_URL"] = prefect_api  # the session's server: no second start-up
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "interfaces.cli", "demo", "--home", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "10 archived, 1 quarantined, 1 duplicate sighting, 0 failed" in out
    assert f"the demo's data is in {tmp_path / 'demo'}" in out
    assert "MPEG-4 file is truncated" in out and "device BWC0099 is not registered" in out
    assert "released quarantine" in out and "archived-on-time" in out
    assert "2026-0098: overdue" in out and "2026-0121: coverage gap" in out
    assert "2026-0087: archived-late" in out and "2026-0130: due-soon" in out
    # The compliance dashboard's figures: each has something to count.
    for label, value in (
        ("办结案件 cases concluded", "5"),
        ("按时归档率 on-time rate", "33.3%"),
        ("覆盖不全案件 cases with coverage gaps", "1"),
        ("笔录未签字且未注明 text records unsigned, refusal not noted", "1"),
        ("上传及时率 upload timeliness", "14.3%"),
        ("关联率 link rate", "71.4%"),
        ("未按期接入设备 devices not docked", "1"),
        ("采集站报告时钟偏差设备 devices with a clock reported off", "1"),
    ):
        assert re.search(rf"{label}\s*│\s*{re.escape(value)} │", out), label
    assert out.count("decodes") == 5, "the proxy of each of the 5 archived recordings decodes"
    assert "DOCK-01: 5 released, 0 left on the dock" in out
    assert "Traceback" not in done.stderr
    # It ends verified against its pinned key and witness, and with a web sign-in that works.
    assert "checked against the pinned key and the witness" in out and ": clean" in out
    assert f"demo login 演示账号: {DEMO_LOGIN} / {DEMO_PASSWORD}" in out
    from pipeline.accounts.usecases import sign_in
    from pipeline.instance import open_instance
    from pipeline.settings import load_settings

    instance = open_instance(load_settings(home=tmp_path / "demo"))
    try:
        assert sign_in(instance, DEMO_LOGIN, DEMO_PASSWORD).user.login == DEMO_LOGIN
    finally:
        instance.close()
