"""The disposal plan (``evidence retention plan``): what would go when, and a storage forecast.

What would go when: every archived record whose retention has an end (not permanent, not
held), by the month its retention ends (local time) and its retention category — the
enforcement category of the case it is linked to, else the class a person assigned, else
the important-file class if marked, else its own class (its kind's, or unlinked footage).
Those already past are "due now": they wait for a disposal request (nothing here disposes).

The forecast, month by month for the next 12 months from ``now``:

- intake: the current rate, the bytes ingested per day over the last ``intake_days`` days;
- freed: the records stored now, as their retention ends (those due now in the first
  month), and of the intake to come the share that is not kept for good — the share of the
  bytes ever archived (disposed included) that were not permanent or held — once the class of
  unlinked footage has passed;
- stored: what is stored now (originals of every record not disposed), plus intake, less
  freed, at the end of each month.

It assumes that what may go does go (requests made and approved as retention passes): the
forecast is of the storage needed when disposal keeps up, not of a backlog.

Pure functions of their inputs and ``now`` (:func:`make_plan`, :func:`forecast`); the one
use case that reads the catalog is :func:`retention_plan`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from pipeline.catalog.retention import Facts, chunks, facts
from pipeline.catalog.schema import media
from pipeline.instance import Instance
from pipeline.models import MediaStatus
from pipeline.retention.derive import derived
from pipeline.retention.rules import Period, RetentionRules, add_months, rules_of

#: Months of the forecast.
MONTHS = 12


@dataclass(frozen=True)
class Entry:
    """One stored record as the plan sees it."""

    media_id: int
    size: int
    until: datetime | None  # None: permanent
    held: bool
    category: str


@dataclass(frozen=True)
class Going:
    """Records of one category whose retention ends in one month (local ``YYYY-MM``)."""

    month: str
    category: str
    items: int
    bytes: int


@dataclass(frozen=True)
class Month:
    """One month of the forecast: [start, end) local, and the bytes of each flow."""

    month: str
    start: datetime
    end: datetime
    intake: int
    freed: int
    stored: int  # at the end of the month


@dataclass(frozen=True)
class Plan:
    now: datetime
    until: datetime
    due_items: int  # retention already passed: waiting for a disposal request
    due_bytes: int
    going: tuple[Going, ...]  # by month, then category, up to ``until``
    permanent_items: int
    permanent_bytes: int
    held_items: int
    held_bytes: int
    stored_bytes: int
    intake_days: int
    intake_per_day: float
    kept_share: float  # of bytes archived, the share kept for good
    forecast: tuple[Month, ...]

    def bytes_by_category(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for g in self.going:
            found[g.category] += g.bytes
        return dict(found)


# ---------------------------------------------------------------------------- pure parts


def category_of(f: Facts, rules: RetentionRules) -> str:
    """The retention category of a record (module docstring)."""
    if f.cases:
        category = f.cases[0][1]
        return f"案件：{rules.category_names.get(category, category)}"
    if f.assigned is not None:
        return rules.of(f.assigned.class_id).name_zh
    if f.mark is not None:
        return rules.of(rules.marked).name_zh
    return rules.own_class(f.kind).name_zh


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def going(entries: Iterable[Entry], now: datetime, until: datetime, zone: ZoneInfo) -> list[Going]:
    """Records whose retention ends after ``now`` and by ``until``, by month and category."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for e in entries:
        if e.held or e.until is None or not now < e.until <= until:
            continue
        groups[(month_of(e.until, zone), e.category)].append(e.size)
    return [Going(m, c, len(sizes), sum(sizes)) for (m, c), sizes in sorted(groups.items())]


def forecast(
    entries: Sequence[Entry],
    *,
    now: datetime,
    stored: int,
    intake_per_day: float,
    kept_share: float,
    new_period: Period,
    zone: ZoneInfo,
    months: int = MONTHS,
) -> list[Month]:
    """Month by month: the intake at the current rate, what disposal frees as retention
    periods pass (of the records stored now, and of the intake to come), what stays stored."""
    bounds = [add_months(now.astimezone(zone), i) for i in range(months + 1)]
    freed = [0.0] * months

    def window(moment: datetime) -> int | None:
        for i in range(months):
            if bounds[i] <= moment < bounds[i + 1]:
                return i
        return None

    for e in entries:
        if e.held or e.until is None:
            continue
        i = 0 if e.until <= now else window(e.until)
        if i is not None:
            freed[i] += e.size
    intake = [0.0] * months
    day = timedelta(days=1)
    moment = bounds[0]
    while moment < bounds[-1]:
        step = min(day, bounds[-1] - moment)
        share = intake_per_day * (step / day)
        start = window(moment)
        assert start is not None
        intake[start] += share
        gone = new_period.until(moment, zone)
        j = None if gone is None else window(gone)
        if j is not None:
            freed[j] += share * (1 - kept_share)
        moment += step
    found, level = [], float(stored)
    for i in range(months):
        level += intake[i] - freed[i]
        found.append(
            Month(
                month_of(bounds[i], zone),
                bounds[i],
                bounds[i + 1],
                round(intake[i]),
                round(freed[i]),
                round(level),
            )
        )
    return found


def make_plan(
    entries: Sequence[Entry],
    *,
    now: datetime,
    until: datetime | None,
    stored: int,
    intake: int,
    intake_days: int,
    disposed_bytes: int,
    new_period: Period,
    zone: ZoneInfo,
) -> Plan:
    """The plan of the stored ``entries`` (archived records), the bytes ``stored`` now,
    ``intake`` bytes ingested over the last ``intake_days`` days and ``disposed_bytes``
    disposed of so far; ``until`` defaults to 12 months from ``now``."""
    end = until or add_months(now.astimezone(zone), MONTHS)
    due = [e for e in entries if not e.held and e.until is not None and e.until <= now]
    permanent = [e for e in entries if not e.held and e.until is None]
    held = [e for e in entries if e.held]
    ever = sum(e.size for e in entries) + disposed_bytes
    kept = sum(e.size for e in (*permanent, *held))
    rate = intake / intake_days
    share = kept / ever if ever else 0.0
    return Plan(
        now=now,
        until=end,
        due_items=len(due),
        due_bytes=sum(e.size for e in due),
        going=tuple(going(entries, now, end, zone)),
        permanent_items=len(permanent),
        permanent_bytes=sum(e.size for e in permanent),
        held_items=len(held),
        held_bytes=sum(e.size for e in held),
        stored_bytes=stored,
        intake_days=intake_days,
        intake_per_day=rate,
        kept_share=share,
        forecast=tuple(
            forecast(
                entries,
                now=now,
                stored=stored,
                intake_per_day=rate,
                kept_share=share,
                new_period=new_period,
                zone=zone,
            )
        ),
    )


# ------------------------------------------------------------------------------ use case


def retention_plan(instance: Instance, *, until: datetime | None = None) -> Plan:
    """The plan of the archive now (``instance.clock``), up to ``until`` (default: 12
    months). Reads only the catalog: nothing is listed, requested or disposed."""
    now, rules = instance.clock(), rules_of(instance.settings)
    days = instance.settings.retention.intake_days
    with instance.catalog.read() as conn:
        entries = _entries(conn, rules, now)
        stored, intake, disposed = _totals(conn, now - timedelta(days=days), now)
    return make_plan(
        entries,
        now=now,
        until=until,
        stored=stored,
        intake=intake,
        intake_days=days,
        disposed_bytes=disposed,
        new_period=rules.of(rules.unlinked).period,
        zone=rules.zone,
    )


def _entries(conn: Connection, rules: RetentionRules, now: datetime) -> list[Entry]:
    query = select(media.c.id, media.c.size).where(media.c.status == MediaStatus.ARCHIVED.value)
    sizes = {int(r.id): int(r.size) for r in conn.execute(query)}
    found: list[Entry] = []
    for ids in chunks(sorted(sizes)):
        for media_id, f in facts(conn, ids).items():
            r = derived(f, rules, now)
            found.append(Entry(media_id, sizes[media_id], r.until, r.held, category_of(f, rules)))
    return found


def _totals(conn: Connection, since: datetime, now: datetime) -> tuple[int, int, int]:
    """Bytes stored now (every record not disposed: quarantined ones keep their bytes),
    ingested in [since, now), and disposed of so far."""
    disposed = media.c.status == MediaStatus.DISPOSED.value
    total = func.coalesce(func.sum(media.c.size), 0)
    stored = conn.execute(select(total).where(~disposed)).scalar_one()
    intake = conn.execute(
        select(total).where(media.c.ingested_at >= since, media.c.ingested_at < now)
    ).scalar_one()
    gone = conn.execute(select(total).where(disposed)).scalar_one()
    return int(stored), int(intake), int(gone)


def readable_bytes(n: float) -> str:
    """``1.5 TB``: decimal units, as disks are sold (the forecast is about buying them)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
