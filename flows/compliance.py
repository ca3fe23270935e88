"""The ``compliance-sweep`` flow: every case against the 15-day rule, daily.

Links what the rule finds, evaluates each case (deadline state, mandatory coverage, missing
descriptions and signatures), raises an ALERT custody event for each case that needs action,
publishes a table artifact for operators, and — when ``cases.auto_seal`` — seals concluded
cases whose files are complete. Then the summary per department (due soon, overdue, coverage
failures, late uploads), the one the dashboard shows at its top, as a second table artifact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron

from pipeline.cases import compliance
from pipeline.cases.categories import load_categories
from pipeline.cases.usecases import autolink_cases
from pipeline.catalog import Catalog, open_catalog
from pipeline.errors import ConfigError
from pipeline.instance import Instance
from pipeline.models import CaseStatus
from pipeline.settings import Settings, load_settings
from pipeline.supervision.alerts import DepartmentSummary
from pipeline.supervision.usecases import publish_department_summaries
from pipeline.uploads.presence import alert_silent_stations


@task(name="link-records", cache_policy=NO_CACHE, retries=1)
def link_task(catalog: Catalog, settings: Settings, now: datetime) -> int:
    """The linking rule over every open and concluded case, as `evidence cases autolink`
    applies it (the use case: the records' locks follow their longer retention)."""
    instance = Instance(settings, catalog, clock=lambda: now, actor=settings.actor)
    return len(autolink_cases(instance))


@task(name="evaluate-cases", cache_policy=NO_CACHE)
def evaluate_task(catalog: Catalog, settings: Settings, now: datetime) -> list[compliance.Finding]:
    today = now.astimezone(settings.zone).date()
    with catalog.begin() as conn:
        findings = compliance.evaluate_all(conn, settings, load_categories(settings), today)
        compliance.raise_alerts(conn, findings, settings.actor, now)
    return findings


@task(name="silent-stations", cache_policy=NO_CACHE)
def silent_stations_task(catalog: Catalog, settings: Settings, now: datetime) -> list[str]:
    """An alert for each push station silent longer than dock.silent_after_s."""
    instance = Instance(settings, catalog, clock=lambda: now, actor=settings.actor)
    return list(alert_silent_stations(instance))


@task(name="department-summary", cache_policy=NO_CACHE)
def summary_task(
    catalog: Catalog, settings: Settings, now: datetime
) -> tuple[DepartmentSummary, ...]:
    """What each department has to act on today, kept for the dashboard's top."""
    return publish_department_summaries(Instance(settings, catalog, clock=lambda: now))


@task(name="seal-case", cache_policy=NO_CACHE, retries=1)
def seal_task(settings: Settings, number: str) -> str:
    from pipeline.cases.seal import seal_case

    return seal_case(settings, number, settings.actor, "auto-seal: concluded and complete").key


@flow(name="compliance-sweep")
def compliance_sweep() -> dict[str, Any]:
    """Evaluate every case; alerts for what needs action (and for push stations gone
    silent); optionally seal complete cases."""
    settings = load_settings()
    catalog = open_catalog(settings.catalog_url)
    now = datetime.now(UTC)
    try:
        linked = link_task(catalog, settings, now)
        findings = evaluate_task(catalog, settings, now)
        silent = silent_stations_task(catalog, settings, now)
        sealed = []
        if settings.cases.auto_seal:
            for f in findings:
                if f.case.status is CaseStatus.CONCLUDED and f.complete:
                    seal_task(settings, f.case.number)
                    sealed.append(f.case.number)
        summary = summary_task(catalog, settings, now)  # after sealing: what is left to do
    finally:
        catalog.dispose()
    create_table_artifact(
        key="compliance",
        table=[
            {
                "case": f.case.number,
                "category": f.case.category,
                "state": f.state.value,
                "due": str(f.case.due or ""),
                "problems": "; ".join(f.problems()),
            }
            for f in findings
        ],
        description=f"Compliance sweep {now:%Y-%m-%d %H:%M} UTC: {len(findings)} cases",
    )
    create_table_artifact(
        key="department-summary",
        table=[
            {
                "department": d.department or "(none)",
                "due_soon": d.due_soon,
                "overdue": d.overdue,
                "coverage_failures": d.coverage_failures,
                "late_uploads": d.late_uploads,
            }
            for d in summary
        ],
        description=f"Per department {now:%Y-%m-%d %H:%M} UTC: due soon, overdue, coverage "
        f"failures (not archived), uploads later than {settings.cases.upload_limit_hours:g} h "
        "(recordings of the last 7 days)",
    )
    return {
        "cases": len(findings),
        "linked": linked,
        "sealed": sealed,
        "needing_action": sum(1 for f in findings if f.problems()),
        "silent_stations": silent,
        "departments_needing_action": [d.department for d in summary],
    }


def deployments(settings: Settings) -> list[Any]:
    """The served daily deployment."""
    try:
        return [
            compliance_sweep.to_deployment(
                name="daily",
                schedule=Cron(settings.cases.compliance_cron, timezone=settings.devices.timezone),
            )
        ]
    except ValueError as exc:
        raise ConfigError(f"invalid compliance schedule: {exc}") from exc
