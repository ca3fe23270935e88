"""A smoke run of the web benchmark (`python -m benchmarks.web`): it fills a catalog, signs
in, and times every common query as JSON and as a page (tiny here; its figures are not
asserted, a benchmark is not a timed test)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from benchmarks import web
from benchmarks.queries import QUERIES
from pipeline.accounts import passwords


def test_the_web_benchmark_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        passwords, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    rows = web.run(items=300, repeats=2)
    assert [r["what"] for r in rows[:2]] == [
        "Argon2id verification alone",
        "sign-in (POST /signin)",
    ]
    assert len(rows) == 2 + 2 * len(QUERIES)
    assert all(r["items"] == 300 and 0 <= r["p50_ms"] <= r["p95_ms"] for r in rows)
