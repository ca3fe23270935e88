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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from rich.align import AlignMethod
from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.progress import Progress
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

from pipeline.models import (
    FileReport,
    MediaItem,
    Outcome,
    QuarantineEntry,
    SweepReport,
    plain,
)
from pipeline.uploads.presence import StationState

#: Columns of output that goes to a file or a pipe: wide enough that no digest, name or
#: path is folded (a script's `grep`, `cut` and `awk` see each on one line).
PIPE_WIDTH = 4096
#: The width of a section's heading there.
RULE_WIDTH = 100


class _Console(Console):
    """A terminal gets its width; a pipe or a file gets :data:`PIPE_WIDTH`, not Rich's 80."""

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def rule(
        self,
        title: str | Text = "",
        *,
        characters: str = "─",
        style: str | Style = "rule.line",
        align: AlignMethod = "center",
    ) -> None:
        """A section's heading; in a pipe or a file as wide as a terminal's, not as
        :data:`PIPE_WIDTH`."""
        line = Rule(title, characters=characters, style=style, align=align)
        self.print(line, width=None if self.is_terminal or self._width else RULE_WIDTH)


# No emoji codes: a stored ":warning:" is shown as typed.
console = _Console(emoji=False)
err_console = _Console(stderr=True, emoji=False)

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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 case``, ``2 cases``, ``3 media items``, ``1 quarantine entry``."""
    if n == 1:
        return f"1 {word}"
    if many is None:
        many = (
            f"{word[:-1]}ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else f"{word}s"
        )
    return f"{n} {many}"


def titled_table(title: str | Text, **options: Any) -> Table:
    """A table whose title is never folded: it is at least as wide as its title (a title
    says what the times are in, and how many rows there are)."""
    return Table(title=title, min_width=cell_len(str(title)) + 2, **options)


def when(moment: datetime | None, zone: tzinfo, *, seconds: bool = True) -> str:
    """A stored time as people read it: local (devices.timezone), without the zone, which
    :func:`zone_note` names once per screen. Empty for None."""
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def when_zoned(moment: datetime | None, zone: tzinfo) -> str:
    """A time on a line of its own: local, with its offset (``2026-11-30 09:25:00 +08:00``)."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"


def zone_note(zone: tzinfo) -> str:
    """What a screen of local times says once: ``times in Asia/Shanghai (+08:00)``."""
    offset = datetime.now(UTC).astimezone(zone).strftime("%z")
    return f"times in {zone} ({offset[:3]}:{offset[3:]})"


def _short(sha: str | None) -> str:
    return sha[:12] if sha else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def sweep_table(report: SweepReport) -> Table:
    table = Table(title=text(f"Station {report.station_id}: {plural(len(report.files), 'file')}"))
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


#: Where a recorded time came from, as :func:`media_detail` says it.
TIME_SOURCES = {
    "metadata": "from the file's metadata",
    "filename": "from the file name",
    "mtime": "from the file's time on the dock",
}


def media_table(
    items: list[MediaItem], zone: tzinfo = UTC, names: Mapping[str, str] | None = None
) -> Table:
    """Media items: ``recorded`` is the recording's start on the true clock (device offset
    corrected), however it was timed, in ``zone``."""
    names = names or {}
    table = titled_table(f"{plural(len(items), 'media item')}, {zone_note(zone)}")
    for col in (
        "id",
        "kind",
        "status",
        "name",
        "station",
        "device",
        "officer",
        "recorded",
        "duration",
        "size",
        "sha256",
    ):
        table.add_column(col, overflow="fold")
    for m in items:
        recorded = m.recorded_start or m.probe.recorded_at or m.probe.encoded_at
        table.add_row(
            str(m.id),
            f"{m.kind.value} {m.kind.label_zh}",
            m.status.value,
            text(m.original_name),
            text(m.station_id),
            text(m.device_serial or ""),
            text(_who(m.officer_id, names.get(m.officer_id or ""))),
            when(recorded, zone),
            _seconds(m.probe.duration_s),
            f"{m.size:,}",
            _short(m.sha256),
        )
    return table


def _who(officer_id: str | None, name: str | None) -> str:
    return " ".join(x for x in (officer_id, name) if x)


def extra_json(extra: Mapping[str, object]) -> str:
    """Metadata tags as JSON people read (not a Python dict): ``{"encoder": "Lavf"}``."""
    return json.dumps(dict(extra), ensure_ascii=False, sort_keys=True)


def media_detail(
    item: MediaItem,
    paths: dict[str, str],
    zone: tzinfo = UTC,
    *,
    officer_name: str | None = None,
    tags: tuple[str, ...] = (),
    cases: tuple[Any, ...] = (),
) -> Table:
    """One item, every field a person asks about: device, officer, when it was recorded and
    how that is known, its flags in words, description, tags, cases; times in ``zone``."""
    table = titled_table(f"Media item {item.id}, {zone_note(zone)}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    recorded = None
    if item.recorded_start is not None:
        span = when(item.recorded_start, zone)
        if item.recorded_end is not None and item.recorded_end != item.recorded_start:
            span += "–" + when(item.recorded_end, zone)[11:]
        source = TIME_SOURCES.get(item.time_source or "", item.time_source or "")
        recorded = f"{span} ({source})"
    rows: list[tuple[str, Any]] = [
        ("sha256", item.sha256),
        ("size", f"{item.size:,} bytes"),
        ("kind", f"{item.kind.value} {item.kind.label_zh}"),
        ("status", item.status.value),
        ("quarantine reason", item.quarantine_reason),
        ("original name", item.original_name),
        ("station", item.station_id),
        ("source path", item.source_path),
        ("ingested", when(item.ingested_at, zone)),
        ("device", item.device_serial or "(none identified)"),
        ("officer", _who(item.officer_id, officer_name) or "(unattributed)"),
        ("recorded", recorded),
        ("description 文字说明", item.description or "(none)"),
        ("described by", item.described_by),
        ("record type", item.record_type),
        ("signature", item.signature),
        ("tags", ", ".join(tags) or "(none)"),
        ("cases", Text("\n").join(text(f"{c.number} {c.title}") for c in cases) or "(in no case)"),
    ]
    rows.extend((f"flag {f.code}", f.message) for f in item.flags)
    for f in dataclasses.fields(item.probe):
        value = getattr(item.probe, f.name)
        if f.name == "kind" or value in (None, {}):
            continue
        if isinstance(value, datetime):
            value = when(value, zone)
        elif f.name == "extra":
            value = extra_json(value)
        rows.append((f.name, value))
    rows.extend(paths.items())
    for name, value in rows:
        if value is not None:
            table.add_row(text(name), value if isinstance(value, Text) else text(value))
    return table


def quarantine_table(entries: list[QuarantineEntry]) -> Table:
    table = Table(title=f"{plural(len(entries), 'quarantine entry')} (隔离区)")
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


def stations_table(states: Sequence[StationState], zone: tzinfo) -> Table:
    """Stations; for a push station, whether it is online and what it said last."""
    table = Table(title=f"{plural(len(states), 'station')} (采集站)")
    for col in ("id", "name", "dump folder", "location", "keeps mtimes", "kind", "state"):
        table.add_column(col, overflow="fold")
    for state in states:
        s = state.station
        table.add_row(
            text(s.id),
            text(s.name),
            text(s.root),
            text(s.location),
            "yes" if s.preserves_mtimes else "no",
            "推送 push" if s.pushes else "文件夹 folder",
            text(_push_state(state, zone)) if s.pushes else "",
        )
    return table


def _push_state(state: StationState, zone: tzinfo) -> str:
    if state.last_seen is None:
        online = "从未连接 never seen"
    else:
        online = "在线 online" if state.online else "离线 offline"
        online += f", last seen {when_zoned(state.last_seen, zone)}"
    parts = [online]
    if state.software_version:
        parts.append(f"v{state.software_version}")
    if state.free_disk_bytes is not None:
        parts.append(f"{state.free_disk_bytes / 1e9:.1f} GB free")
    if state.queue_length is not None:
        parts.append(f"{state.queue_length} queued on the station")
    if state.receiving or state.waiting:
        parts.append(f"{state.receiving} uploading, {state.waiting} awaiting ingest")
    if not state.tokens:
        parts.append("no valid token")
    return "; ".join(parts)


def ingest_progress(*, disable: bool) -> Progress:
    """The progress display of a sweep, on stderr: bytes stored (copied, hashed, verified)
    of the bytes planned, and a fraction done for a proxy being made; transient."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err_console, disable=disable, transient=True)


def file_line(report: FileReport) -> Text:
    reason = f" — {report.reason}" if report.reason else ""
    outcome = (f"{report.outcome.value:<11}", OUTCOME_STYLE[report.outcome])
    return line(outcome, " ", Path(report.path).name, reason)
