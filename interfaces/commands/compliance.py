"""`evidence compliance …`: the 15-day rule and coverage, per department."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated

import typer
from rich.table import Table

from interfaces import output
from interfaces.common import (
    JsonOpt,
    instance,
    local_time,
    local_until,
    officer_label,
    officer_names,
)
from pipeline.cases import usecases
from pipeline.instance import Instance
from pipeline.settings import Settings
from pipeline.supervision import usecases as supervision
from pipeline.supervision.dashboard import LABELS, Dashboard, Measures, OfficerFigures

app = typer.Typer(
    help="The full-process recording rule: the compliance (合规) report. (The daily sweep "
    "runs under `evidence serve`, at cases.compliance_cron.)",
    no_args_is_help=True,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="compliance")
    app.command("report")(compliance_report)
    app.command("dashboard")(compliance_dashboard)


def compliance_report(
    department: Annotated[str | None, typer.Option(help="Only this department.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--from", help="Acts ending from this time: 2026-11, 2026-Q4, 2026-11-01…"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Acts ending up to this time, inclusive: --to 2026-11 is all of November."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Per department, officer and device: cases concluded, archived on time, late, overdue
    now, coverage failures, recordings without description, unlinked media.

    Example: evidence compliance report --department 市场监管执法大队 --from 2026-11
    """
    inst = instance()
    rep = usecases.compliance_report(
        inst, department, local_time(inst.settings, since), local_until(inst.settings, until)
    )
    if json_out:
        output.print_json(rep)
        return
    print_report(rep, officer_names(inst))


def print_report(rep: usecases.ComplianceReport, names: Mapping[str, str] | None = None) -> None:
    """The report's tables; officers by id and name (``names``: id -> name)."""
    names = names or {}
    columns = (
        "concluded",
        "on time",
        "late",
        "overdue now",
        "coverage failures",
        "no description",
        "unlinked media",
    )
    for title, tallies in (
        ("department 部门", rep.departments),
        ("officer 执法人员", rep.officers),
        ("device 设备", rep.devices),
    ):
        table = Table(title=f"compliance by {title}, {rep.today}")
        table.add_column(title.split()[0])
        for col in columns:
            table.add_column(col, justify="right")
        for key, t in sorted(tallies.items()):
            table.add_row(
                output.text(officer_label(key, names) if tallies is rep.officers else key),
                *(
                    str(v)
                    for v in (
                        t.cases_concluded,
                        t.archived_on_time,
                        t.archived_late,
                        t.overdue_now,
                        t.coverage_failures,
                        t.without_description,
                        t.unlinked_media,
                    )
                ),
            )
        output.console.print(table)
    for case in rep.cases:
        for problem in case.problems:
            output.console.print(output.line((case.number, "yellow"), f": {problem}"))


# ------------------------------------------------------------------------ the dashboard


def compliance_dashboard(
    department: Annotated[
        str | None, typer.Option(help="A department and the units below it (default: all).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", help="First day: 2026-11-01, 2026-11, 2026-Q4 (default: 30 days ago)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--to", help="Last day, inclusive: --to 2026-11 is up to 30 November (default: today)."
        ),
    ] = None,
    officer: Annotated[
        str | None, typer.Option(help="One officer's figures, cases and recordings instead.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """The compliance dashboard (统计分析): case files (on time, late, overdue, due soon),
    whole-process coverage, descriptions and text records, upload timeliness (上传及时率),
    link rate (关联率), device use and clocks, trends, the weakest units and officers, and
    today's summary per department. The JSON is /api/v1/dashboard's.

    Example: evidence compliance dashboard --department 县公安局/治安大队 --from 2026-11
    """
    inst = instance()
    start, end = _days(inst, since, until)
    if officer is not None:
        found = supervision.officer_figures(inst, officer, start, end)
        if json_out:
            output.print_json(found)
            return
        print_officer(found, inst.settings)
        return
    dash = supervision.dashboard(inst, department, start, end)
    if json_out:
        output.print_json(dash)
        return
    print_dashboard(dash, inst.settings, officer_names(inst))


def _days(inst: Instance, since: str | None, until: str | None) -> tuple[date, date]:
    """The local days of --from and --to (each a period in the forms every command takes)."""
    start, end = supervision.days_of(
        inst, local_time(inst.settings, since), local_until(inst.settings, until)
    )
    if start > end:
        raise typer.BadParameter(f"--from {start} is after --to {end}")
    return start, end


def _shown(key: str, value: object) -> str:
    if value is None:
        return "—"
    if key.endswith("_rate") or key == "upload_timeliness":
        return f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]
    if key == "recorded_hours" and isinstance(value, float):
        return _hours(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _hours(value: float) -> str:
    """Hours to the tenth, a short recording's to the second."""
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.01 else f"{value:.4f}"


#: The columns of the units' and officers' tables (the JSON has every figure).
COLUMNS = (
    "cases_concluded",
    "cases_archived_on_time",
    "cases_archived_late",
    "cases_overdue",
    "cases_due_soon",
    "on_time_rate",
    "coverage_failures",
    "uncovered_minutes",
    "undescribed_recordings",
    "unsigned_records",
    "recordings",
    "recorded_hours",
    "upload_timeliness",
    "link_rate",
)


def _figures_table(title: str, figures: Measures) -> Table:
    table = output.titled_table(title)
    table.add_column("figure 指标")
    table.add_column("value", justify="right")
    for key, (zh, en) in LABELS.items():
        if hasattr(figures, key):
            table.add_row(f"{zh} {en}", _shown(key, getattr(figures, key)))
    return table


def _measures_table(title: str, first: str, rows: list[tuple[str, Measures]]) -> Table:
    table = output.titled_table(title)
    table.add_column(first, overflow="fold")
    for key in COLUMNS:
        table.add_column(LABELS[key][1], justify="right")
    for label, row in rows:
        table.add_row(output.text(label), *(_shown(k, getattr(row, k)) for k in COLUMNS))
    return table


def print_dashboard(
    dash: Dashboard,
    settings: Settings,
    names: Mapping[str, str] | None = None,
    *,
    brief: bool = False,
) -> None:
    """The dashboard's figures, today's summary, units, officers, devices, trends, weakest
    (``brief``: the figures and today's summary only)."""
    names, zone = names or {}, settings.zone
    console = output.console
    scope = dash.department or "all units 全部单位"
    console.print(
        output.text(
            f"compliance dashboard 统计分析: {scope}, {dash.start} – {dash.end} "
            f"(upload limit {dash.upload_limit_hours:g} h; {output.zone_note(zone)})"
        )
    )
    console.print(_figures_table(f"figures, {dash.start} – {dash.end}", dash.figures))
    as_of = (
        f"as of the daily sweep {output.when(dash.alerts_as_of, zone)}"
        if dash.alerts_as_of
        else "no daily sweep yet: computed now"
    )
    alerts = output.titled_table(f"today {dash.today}: per department 今日提醒 ({as_of})")
    for col in ("department", "due soon", "overdue", "coverage failures", "late uploads (7 days)"):
        alerts.add_column(col, justify="left" if col == "department" else "right")
    for a in dash.alerts:
        alerts.add_row(
            output.text(a.department or "(none)"),
            *(str(v) for v in (a.due_soon, a.overdue, a.coverage_failures, a.late_uploads)),
        )
    console.print(alerts)
    if brief:
        return
    console.print(
        _measures_table(
            "by unit 各单位", "department", [(u.department or "(none)", u) for u in dash.units]
        )
    )
    console.print(
        _measures_table(
            "by officer 执法人员",
            "officer",
            [(officer_label(o.officer_id, names) or "(unattributed)", o) for o in dash.officers],
        )
    )
    devices = output.titled_table("devices 设备")
    for col in (
        "device",
        "holder",
        "recordings",
        "hours",
        "last docked",
        "drift-flagged",
        "reported offset",
    ):
        devices.add_column(
            col, justify="left" if col in ("device", "holder", "last docked") else "right"
        )
    for d in dash.devices:
        devices.add_row(
            output.text(d.serial or "(none)"),
            output.text(officer_label(d.holder, names)),
            str(d.recordings),
            _hours(d.recorded_hours),
            ("not docked 未按期接入 " if d.not_docked else "") + output.when(d.last_docked, zone),
            str(d.drift_flagged),
            "" if d.reported_offset_s is None else f"{d.reported_offset_s:+.0f} s",
        )
    console.print(devices)
    _print_trends(dash.trends)
    weakest = output.titled_table("weakest 薄弱环节")
    for col in ("measure", "unit or officer", "value", "of"):
        weakest.add_column(col, justify="right" if col in ("value", "of") else "left")
    for w in dash.weakest:
        who = w.name if w.level == "unit" else officer_label(w.key, names)
        value = _shown(
            w.measure,
            w.value
            if w.measure.endswith("rate") or w.measure == "upload_timeliness"
            else int(w.value),
        )
        weakest.add_row(LABELS[w.measure][1], output.text(who or "(none)"), value, str(w.of))
    console.print(weakest)
    for c in dash.needing_action:
        console.print(output.line((c.number, "yellow"), f" {c.state}: ", "; ".join(c.problems)))


def _print_trends(trends: supervision.Trends) -> None:
    table = output.titled_table("trends 趋势 (7-day weeks, 30-day months)")
    keys = (
        "recordings",
        "upload_timeliness",
        "link_rate",
        "description_rate",
        "cases_concluded",
        "on_time_rate",
    )
    table.add_column("period")
    for key in keys:
        table.add_column(LABELS[key][1], justify="right")
    for row in (*trends.weeks, *trends.months):
        table.add_row(f"{row.start} – {row.end}", *(_shown(k, getattr(row, k)) for k in keys))
    for name, delta in (
        ("week over week", trends.week_over_week),
        ("month over month", trends.month_over_month),
    ):
        table.add_row(name, *(_delta(k, getattr(delta, k)) for k in keys))
    output.console.print(table)


def _delta(key: str, value: object) -> str:
    if value is None:
        return "—"
    if key.endswith("rate") or key == "upload_timeliness":
        return f"{float(value) * 100:+.1f} pp"  # type: ignore[arg-type]
    return f"{int(value):+d}"  # type: ignore[call-overload]


def print_officer(found: OfficerFigures, settings: Settings) -> None:
    """One officer's figures, cases and recordings to look at."""
    zone = settings.zone
    console = output.console
    console.print(
        output.text(
            f"{found.officer_id} {found.name} ({found.department}), {found.start} – {found.end}; "
            f"{output.zone_note(zone)}"
        )
    )
    console.print(_figures_table("figures", found.figures))
    for c in found.cases:
        console.print(
            output.line((c.number, "yellow"), f" {c.state}: ", "; ".join(c.problems) or "ok")
        )
    items = output.titled_table(f"recordings to look at ({len(found.items)})")
    for col in ("id", "kind", "device", "recorded", "docked", "problems"):
        items.add_column(col)
    for it in found.items:
        items.add_row(
            str(it.media_id),
            it.kind,
            output.text(it.device or ""),
            output.when(it.recorded_start, zone),
            output.when(it.docked_at, zone),
            ", ".join(it.problems),
        )
    console.print(items)
