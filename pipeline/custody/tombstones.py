"""Disposed records in ``evidence verify`` (issue 19): an original removed by an approved
disposal is gone on purpose, one removed any other way is damage.

An item counts as disposed only with all three: its media row's status ``disposed``, its
tombstone, and a DISPOSED custody event. Only then does verify leave its original out
(:func:`properly_disposed`): an original deleted outside disposal is still
E-ORIGINAL-MISSING, and so is one whose row an attacker set to ``disposed`` by hand (no
event, no tombstone; the replay reports the status too, E-RECORD-MISMATCH).

:func:`check_tombstones` holds the tombstones to the DISPOSED events, both ways: each event's
item has a tombstone that says what the event says (digest, size, request, when, by whom),
and each tombstone has its event. A tombstone forged to hide a deletion has no event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, exists, select

from pipeline.catalog.schema import custody_events, disposal_tombstones, media
from pipeline.custody.replay import MISMATCH, MISSING, UNRECORDED, recorded
from pipeline.custody.verify_bag import Problem
from pipeline.models import EventKind, MediaStatus


def properly_disposed() -> ColumnElement[bool]:
    """A WHERE clause over ``media``: the row is disposed, with its tombstone and event."""
    stone = exists().where(disposal_tombstones.c.media_id == media.c.id)
    event = exists().where(
        custody_events.c.media_id == media.c.id,
        custody_events.c.kind == EventKind.DISPOSED.value,
    )
    return (media.c.status == MediaStatus.DISPOSED.value) & stone & event


def check_tombstones(conn: Connection) -> tuple[list[Problem], int]:
    """The problems between tombstones and DISPOSED events, and the tombstones compared."""
    events = conn.execute(
        select(custody_events).where(custody_events.c.kind == EventKind.DISPOSED.value)
    ).all()
    stones = {int(r.media_id): r for r in conn.execute(select(disposal_tombstones))}
    problems: list[Problem] = []
    seen: set[int] = set()
    for e in events:
        media_id = int(e.media_id or 0)
        seen.add(media_id)
        stone = stones.get(media_id)
        subject = f"disposal_tombstones {media_id}"
        if stone is None:
            problems.append(
                Problem(
                    MISSING, subject, f"disposed by event {e.seq}, the catalog has no tombstone"
                )
            )
            continue
        details: Mapping[str, Any] = e.details or {}
        expected = {
            "sha256": details.get("sha256"),
            "size": details.get("size"),
            "request_id": details.get("request"),
            "disposed_at": recorded(e.at),
            "disposed_by": e.actor,
        }
        for column, value in expected.items():
            found = recorded(getattr(stone, column))
            if found != value:
                problems.append(
                    Problem(
                        MISMATCH,
                        f"{subject} {column}",
                        f"the tombstone holds {found!r}, the custody log recorded {value!r} "
                        f"(event {e.seq})",
                    )
                )
    problems += [
        Problem(UNRECORDED, f"disposal_tombstones {m}", "no DISPOSED event records this tombstone")
        for m in sorted(stones.keys() - seen)
    ]
    return problems, len(stones)
