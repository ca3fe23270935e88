"""What a benchmark reports: figures, each with its target, and how they are written out.

A figure is one number a reader looks at (a rate, a ratio, a percentile). Ratios are taken
between measurements of the same run, sample by sample, because the machines are shared and
noisy: a neighbour's load slows both sides of a pair alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Target:
    """``measured <op> value`` must hold."""

    op: Literal[">=", "<="]
    value: float

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {_number(self.value)}"


@dataclass(frozen=True)
class Figure:
    key: str  # stable id for tools reading the JSON, e.g. "ingest.vs_naive"
    label: str  # what a person reads in the table
    value: float
    unit: str
    target: Target | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)


@dataclass(frozen=True)
class Result:
    """One benchmark of the issue's list (``number`` is its item there)."""

    number: int
    name: str
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()  # what a reader needs to read the figures right
    samples: dict[str, Any] = field(default_factory=dict)  # raw measurements, for the JSON
    seconds: float = 0.0
    pending: str | None = None  # why it has no figures yet
    error: str | None = None  # it crashed: the runner goes on with the others


def to_json(results: list[Result], meta: dict[str, Any]) -> str:
    def figure(f: Figure) -> dict[str, Any]:
        return {
            "key": f.key,
            "label": f.label,
            "value": f.value,
            "unit": f.unit,
            "target": None if f.target is None else {"op": f.target.op, "value": f.target.value},
            "met": f.met,
        }

    entries = [
        {**asdict(r), "figures": [figure(f) for f in r.figures], "notes": list(r.notes)}
        for r in results
    ]
    return json.dumps({"meta": meta, "results": entries}, indent=2, ensure_ascii=False)


def to_markdown(results: list[Result]) -> str:
    """The table of every figure: measured, target, met."""
    lines = ["| # | benchmark | figure | measured | target | met |", "|---|---|---|---|---|---|"]
    for r in results:
        if r.pending or r.error:
            status = f"pending: {r.pending}" if r.pending else f"error: {r.error}"
            lines.append(f"| {r.number} | {r.name} | — | — | — | {status} |")
            continue
        for f in r.figures:
            target = "—" if f.target is None else f"{f.target} {f.unit}".strip()
            met = {True: "**met**", False: "**missed**", None: ""}[f.met]
            measured = f"{_number(f.value)} {f.unit}".strip()
            lines.append(f"| {r.number} | {r.name} | {f.label} | {measured} | {target} | {met} |")
    return "\n".join(lines) + "\n"


def write(results: list[Result], meta: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "bench.json", out / "bench.md"
    json_path.write_text(to_json(results, meta) + "\n", encoding="utf-8")
    notes = [f"- **{r.number}. {r.name}**: {note}" for r in results for note in r.notes]
    header = (
        f"Benchmarks ({meta['mode']}), {meta['started']}, commit {meta['commit']}, "
        f"load average {meta['load_before']} before and {meta['load_after']} after"
        + (
            f"; Prefect server on {meta['prefect_database']}"
            if meta.get("prefect_database")
            else ""
        )
        + ".\n\n"
    )
    md_path.write_text(header + to_markdown(results) + "\n" + "\n".join(notes) + "\n")
    return json_path, md_path


def _number(value: float) -> str:
    """Three significant digits are all a noisy machine can vouch for."""
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"
