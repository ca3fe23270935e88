"""Bulk import of cases, written descriptions (文字说明) and text-record fields, from YAML
(sections ``cases``, ``descriptions``, ``records``) or CSV (one table a file). Validated as a
whole with file and line for every problem; applied all or nothing; re-import changes nothing.

An import records facts; it does not act. A case file is archived by sealing it (``evidence
cases archive``), so an import cannot say ``archived``; it may say ``concluded`` only with the
end of the act, which is all concluding records (``evidence cases conclude``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from pipeline.cases import records as cases
from pipeline.cases.categories import Categories
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.errors import CaseError, CaseFileError, EvidenceError, record_problem
from pipeline.models import Case, CaseStatus, RecordType, Signature
from pipeline.settings import Settings
from pipeline.tabular import read_records, text_value, time_value

REQUIRED = {
    "cases": ("number", "title", "category"),
    "descriptions": ("media", "text"),
    "records": ("media", "type", "signature"),
}
COLUMNS = {
    "cases": ("number", "title", "category", "department", "officers", "start", "end", "status"),
    "descriptions": ("media", "text"),
    "records": ("media", "type", "signature"),
}


@dataclass(frozen=True)
class Parsed:
    section: str
    line: int
    value: Any


KEYS = {"cases": "number", "descriptions": "media", "records": "media"}


def _error(message: str) -> CaseError:
    return CaseError(None, message)


def read_file(path: Path, tz: ZoneInfo) -> list[Parsed]:
    """Parse and validate; CaseError lists every problem. A record given twice is refused:
    which of the two should win is the writer's to say."""
    parsed, problems = [], []
    first: dict[tuple[str, str], int] = {}
    for section, line, data in read_records(path, REQUIRED, _error):
        try:
            unknown = set(data) - set(COLUMNS[section])
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            value = _value(section, data, tz)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(record_problem(path, line, section, COLUMNS[section], str(exc)))
            continue
        key = f"{KEYS[section]} {value.number if section == 'cases' else value[0]}"
        if (section, key) in first:
            message = f"{key} is already given at line {first[section, key]}"
            problems.append(record_problem(path, line, section, COLUMNS[section], message))
            continue
        first[section, key] = line
        parsed.append(Parsed(section, line, value))
    if problems:
        raise CaseFileError(path, problems)
    return parsed


def _value(section: str, data: dict[str, Any], tz: ZoneInfo) -> Any:
    if section == "cases":
        officers = data.get("officers") or []
        if isinstance(officers, str):
            officers = [o for o in officers.replace(",", ";").split(";") if o.strip()]
        if not isinstance(officers, list) or not all(isinstance(o, str | int) for o in officers):
            raise ValueError("officers must be a list of officer numbers")
        start, end = data.get("start"), data.get("end")
        action_end = time_value(end, "end", tz) if end not in (None, "") else None
        return Case(
            number=text_value(data, "number"),
            title=text_value(data, "title"),
            category=text_value(data, "category"),
            department=text_value(data, "department"),
            status=_status(text_value(data, "status", "open"), action_end),
            officers=tuple(sorted(str(o).strip() for o in officers)),
            action_start=time_value(start, "start", tz) if start not in (None, "") else None,
            action_end=action_end,
        )
    if section == "descriptions":
        return (text_value(data, "media"), text_value(data, "text"))
    return (
        text_value(data, "media"),
        RecordType(text_value(data, "type")),
        Signature(text_value(data, "signature")),
    )


def _status(text: str, action_end: datetime | None) -> CaseStatus:
    try:
        status = CaseStatus(text)
    except ValueError:
        raise ValueError(f"status {text[:40]!r}: use {', '.join(CaseStatus)}") from None
    if status is CaseStatus.ARCHIVED:
        raise ValueError(
            "status archived: an import cannot seal a case file; use evidence cases archive"
        )
    if status is CaseStatus.CONCLUDED and action_end is None:
        raise ValueError(
            "status concluded needs the end of the act (end); or use evidence cases conclude --end"
        )
    return status


def apply(
    catalog: Catalog,
    parsed: list[Parsed],
    source: Path,
    actor: str,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> list[tuple[str, str, str]]:
    """Apply in one transaction; returns (section, key, added|changed|unchanged) per record."""
    with catalog.begin() as conn:
        return apply_in(conn, parsed, source, actor, settings, categories, now)


def apply_in(
    conn: Connection,
    parsed: list[Parsed],
    source: Path,
    actor: str,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> list[tuple[str, str, str]]:
    """:func:`apply` inside the caller's transaction."""
    done = []
    for p in parsed:
        try:
            done.append((p.section, *_apply_one(conn, p, actor, settings, categories, now)))
        except EvidenceError as exc:
            raise _error(f"{source}:{p.line}: {p.section}: {exc}") from exc
    return done


def _apply_one(
    conn: Connection,
    p: Parsed,
    actor: str,
    settings: Settings,
    categories: Categories,
    now: datetime,
) -> tuple[str, str]:
    if p.section == "cases":
        return p.value.number, cases.save_case(conn, p.value, actor, settings, categories, now)
    key, *rest = p.value
    item = media_db.get(conn, key)
    if p.section == "descriptions":
        if item.description == rest[0]:
            return key, "unchanged"
        cases.describe(conn, item.id, rest[0], actor, now)
        return key, "changed"
    record_type, signature = rest
    if (item.record_type, item.signature) == (record_type.value, signature.value):
        return key, "unchanged"
    cases.set_record(conn, item.id, record_type, signature, actor, now)
    return key, "changed"
