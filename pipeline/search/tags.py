"""Free tags on media items (标签): archivists add and remove them, each change a custody event.

Tags are stored and compared in lower case with inner whitespace made one space, so ``Review``
and ``review`` are one tag. Characters the query language gives a meaning to (a comma, a double
quote, a leading + or -) are refused, so every tag can be searched for as typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select

from pipeline.catalog import media as media_db
from pipeline.catalog.schema import media_tags
from pipeline.custody import log as custody
from pipeline.errors import TagError
from pipeline.models import EventKind

MAX_LENGTH = 64  # the column's width


def normalize(tag: str) -> str:
    """A tag as stored and compared."""
    return " ".join(tag.split()).lower()


def validate(tag: str) -> str:
    """The normalized tag, or TagError saying why it cannot be one."""
    norm = normalize(tag)
    if not norm:
        raise TagError(tag, "is empty")
    if len(norm) > MAX_LENGTH:
        raise TagError(tag, f"is longer than {MAX_LENGTH} characters")
    if norm[0] in "+-":
        raise TagError(tag, "cannot start with + or - (they add and remove tags)")
    if "," in norm or '"' in norm or not norm.isprintable():
        raise TagError(tag, "cannot hold a comma, a double quote or a control character")
    return norm


@dataclass(frozen=True)
class TagChange:
    """What one change did to a media item's tags."""

    media_id: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    already: tuple[str, ...]  # asked to add, but there already
    absent: tuple[str, ...]  # asked to remove, but not there
    tags: tuple[str, ...]  # all of the item's tags afterwards


def of(conn: Connection, media_id: int) -> tuple[str, ...]:
    query = select(media_tags.c.tag).where(media_tags.c.media_id == media_id)
    return tuple(sorted(r.tag for r in conn.execute(query)))


def change(
    conn: Connection,
    key: str | int,
    add: Iterable[str],
    remove: Iterable[str],
    actor: str,
    now: datetime,
) -> TagChange:
    """Add and remove tags of the media item ``key`` (id or SHA-256 prefix), in the caller's
    transaction; one TAGGED custody event when anything changed."""
    item = media_db.get(conn, key)
    wanted = {validate(t) for t in add}
    unwanted = {normalize(t) for t in remove}
    both = wanted & unwanted
    if both:
        raise TagError(sorted(both)[0], "is both added and removed")
    current = set(of(conn, item.id))
    added, removed = sorted(wanted - current), sorted(unwanted & current)
    for tag in added:
        conn.execute(
            media_tags.insert().values(media_id=item.id, tag=tag, created_at=now, created_by=actor)
        )
    if removed:
        conn.execute(
            delete(media_tags).where(
                media_tags.c.media_id == item.id, media_tags.c.tag.in_(removed)
            )
        )
    if added or removed:
        custody.append(
            conn,
            EventKind.TAGGED,
            actor,
            media_id=item.id,
            subject="tags",
            details={"added": added, "removed": removed},
            now=now,
        )
    return TagChange(
        item.id,
        tuple(added),
        tuple(removed),
        tuple(sorted(wanted & current)),
        tuple(sorted(unwanted - current)),
        tuple(sorted((current | set(added)) - set(removed))),
    )
