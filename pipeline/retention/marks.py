"""Important-file marks (重点文件标记) and the retention classes people assign.

A recorder marks a file with one key; vendors write the mark into the file name (``…_IMP.MP4``,
``…_I.MP4``) or into its metadata (a comment or title). :func:`detected` finds it with the
patterns and words of config/retention.toml (``[marks]``); :func:`on_ingest` records it when
the item is catalogued, in the same transaction as its INGESTED event (whose recorded row it
leaves alone: the mark is a row of its own, with a MARKED event of its own). A person sets or
clears a mark, or assigns a class (无效数据), with a reason; each is a MARKED event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pipeline.catalog import retention as rows
from pipeline.custody import log as custody
from pipeline.errors import RetentionError
from pipeline.models import EventKind
from pipeline.retention.rules import RetentionRules, rules_of
from pipeline.settings import Settings


def detected(rules: RetentionRules, name: str, extra: Mapping[str, str]) -> tuple[str, str] | None:
    """How a file carries a mark: (``filename``, the pattern) or (``metadata``,
    ``field: word``); None: it carries none."""
    for pattern in rules.filename_patterns:
        if pattern.search(name):
            return "filename", pattern.pattern
    for key in rules.metadata_fields:
        value = extra.get(key)
        if not value:
            continue
        for word in rules.metadata_words:
            if found := word.search(value):
                return "metadata", f"{key}: {found.group(0)}"
    return None


def on_ingest(
    conn: Connection,
    settings: Settings,
    media_id: int,
    name: str,
    extra: Mapping[str, str],
    actor: str,
    now: datetime,
) -> bool:
    """Record the mark a new item's file carries, if any (True: it was marked)."""
    found = detected(rules_of(settings), name, extra)
    if found is None:
        return False
    source, matched = found
    rows.save_mark(conn, rows.Mark(media_id, source, matched, "", actor, now))
    custody.append(
        conn,
        EventKind.MARKED,
        actor,
        media_id=media_id,
        subject=name,
        details={"mark": "set", "source": source, "matched": matched},
        now=now,
    )
    return True


def set_mark(
    conn: Connection, media_id: int, reason: str, actor: str, now: datetime, *, clear: bool
) -> bool:
    """A person sets (or clears) an item's mark; False: it was so already."""
    why = _reason(media_id, reason)
    if clear:
        changed = rows.clear_mark(conn, media_id)
    else:
        present = rows.facts(conn, [media_id])[media_id].mark
        changed = present is None
        if changed:
            rows.save_mark(conn, rows.Mark(media_id, "person", actor, why, actor, now))
    if changed:
        details = {"mark": "cleared" if clear else "set", "source": "person", "reason": why}
        _marked(conn, media_id, actor, details, now)
    return changed


def assign_class(
    conn: Connection,
    rules: RetentionRules,
    media_id: int,
    class_id: str | None,
    reason: str,
    actor: str,
    now: datetime,
) -> bool:
    """A person assigns a class to an item (None: takes the assigned one away); False: it
    was so already."""
    why = _reason(media_id, reason)
    if class_id is not None:
        cls = rules.classes.get(class_id)
        if cls is None or cls.period.case:
            known = ", ".join(f"{c.id} {c.name_zh}" for c in rules.assignable())
            raise RetentionError(
                f"media {media_id}",
                f"无此保存类别 {class_id!r} (no retention class {class_id!r} to assign; "
                f"known: {known})",
            )
        present = rows.facts(conn, [media_id])[media_id].assigned
        changed = present is None or present.class_id != class_id
        if changed:
            rows.save_assigned(conn, rows.Assigned(media_id, class_id, why, actor, now))
    else:
        changed = rows.clear_assigned(conn, media_id)
    if changed:
        _marked(conn, media_id, actor, {"class": class_id, "reason": why}, now)
    return changed


def _marked(
    conn: Connection, media_id: int, actor: str, details: dict[str, Any], now: datetime
) -> None:
    custody.append(
        conn,
        EventKind.MARKED,
        actor,
        media_id=media_id,
        subject=f"media {media_id}",
        details=details,
        now=now,
    )


#: A reason is a few words at least: "x" is no reason.
MIN_REASON = 2


def _reason(media_id: int, reason: str | None) -> str:
    why = (reason or "").strip()
    if len(why) < MIN_REASON:
        raise RetentionError(f"media {media_id}", "须说明理由 (a reason is required)")
    return why[:2000]
