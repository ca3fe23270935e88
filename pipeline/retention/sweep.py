"""The daily retention sweep's two steps (``flows/retention.py`` wraps each in a task).

1. :func:`list_candidates`: the items whose retention has passed and that no hold covers
   (:func:`pipeline.retention.derive.candidates`), less those already on a disposal request
   still on its way, recorded as one sweep (``retention_sweeps``, ``retention_candidates``).
   A listing is not a disposal and touches no evidence: it writes no custody event. An
   archivist then asks to dispose of "the candidates of sweep N" (or of some of them).
2. :func:`pipeline.retention.disposal_removal.dispose_due`: approved requests past their
   grace period.
"""

from __future__ import annotations

from sqlalchemy import select

from pipeline.catalog import disposal as rows
from pipeline.catalog.retention import chunks
from pipeline.catalog.schema import disposal_items, media
from pipeline.errors import NotFound
from pipeline.instance import Instance
from pipeline.retention.derive import candidates
from pipeline.retention.disposal_requests import Candidate, ItemState, Sweep
from pipeline.retention.rules import rules_of


def list_candidates(instance: Instance, *, limit: int | None = None) -> Sweep:
    """List and record the disposal candidates at ``instance.clock()`` (oldest first)."""
    now, rules = instance.clock(), rules_of(instance.settings)
    with instance.catalog.read() as conn:
        found = candidates(conn, rules, now, limit=limit)
        ids = [r.media_id for r in found]
        sizes: dict[int, int] = {}
        for chunk in chunks(ids):
            query = select(media.c.id, media.c.size).where(media.c.id.in_(chunk))
            sizes.update((int(i), int(s)) for i, s in conn.execute(query))
        busy = set(
            conn.execute(
                select(disposal_items.c.media_id).where(
                    disposal_items.c.state.in_([ItemState.WAITING.value, ItemState.APPROVED.value])
                )
            ).scalars()
        )
    listed = [
        Candidate(r.media_id, r.until, int(sizes.get(r.media_id, 0)), r.reasons)
        for r in found
        if r.media_id not in busy and r.until is not None
    ]
    with instance.catalog.begin() as conn:
        return rows.add_sweep(conn, now, instance.actor or instance.settings.actor, listed)


def show_sweep(instance: Instance, sweep_id: int | None = None) -> Sweep:
    """One sweep's candidates (the latest when ``sweep_id`` is None)."""
    with instance.catalog.read() as conn:
        wanted = sweep_id if sweep_id is not None else rows.last_sweep_id(conn)
        found = None if wanted is None else rows.get_sweep(conn, wanted)
    if found is None:
        raise NotFound("retention sweep", str(sweep_id) if sweep_id is not None else "latest")
    return found
