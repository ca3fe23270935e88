"""A synthetic county for the storage forecast: ``recorders`` recorders producing
``tb_per_year`` terabytes a year between them, ``kept_share`` of it kept for good (linked to
cases, marked, held), the rest unlinked footage kept six months; the archive running for
``years`` years with disposal keeping up. The same :func:`pipeline.retention.plan.make_plan`
the real archive's plan uses, on synthesized entries (one per day and share).

    .venv/bin/python -m pipeline.retention.plan_county [recorders] [tb_per_year] [kept_share]

prints the plan's forecast (the numbers of the issue's closing note).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.retention.plan import Entry, Plan, make_plan, readable_bytes
from pipeline.retention.rules import Period

SIX_MONTHS = Period(months=6)


def county_forecast(
    *,
    recorders: int = 200,
    tb_per_year: float = 100.0,
    kept_share: float = 0.1,
    years: int = 3,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> Plan:
    """The plan of the synthetic county at ``now`` (module docstring)."""
    now = now or datetime.now(UTC)
    zone = zone or ZoneInfo("Asia/Shanghai")
    per_day = tb_per_year * 1e12 / 365
    entries: list[Entry] = []
    disposed = 0.0
    for day in range(years * 365, 0, -1):
        at = now - timedelta(days=day)
        kept = per_day * kept_share
        entries.append(Entry(2 * day, round(kept), None, False, "案件证据"))
        until = SIX_MONTHS.until(at, zone)
        assert until is not None
        if until <= now:  # gone already: disposal kept up
            disposed += per_day - kept
        else:
            entries.append(Entry(2 * day + 1, round(per_day - kept), until, False, "未关联"))
    return make_plan(
        entries,
        now=now,
        until=None,
        stored=sum(e.size for e in entries),
        intake=round(per_day * 30),
        intake_days=30,
        disposed_bytes=round(disposed),
        new_period=SIX_MONTHS,
        zone=zone,
    )


def main(argv: list[str]) -> None:
    recorders = int(argv[0]) if argv else 200
    tb = float(argv[1]) if len(argv) > 1 else 100.0
    share = float(argv[2]) if len(argv) > 2 else 0.1
    plan = county_forecast(recorders=recorders, tb_per_year=tb, kept_share=share)
    print(
        f"{recorders} recorders, {tb:g} TB/year ({readable_bytes(plan.intake_per_day)}/day, "
        f"{readable_bytes(plan.intake_per_day / recorders)} per recorder a day), "
        f"{share:.0%} kept for good; stored now {readable_bytes(plan.stored_bytes)}"
    )
    print(f"{'month':8} {'intake':>10} {'freed':>10} {'stored':>10}")
    for m in plan.forecast:
        print(
            f"{m.month:8} {readable_bytes(m.intake):>10} {readable_bytes(m.freed):>10} "
            f"{readable_bytes(m.stored):>10}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
