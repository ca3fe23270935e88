"""A quick run of each benchmark through the runner, so `make bench` cannot rot between the
times it is run.

The figures of a quick run mean nothing (the files are tiny); what is checked is that every
benchmark runs to the end and its results carry every target. One test per benchmark
(``--only KEY``), so that parallel test workers share them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import queries
from benchmarks.runner import BENCHMARKS, Benchmark
from tests.conftest import REPO

SCOPES = ("squad", "brigade", "agency")
FIGURES = (
    "case_files",
    "coverage",
    "recordings",
    "devices",
    "trends",
    "summary_per_department",
    "cases_needing_action",
)

#: The figures with a target that each benchmark's quick run must carry.
TARGETS: dict[str, set[str]] = {
    "ingest_large": {"ingest.vs_naive", "ingest.vs_limit"},
    "small_files": {"small.proxies_off.ratio", "small.proxies_on.ratio"},
    "proxy": {"proxy.overhead"},
    # Every query of benchmark 4, the five common ones and the tails (issue 20).
    "catalog_queries": {
        f"queries.2000.{q.replace(' ', '_')}.p95" for q in {**queries.QUERIES, **queries.EXTRA}
    },
    "watch_latency": {"watch.flow_default.p95", "watch.flow_default_loaded.p95"},
    "memory": {"memory.growth"},
    "replay": set(),
    "dock_upload": {
        "dock.large.vs_curl",
        "dock.small.vs_curl",
        "dock.concurrent.vs_limit",
        "dock.rss.growth",
    },
    "dashboard": {f"dashboard.3000.{f}.{s}.p95" for s in SCOPES for f in FIGURES},
    "s3_peers": {"s3.vs_peers"},
    "flow_runs": set(),
}


def test_every_benchmark_has_its_smoke_run() -> None:
    assert set(TARGETS) == {b.key for b in BENCHMARKS}
    assert {
        "queries.2000.officer_+_week.p95",
        "queries.2000.text_CJK_(4_chars).p95",
    } <= TARGETS["catalog_queries"]


@pytest.mark.parametrize("bench", BENCHMARKS, ids=lambda b: b.key)
def test_quick_run_writes_every_target(tmp_path: Path, prefect_api: str, bench: Benchmark) -> None:
    key, number = bench.key, bench.number
    out = tmp_path / "results"
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR"}
    command = [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--only", key]
    command += ["--workdir", str(tmp_path), "--prefect-api", prefect_api]

    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "bench.json").read_text())["results"]
    assert [r["number"] for r in results] == [number]
    assert results[0]["error"] is None
    targets = [f for f in results[0]["figures"] if f["target"] is not None]
    assert {f["key"] for f in targets} == TARGETS[key]
    assert all(isinstance(f["met"], bool) for f in targets)
    table = (out / "bench.md").read_text()
    assert "| # | benchmark | figure | measured | target | met |" in table
    assert list(tmp_path.iterdir()) == [out], "the runner cleans up its work folder"
