"""A quick run of the benchmark runner, so `make bench` cannot rot between the times it is run.

The figures of a quick run mean nothing (the files are tiny); what is checked is that every
benchmark runs to the end and the results carry every target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import queries
from tests.conftest import REPO


def test_quick_run_writes_every_target(tmp_path: Path, prefect_api: str) -> None:
    out = tmp_path / "results"
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR"}
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)]
    command += ["--workdir", str(tmp_path), "--prefect-api", prefect_api]

    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "bench.json").read_text())["results"]
    assert [r["number"] for r in results] == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert all(r["error"] is None for r in results)
    targets = [f for r in results for f in r["figures"] if f["target"] is not None]
    query_targets = {f["key"] for f in targets if f["key"].startswith("queries.")}
    dashboard_targets = {f["key"] for f in targets if f["key"].startswith("dashboard.")}
    assert dashboard_targets == {
        f"dashboard.3000.{q}.{scope}.p95"
        for scope in ("squad", "brigade", "agency")
        for q in (
            "case_files",
            "coverage",
            "recordings",
            "devices",
            "trends",
            "summary_per_department",
            "cases_needing_action",
        )
    }
    # Every query of benchmark 4, the five common ones and the tails (issue 20), has a target.
    assert query_targets == {
        f"queries.2000.{q.replace(' ', '_')}.p95" for q in {**queries.QUERIES, **queries.EXTRA}
    }
    assert {
        "queries.2000.officer_+_week.p95",
        "queries.2000.text_CJK_(4_chars).p95",
    } <= query_targets
    assert {f["key"] for f in targets} - query_targets - dashboard_targets == {
        "ingest.vs_naive",
        "ingest.vs_limit",
        "small.proxies_off.ratio",
        "small.proxies_on.ratio",
        "proxy.overhead",
        "watch.flow_default.p95",
        "memory.growth",
        "dock.large.vs_curl",
        "dock.small.vs_curl",
        "dock.concurrent.vs_limit",
        "dock.rss.growth",
    }
    assert all(isinstance(f["met"], bool) for f in targets)
    table = (out / "bench.md").read_text()
    assert "| # | benchmark | figure | measured | target | met |" in table
    assert list(tmp_path.iterdir()) == [out], "the runner cleans up its work folder"
