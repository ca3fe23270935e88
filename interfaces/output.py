"""Turning domain values into tables for people and JSON for scripts.

Every text the catalog holds came from a dock, a file's metadata, an import or a person, so it
is data, never markup: it reaches Rich only as a ``Text`` (``text``, or ``line`` when a line
mixes it with styles of ours), with its control characters made visible (``shown``).
A stored "[/]" would otherwise end a listing with a MarkupError, and an ESC sequence would
drive the reader's terminal.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.models import (
    FileReport,
    MediaItem,
    Outcome,
    QuarantineEntry,
    Station,
    SweepReport,
    plain,
)

# No emoji codes: a stored ":warning:" is shown as typed.
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)

# What a terminal acts on instead of showing: C0 controls but tab and newline, DEL, C1 (0x9b
# alone is a CSI to many terminals), the Unicode line separators and bidirectional controls
# (they reorder what follows, "Trojan Source"), and lone surrogates (os.fsdecode's stand-ins
# for undecodable bytes of a file name, which no terminal encoding can write).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
    "\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# JSON escapes C0 itself; these it leaves raw with ensure_ascii=False.
_JSON_UNSAFE = re.compile(
    "[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

OUTCOME_STYLE = {
    Outcome.ARCHIVED: "green",
    Outcome.DUPLICATE: "cyan",
    Outcome.QUARANTINED: "yellow",
    Outcome.WAITING: "blue",
    Outcome.FAILED: "bold red",
    Outcome.REFUSED: "magenta",
    Outcome.VANISHED: "bold magenta",
}


to_jsonable = plain


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte the file system gave
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as text a terminal shows and does not act on: ESC becomes ``\\x1b``."""
    return _UNSAFE.sub(_visible, str(value))


def text(value: object, style: str = "") -> Text:
    """Stored text for a table cell, a title or a whole line: never parsed as markup."""
    return Text(shown(value), style=style)


def line(*parts: object | tuple[object, str]) -> Text:
    """A line of stored text and styled pieces, ``(text, style)``, none parsed as markup:
    ``line((case.number, "bold"), " ", case.title)``. (Escaping into a markup string instead
    gets a value that ends in a backslash wrong.)"""
    return Text.assemble(
        *(
            p if isinstance(p, Text) else (shown(p[0]), p[1]) if isinstance(p, tuple) else shown(p)
            for p in parts
        )
    )


class InertFormatter(logging.Formatter):
    """Log lines name dock files and quote errors: their control characters are shown."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))


def print_json(value: Any) -> None:
    # Plain print: rich would wrap long lines and colour the output of a script's pipe. The
    # \u escapes keep every value exact for a JSON reader while the raw bytes never reach
    # a terminal the output is shown on.
    dumped = json.dumps(to_jsonable(value), ensure_ascii=False, indent=2)
    print(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped))


def _short(sha: str | None) -> str:
    return sha[:12] if sha else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def sweep_table(report: SweepReport) -> Table:
    table = Table(title=text(f"Station {report.station_id}: {len(report.files)} files"))
    for col in ("file", "outcome", "kind", "sha256", "media", "reason"):
        table.add_column(col, overflow="fold")
    for f in report.files:
        style = OUTCOME_STYLE[f.outcome]
        table.add_row(
            text(Path(f.path).name),
            f"[{style}]{f.outcome.value} {f.outcome.label_zh}[/]",
            f.kind.value if f.kind else "",
            _short(f.sha256),
            str(f.media_id or ""),
            text(f.reason or ""),
        )
    return table


def sweep_summary(report: SweepReport) -> Text:
    parts = [f"{report.count(o)} {o.value}" for o in Outcome if report.count(o)]
    return text(f"{report.station_id}: {', '.join(parts) or 'no files'} in {report.seconds:.1f} s")


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
            text(m.original_name),
            text(m.station_id),
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
            table.add_row(text(name), text(value))
    return table


def quarantine_table(entries: list[QuarantineEntry]) -> Table:
    table = Table(title=f"{len(entries)} quarantine entries (隔离区)")
    for col in ("id", "station", "file", "code", "reason", "media", "bytes kept as"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(
            str(e.id),
            text(e.station_id),
            text(Path(e.source_path).name),
            text(e.code),
            text(e.reason),
            str(e.media_id or ""),
            _short(e.sha256) if e.sha256 else "source kept on the dock",
        )
    return table


def stations_table(stations: list[Station]) -> Table:
    table = Table(title=f"{len(stations)} stations (采集站)")
    for col in ("id", "name", "dump folder", "location"):
        table.add_column(col, overflow="fold")
    for s in stations:
        table.add_row(text(s.id), text(s.name), text(s.root), text(s.location))
    return table


def file_line(report: FileReport) -> Text:
    reason = f" — {report.reason}" if report.reason else ""
    outcome = (f"{report.outcome.value:<11}", OUTCOME_STYLE[report.outcome])
    return line(outcome, " ", Path(report.path).name, reason)
