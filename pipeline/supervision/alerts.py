"""The daily summary per department (每日合规提醒): what each unit has to act on now.

Per department (exactly that unit, not its tree): case files due soon and overdue, cases of a
mandatory category not yet archived whose coverage fails, and recordings of the last seven
days docked later than ``cases.upload_limit_hours`` after they ended. The daily compliance
sweep computes it, keeps it in the catalog (:func:`publish`) and publishes it as a Prefect
table artifact for operators; the dashboard shows the kept one at its top, with the time it
was computed (:func:`published`). Kept because it reads the coverage of every pending case
file of the agency: at a year of a county, a third of a second that a dashboard opened for
one squad should not pay; before the first sweep the dashboard computes it when opened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection

from pipeline.cases.categories import Categories
from pipeline.catalog import supervision as q
from pipeline.settings import Settings
from pipeline.supervision import figures as f
from pipeline.supervision.figures import Period, Scope

#: Late uploads are counted over the recordings of this many days, today included.
RECENT_DAYS = 7


@dataclass(frozen=True)
class DepartmentSummary:
    department: str  # "" for cases and recordings of no department
    due_soon: int
    overdue: int
    coverage_failures: int
    late_uploads: int


@dataclass(frozen=True)
class Pending:
    """What the summary reads: the pending case files' states by department, the coverage
    of the pending cases of mandatory categories, and the last days' recordings."""

    cases: f.Breakdown[f.CaseCounts]
    coverage: tuple[f.CoverageCase, ...]
    uploads: f.Breakdown[f.RecordingCounts]


def pending(
    conn: Connection, scope: Scope, settings: Settings, categories: Categories, now: datetime
) -> Pending:
    """The readings of :func:`summaries`."""
    today = now.astimezone(settings.zone).date()
    cs = settings.cases
    states = f.case_files(
        conn, scope, f.EVER, today, cs.due_soon_days, pending_only=True, states_only=True
    )
    mandatory = [c.id for c in categories.listing() if c.mandatory_av]
    covered = f.coverage_cases(conn, scope, f.EVER, mandatory, cs.coverage_gap_s, pending_only=True)
    recent = Period(today - timedelta(days=RECENT_DAYS - 1), today).bounds(settings.zone)
    uploads = f.recordings(conn, scope, recent, cs.upload_limit_hours * 3600)
    return Pending(states, tuple(covered), uploads)


def summaries(
    conn: Connection,
    scope: Scope,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> tuple[DepartmentSummary, ...]:
    """The departments of ``scope`` with something to act on at ``now``, by department."""
    return summarise(pending(conn, scope, settings, categories, now))


def summarise(found: Pending) -> tuple[DepartmentSummary, ...]:
    failing: dict[str, int] = {}
    for c in found.coverage:
        failing[c.department] = failing.get(c.department, 0) + int(c.failed)
    by_unit = found.cases.by_unit
    late = found.uploads.by_unit
    rows = []
    for unit in sorted({*by_unit, *failing, *late}):
        cases = by_unit.get(unit)
        summary = DepartmentSummary(
            unit,
            cases.due_soon if cases else 0,
            cases.overdue if cases else 0,
            failing.get(unit, 0),
            late[unit].late if unit in late else 0,
        )
        if summary.due_soon or summary.overdue or summary.coverage_failures or summary.late_uploads:
            rows.append(summary)
    return tuple(rows)


@dataclass(frozen=True)
class Published:
    """A summary the sweep kept: the local day of the sweep, when it was computed, and the
    departments of the scope with something to act on then."""

    day: date
    computed_at: datetime
    rows: tuple[DepartmentSummary, ...]


def publish(
    conn: Connection, rows: tuple[DepartmentSummary, ...], now: datetime, day: date
) -> None:
    """Keep the summary of every unit computed at ``now`` (local day ``day``)."""
    q.keep_summary(conn, day, now, [asdict(r) for r in rows])


def published(conn: Connection, scope: Scope) -> Published | None:
    """The newest kept summary, of the units of ``scope``'s tree (None: every unit)."""
    kept = q.latest_summary(conn)
    if kept is None:
        return None
    day, at, rows = kept
    tree = scope.department
    return Published(
        day,
        at,
        tuple(
            DepartmentSummary(**r) for r in rows if tree is None or f.in_tree(r["department"], tree)
        ),
    )
