"""The ``retention-sweep`` flow, daily: record the release of holds whose last day has
passed, bring every record's lock up to its retention (a catch-up for a link or a mark whose
own follow was cut short by a crash or a store that did not answer), list the disposal
candidates, then remove what approved requests let go once their
grace period is over.

Listing is never disposal: the candidates are recorded as one sweep in the catalog
(``evidence retention sweep`` shows them; an archivist asks to dispose of "the candidates of
sweep N") and in a table artifact of ids, dates and sizes only (no names, no officers: an
operator's view of the flow is not an access to evidence). Removal happens only for items a
supervisor or the legal office approved, each checked once more
(:func:`pipeline.retention.disposal_removal.dispose_due`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron

from pipeline.catalog import open_catalog
from pipeline.errors import ConfigError
from pipeline.instance import Instance
from pipeline.retention.disposal_removal import dispose_due
from pipeline.retention.disposal_requests import DisposalRun, ItemState, Sweep
from pipeline.retention.holds import release_lapsed
from pipeline.retention.locks import Followed, follow_all
from pipeline.retention.sweep import list_candidates
from pipeline.settings import Settings, load_settings


@task(name="release-lapsed-holds", cache_policy=NO_CACHE)
def lapsed_task(instance: Instance) -> tuple[int, ...]:
    return release_lapsed(instance)


@task(name="follow-locks", cache_policy=NO_CACHE)
def locks_task(instance: Instance) -> tuple[Followed, ...]:
    return follow_all(instance)


@task(name="list-candidates", cache_policy=NO_CACHE)
def candidates_task(instance: Instance) -> Sweep:
    return list_candidates(instance)


@task(name="dispose-due", cache_policy=NO_CACHE)
def dispose_task(instance: Instance) -> DisposalRun:
    return dispose_due(instance)


@flow(name="retention-sweep")
def retention_sweep() -> dict[str, Any]:
    """Release lapsed holds; list the disposal candidates; dispose of approved items past
    their grace period."""
    settings = load_settings()
    now = datetime.now(UTC)
    instance = Instance(
        settings, open_catalog(settings.catalog_url), clock=lambda: now, actor=settings.actor
    )
    try:
        lapsed = lapsed_task(instance)
        followed = locks_task(instance)
        sweep = candidates_task(instance)
        run = dispose_task(instance)
    finally:
        instance.close()
    create_table_artifact(
        key="retention-candidates",
        table=[
            {"media": c.media_id, "until": c.until.isoformat(), "bytes": c.size}
            for c in sweep.candidates
        ],
        description=f"Retention sweep {sweep.id} at {now:%Y-%m-%d %H:%M} UTC: "
        f"{len(sweep.candidates)} candidates, {sweep.bytes} bytes (listed, not disposed)",
    )
    return {
        "holds_lapsed": list(lapsed),
        "locks_extended": sum(1 for f in followed if f.extended),
        "lock_problems": sum(1 for f in followed if f.problem),
        "sweep": sweep.id,
        "candidates": len(sweep.candidates),
        "candidate_bytes": sweep.bytes,
        "disposed": run.count(ItemState.DISPOSED),
        "dropped": run.count(ItemState.DROPPED),
        "refused_by_store": run.count(ItemState.STORE_REFUSED),
        "freed_bytes": run.freed,
        "derived_left": len(run.derived_left),
    }


def deployments(settings: Settings) -> list[Any]:
    """The served daily deployment (``retention.sweep_cron``, in devices.timezone)."""
    try:
        return [
            retention_sweep.to_deployment(
                name="daily",
                schedule=Cron(settings.retention.sweep_cron, timezone=settings.devices.timezone),
            )
        ]
    except ValueError as exc:
        raise ConfigError(f"invalid retention sweep schedule: {exc}") from exc
