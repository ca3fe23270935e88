"""Turning domain values into tables for people and JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.models import (
    FileReport,
    MediaItem,
    Outcome,
    QuarantineEntry,
    Station,
    SweepReport,
    plain,
)

console = Console()
err_console = Console(stderr=True)

OUTCOME_STYLE = {
    Outcome.ARCHIVED: "green",
    Outcome.DUPLICATE: "cyan",
    Outcome.QUARANTINED: "yellow",
    Outcome.WAITING: "blue",
    Outcome.FAILED: "bold red",
}
OUTCOME_ZH = {
    Outcome.ARCHIVED: "已归档",
    Outcome.DUPLICATE: "重复",
    Outcome.QUARANTINED: "已隔离",
    Outcome.WAITING: "等待",
    Outcome.FAILED: "失败",
}


to_jsonable = plain


def print_json(value: Any) -> None:
    # Plain print: rich would wrap long lines and colour the output of a script's pipe.
    print(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2))


def _short(sha: str | None) -> str:
    return sha[:12] if sha else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def sweep_table(report: SweepReport) -> Table:
    table = Table(title=f"Station {report.station_id}: {len(report.files)} files")
    for col in ("file", "outcome", "kind", "sha256", "media", "reason"):
        table.add_column(col, overflow="fold")
    for f in report.files:
        style = OUTCOME_STYLE[f.outcome]
        table.add_row(
            Path(f.path).name,
            f"[{style}]{f.outcome.value} {OUTCOME_ZH[f.outcome]}[/]",
            f.kind.value if f.kind else "",
            _short(f.sha256),
            str(f.media_id or ""),
            f.reason or "",
        )
    return table


def sweep_summary(report: SweepReport) -> str:
    parts = [f"{report.count(o)} {o.value}" for o in Outcome if report.count(o)]
    return f"{report.station_id}: {', '.join(parts) or 'no files'} in {report.seconds:.1f} s"


def media_table(items: list[MediaItem]) -> Table:
    table = Table(title=f"{len(items)} media items")
    for col in (
        "id",
        "kind",
        "status",
        "name",
        "station",
        "recorded",
        "duration",
        "size",
        "sha256",
    ):
        table.add_column(col, overflow="fold")
    for m in items:
        recorded = m.probe.recorded_at or m.probe.encoded_at
        table.add_row(
            str(m.id),
            f"{m.kind.value} {m.kind.label_zh}",
            m.status.value,
            m.original_name,
            m.station_id,
            recorded.strftime("%Y-%m-%d %H:%M:%S") if recorded else "",
            _seconds(m.probe.duration_s),
            f"{m.size:,}",
            _short(m.sha256),
        )
    return table


def media_detail(item: MediaItem, paths: dict[str, str]) -> Table:
    table = Table(show_header=False, title=f"Media item {item.id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("sha256", item.sha256),
        ("size", f"{item.size:,} bytes"),
        ("kind", f"{item.kind.value} {item.kind.label_zh}"),
        ("status", item.status.value),
        ("quarantine reason", item.quarantine_reason),
        ("original name", item.original_name),
        ("station", item.station_id),
        ("source path", item.source_path),
        ("ingested", item.ingested_at.isoformat()),
    ]
    for f in dataclasses.fields(item.probe):
        value = getattr(item.probe, f.name)
        if f.name != "kind" and value not in (None, {}):
            rows.append((f.name, value))
    rows.extend(paths.items())
    for name, value in rows:
        if value is not None:
            table.add_row(name, str(value))
    return table


def quarantine_table(entries: list[QuarantineEntry]) -> Table:
    table = Table(title=f"{len(entries)} quarantine entries (隔离区)")
    for col in ("id", "station", "file", "code", "reason", "media", "bytes kept as"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.id),
            e.station_id,
            Path(e.source_path).name,
            e.code,
            e.reason,
            str(e.media_id or ""),
            _short(e.sha256) if e.sha256 else "source kept on the dock",
        )
    return table


def stations_table(stations: list[Station]) -> Table:
    table = Table(title=f"{len(stations)} stations (采集站)")
    for col in ("id", "name", "dump folder", "location"):
        table.add_column(col, overflow="fold")
    for s in stations:
        table.add_row(s.id, s.name, str(s.root), s.location)
    return table


def file_line(report: FileReport) -> str:
    style = OUTCOME_STYLE[report.outcome]
    reason = f" — {report.reason}" if report.reason else ""
    return f"[{style}]{report.outcome.value:<11}[/] {Path(report.path).name}{reason}"
