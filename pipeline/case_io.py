"""Bulk import of cases, written descriptions (文字说明) and text-record fields, from YAML
(sections ``cases``, ``descriptions``, ``records``) or CSV (one table a file). Validated as a
whole with file and line for every problem; applied all or nothing; re-import changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from pipeline import cases
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.categories import Categories
from pipeline.errors import CaseError, EvidenceError
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


def read_file(path: Path, tz: ZoneInfo) -> list[Parsed]:
    parsed, problems = [], []
    for section, line, data in read_records(path, REQUIRED, CaseError):
        try:
            unknown = set(data) - set(COLUMNS[section])
            if unknown:
                raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
            parsed.append(Parsed(section, line, _value(section, data, tz)))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{line}: {section}: {exc}")
    if problems:
        raise CaseError(None, f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    return parsed


def _value(section: str, data: dict[str, Any], tz: ZoneInfo) -> Any:
    if section == "cases":
        officers = data.get("officers") or []
        if isinstance(officers, str):
            officers = [o for o in officers.replace(",", ";").split(";") if o.strip()]
        start, end = data.get("start"), data.get("end")
        return Case(
            number=text_value(data, "number"),
            title=text_value(data, "title"),
            category=text_value(data, "category"),
            department=text_value(data, "department"),
            status=CaseStatus(text_value(data, "status", "open")),
            officers=tuple(sorted(str(o).strip() for o in officers)),
            action_start=time_value(start, "start", tz) if start not in (None, "") else None,
            action_end=time_value(end, "end", tz) if end not in (None, "") else None,
        )
    if section == "descriptions":
        return (text_value(data, "media"), text_value(data, "text"))
    return (
        text_value(data, "media"),
        RecordType(text_value(data, "type")),
        Signature(text_value(data, "signature")),
    )


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
    done = []
    with catalog.begin() as conn:
        for p in parsed:
            try:
                done.append((p.section, *_apply_one(conn, p, actor, settings, categories, now)))
            except EvidenceError as exc:
                raise CaseError(None, f"{source}:{p.line}: {p.section}: {exc}") from exc
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
