"""Cases (案件) and the records filed into them.

A case holds an enforcement act: who acted, its category, when the act started and ended.
Records join it by links: by the linking rule — a recording attributed to one of the case's
officers overlapping the action window (± a margin), or a document whose file name carries the
case number — or by a person, with a reason. A link a person removed is never put back by the
rule. Every change is a custody event.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, or_, select

from pipeline.cases import deadline
from pipeline.cases.categories import Categories
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog import registry as registry_rows
from pipeline.catalog.schema import media
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.errors import CaseError, NotFound
from pipeline.models import (
    Case,
    CaseStatus,
    EventKind,
    LinkMethod,
    MediaStatus,
    RecordType,
    Signature,
)
from pipeline.settings import Settings

#: What a case number may hold: letters and digits of any script (CJK included), '-', '_', '.',
#: and the brackets Chinese case numbers use (市监罚〔2026〕0113号, (2026)0113, 【2026】, [2026]);
#: 1-64 of them (the column's width), not starting with '.'. No '/', '\', whitespace or control
#: character: a number is shown, searched for and written into bags, never taken as a path.
CASE_NUMBER = re.compile(r"(?!\.)[\w\-.()（）〔〕［］\[\]【】]{1,64}")


def check_number(number: str) -> str:
    """``number`` if a new case may have it, else CaseError naming it and saying why."""
    if not CASE_NUMBER.fullmatch(number):
        raise CaseError(
            repr(number) if not number.isprintable() or not number else number,
            "a case number is 1-64 letters, digits, '-', '_', '.' or brackets (〔〕()[]【】), "
            "not starting with '.'",
        )
    return number


def due_of(settings: Settings, action_end: datetime | None) -> tuple[date | None, bool]:
    """The filing deadline of an act that ended at ``action_end`` (its local date plus the
    rule's days, see pipeline/deadline.py), and whether it is provisional (a working-day year
    that neither the holiday file nor the chinese_calendar package knows)."""
    if action_end is None:
        return None, False
    local_end = action_end.astimezone(ZoneInfo(settings.devices.timezone)).date()
    found = deadline.due_date(
        local_end,
        settings.cases.deadline_days,
        deadline.DeadlineMode(settings.cases.deadline_mode),
        work_calendar(settings),
    )
    return found.due, found.provisional


def work_calendar(settings: Settings) -> deadline.WorkCalendar:
    """The administrator's holiday file when configured (it must exist), else the optional
    EVIDENCE_HOME/holidays.toml, over the chinese_calendar package."""
    configured = settings.cases.holidays_file
    path = Path(configured) if configured else settings.home / "holidays.toml"
    return deadline.WorkCalendar.from_file(path, missing_ok=not configured)


def save_case(
    conn: Connection,
    case: Case,
    actor: str,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> str:
    """Create or update a case; 'added', 'changed' or 'unchanged'. The category may be
    given by id or by name (查封扣押); the case keeps its id."""
    case = replace(case, category=categories.get(case.category).id)
    before = case_rows.get(conn, case.number)
    if before is None:  # a case an older, unchecked version made keeps working by its number
        check_number(case.number)
    if not case.title.strip():
        raise CaseError(case.number, "a case needs a title")
    for officer in case.officers:
        if registry_rows.officer(conn, officer) is None:
            raise CaseError(case.number, f"officer {officer} is not registered")
    if case.action_start and case.action_end and case.action_end < case.action_start:
        raise CaseError(case.number, "the action ends before it starts")
    due, provisional = due_of(settings, case.action_end)
    case = replace(case, due=due, due_provisional=provisional)
    if before == case:
        return "unchanged"
    if before is not None and before.status is CaseStatus.ARCHIVED:
        raise CaseError(case.number, "the case file is sealed; it cannot change")
    written = case_rows.save(conn, case, now)
    action = "added" if before is None else "changed"
    custody.append(
        conn,
        EventKind.CASE_CHANGED,
        actor,
        subject=case.number,
        details={
            "action": action,
            "category": case.category,
            "officers": list(case.officers),
            "action_start": _iso(case.action_start),
            "action_end": _iso(case.action_end),
            "due": case.due.isoformat() if case.due else None,
            "status": case.status.value,
            "row": replay.recorded_row(written),
        },
        now=now,
    )
    return action


def get_case(conn: Connection, number: str) -> Case:
    found = case_rows.get(conn, number)
    if found is None:
        raise NotFound("case", number)
    return found


def conclude(
    conn: Connection,
    number: str,
    end: datetime | None,
    actor: str,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> Case:
    """The enforcement act has ended: the 15-day clock starts from its end."""
    case = get_case(conn, number)
    if case.status is CaseStatus.ARCHIVED:
        raise CaseError(number, "already archived")
    ended = end or case.action_end
    if ended is None:
        raise CaseError(number, "give the time the enforcement act ended (--end)")
    save_case(
        conn,
        replace(case, status=CaseStatus.CONCLUDED, action_end=ended),
        actor,
        settings,
        categories,
        now,
    )
    return get_case(conn, number)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# ------------------------------------------------------------------------------------ links


def link(
    conn: Connection, number: str, media_id: int, actor: str, reason: str, now: datetime
) -> bool:
    """Link by hand; False when already linked."""
    case = get_case(conn, number)
    if case.status is CaseStatus.ARCHIVED:
        raise CaseError(number, "the case file is sealed; records cannot be added")
    if not reason.strip():
        raise CaseError(number, "a manual link needs a reason")
    item = media_db.get(conn, media_id)
    if case_rows.active_link(conn, number, item.id) is not None:
        return False
    link_id = case_rows.add_link(conn, number, item.id, LinkMethod.MANUAL, reason, actor, now)
    custody.append(
        conn,
        EventKind.LINKED,
        actor,
        media_id=item.id,
        subject=number,
        details={"case": number, "method": "manual", "reason": reason, "link": link_id},
        now=now,
    )
    return True


def unlink(
    conn: Connection, number: str, media_id: int, actor: str, reason: str, now: datetime
) -> None:
    case = get_case(conn, number)
    if case.status is CaseStatus.ARCHIVED:
        raise CaseError(number, "the case file is sealed; records cannot be removed")
    if not reason.strip():
        raise CaseError(number, "unlinking needs a reason")
    ended = case_rows.remove_link(conn, number, media_id, actor, reason, now)
    if not ended:
        raise CaseError(number, f"media {media_id} is not linked to it")
    custody.append(
        conn,
        EventKind.UNLINKED,
        actor,
        media_id=media_id,
        subject=number,
        details={"case": number, "reason": reason, "links": ended},
        now=now,
    )


def autolink(
    conn: Connection,
    settings: Settings,
    actor: str,
    now: datetime,
    numbers: Iterable[str] | None = None,
) -> list[tuple[str, int, str]]:
    """Apply the linking rule to open and concluded cases (all, or ``numbers``); returns the
    links made as (case, media id, rule)."""
    margin = timedelta(minutes=settings.cases.link_margin_min)
    wanted = set(numbers) if numbers is not None else None
    made = []
    for case in case_rows.listing(conn):
        if case.status is CaseStatus.ARCHIVED or (wanted is not None and case.number not in wanted):
            continue
        for media_id, rule in _matches(conn, case, margin):
            if case_rows.active_link(conn, case.number, media_id) or case_rows.was_unlinked(
                conn, case.number, media_id
            ):
                continue
            link_id = case_rows.add_link(
                conn, case.number, media_id, LinkMethod.RULE, rule, actor, now
            )
            custody.append(
                conn,
                EventKind.LINKED,
                actor,
                media_id=media_id,
                subject=case.number,
                details={"case": case.number, "method": "rule", "rule": rule, "link": link_id},
                now=now,
            )
            made.append((case.number, media_id, rule))
    return made


def _matches(conn: Connection, case: Case, margin: timedelta) -> list[tuple[int, str]]:
    archived = media.c.status == MediaStatus.ARCHIVED.value
    found: list[tuple[int, str]] = []
    if case.officers and case.action_start is not None:
        window_start = case.action_start - margin
        clause = and_(
            archived, media.c.officer_id.in_(case.officers), media.c.recorded_end >= window_start
        )
        if case.action_end is not None:
            clause = and_(clause, media.c.recorded_start <= case.action_end + margin)
        rule = f"officer-time: by an officer of the case, within the action window ± {margin}"
        found += [(r.id, rule) for r in conn.execute(select(media.c.id).where(clause))]
    by_name = and_(archived, or_(media.c.original_name.contains(case.number, autoescape=True)))
    found += [
        (r.id, "case-number-in-name")
        for r in conn.execute(select(media.c.id).where(by_name))
        if r.id not in {m for m, _ in found}
    ]
    return found


# ------------------------------------------------------------------------- record fields


def describe(conn: Connection, media_id: int, text: str, actor: str, now: datetime) -> None:
    """Set the written description (文字说明) of a recording."""
    if not text.strip():
        raise CaseError(None, "a description cannot be empty")
    item = media_db.get(conn, media_id)
    media_db.set_description(conn, item.id, text.strip(), actor, now)
    custody.append(
        conn,
        EventKind.DESCRIBED,
        actor,
        media_id=item.id,
        subject="description",
        details={"description": text.strip()},
        now=now,
    )


def set_record(
    conn: Connection,
    media_id: int,
    record_type: RecordType,
    signature: Signature,
    actor: str,
    now: datetime,
) -> None:
    """Mark a document as a text record (笔录) of a type, signed or with the refusal noted."""
    item = media_db.get(conn, media_id)
    media_db.set_record(conn, item.id, record_type.value, signature.value)
    custody.append(
        conn,
        EventKind.DESCRIBED,
        actor,
        media_id=item.id,
        subject="record",
        details={"record_type": record_type.value, "signature": signature.value},
        now=now,
    )
