"""What a person does with cases and the records filed into them, one function per action.

Each takes the :class:`~pipeline.instance.Instance` first, owns its transaction (``read()`` for
a lookup, ``begin()`` for a change) and returns a frozen dataclass, or a list of them, that
``plain()`` turns into the JSON of ``--json``. The CLI, the web pages and the API call these
and only render what they return.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pipeline.cases import bulk, compliance, seal
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.compliance import LinkedItem, Tally, UnlinkedMedia
from pipeline.cases.coverage import Coverage
from pipeline.cases.deadline import CaseState
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.custody.keys import pinned_trust
from pipeline.custody.verify_bag import Problem
from pipeline.errors import CaseError
from pipeline.instance import Instance
from pipeline.models import Case, CaseStatus, Link, RecordType, Signature, plain
from pipeline.retention import locks


def _actor(instance: Instance) -> str:
    return instance.actor or instance.settings.actor


def _today(instance: Instance) -> date:
    """The users' local date: deadlines count in days where the act took place."""
    return instance.clock().astimezone(instance.settings.zone).date()


# ------------------------------------------------------------------------------------ cases


@dataclass(frozen=True)
class RuleLink:
    """A link the linking rule made."""

    case: str
    media: int
    rule: str


@dataclass(frozen=True)
class CaseSaved:
    case: str
    action: str  # added, changed or unchanged
    linked: tuple[int, ...]  # media the linking rule then linked


def add_case(
    instance: Instance,
    number: str,
    *,
    title: str,
    category: str,
    department: str = "",
    officers: Iterable[str] = (),
    action_start: datetime | None = None,
    action_end: datetime | None = None,
) -> CaseSaved:
    """Create a case, or update the one with this number (its status, and the action times
    not given, are kept), then link the records the linking rule finds for it."""
    settings, now = instance.settings, instance.clock()
    with instance.catalog.begin() as conn:
        existing = case_rows.get(conn, number)
        case = Case(
            number,
            title,
            category,
            department,
            CaseStatus.OPEN if existing is None else existing.status,
            tuple(sorted(officers)),
            action_start=action_start or (existing.action_start if existing else None),
            action_end=action_end or (existing.action_end if existing else None),
        )
        action = cases.save_case(
            conn, case, _actor(instance), settings, load_categories(settings), now
        )
        made = cases.autolink(conn, settings, _actor(instance), now, [number])
    locks.follow_cases(instance, [number])  # its records' retention may have grown (issue 19)
    return CaseSaved(number, action, tuple(m for _, m, _ in made))


@dataclass(frozen=True)
class ImportedRecord:
    section: str  # cases, descriptions or records
    key: str  # the case number or media key
    action: str  # added, changed or unchanged


@dataclass(frozen=True)
class CaseImport:
    records: tuple[ImportedRecord, ...]
    linked: int  # links the linking rule then made


def import_cases(instance: Instance, path: Path) -> CaseImport:
    """Import cases, descriptions and text-record fields from a YAML or CSV file (see
    :mod:`pipeline.cases.bulk`), all or nothing, then link what the rule finds."""
    settings, now = instance.settings, instance.clock()
    parsed = bulk.read_file(path, settings.zone)
    with instance.catalog.begin() as conn:
        done = bulk.apply_in(
            conn, parsed, path, _actor(instance), settings, load_categories(settings), now
        )
        made = cases.autolink(conn, settings, _actor(instance), now)
    locks.follow_cases(instance, [d[1] for d in done if d[0] == "cases"] + [c for c, _, _ in made])
    return CaseImport(tuple(ImportedRecord(*d) for d in done), len(made))


@dataclass(frozen=True)
class CaseInState(Case):
    """A case and its 15-day state on the day it was listed."""

    state: CaseState = field(kw_only=True)


def list_cases(instance: Instance, state: CaseState | None = None) -> list[CaseInState]:
    """Every case (or those in ``state`` today), with its 15-day state."""
    today, soon = _today(instance), instance.settings.cases.due_soon_days
    where = None if state is None else compliance.state_clause(state, today, soon)
    with instance.catalog.read() as conn:
        found = case_rows.listing(conn, where)
    return [CaseInState(**vars(c), state=compliance.state_of(c, today, soon)) for c in found]


@dataclass(frozen=True)
class CaseDetail:
    """A case as ``cases show`` presents it."""

    case: Case
    state: CaseState
    links: tuple[Link, ...]
    coverage: Coverage | None  # of the action window, for a mandatory A/V category
    problems: tuple[str, ...]
    items: tuple[LinkedItem, ...]  # the linked records, by recording time


def case_detail(instance: Instance, number: str) -> CaseDetail:
    """A case: its 15-day state, links, coverage and what the rule still misses."""
    settings = instance.settings
    with instance.catalog.read() as conn:
        case = cases.get_case(conn, number)
        finding = compliance.evaluate(
            conn, case, settings, load_categories(settings), _today(instance)
        )
        linked = case_rows.links_of_case(conn, number)
    return CaseDetail(
        case,
        finding.state,
        tuple(linked),
        finding.coverage,
        tuple(finding.problems()),
        finding.items,
    )


def conclude_case(instance: Instance, number: str, end: datetime | None = None) -> Case:
    """The enforcement act ended (at ``end``, else as recorded): the 15-day clock starts.
    Then links what the rule finds for the case."""
    settings, now = instance.settings, instance.clock()
    with instance.catalog.begin() as conn:
        case = cases.conclude(
            conn, number, end, _actor(instance), settings, load_categories(settings), now
        )
        made = cases.autolink(conn, settings, _actor(instance), now, [number])
    locks.follow(instance, [m for _, m, _ in made])  # issue 19: locks follow retention
    return case


def autolink_cases(instance: Instance) -> list[RuleLink]:
    """Apply the linking rule to every open and concluded case."""
    with instance.catalog.begin() as conn:
        made = cases.autolink(conn, instance.settings, _actor(instance), instance.clock())
    locks.follow(instance, [m for _, m, _ in made])  # issue 19: locks follow retention
    return [RuleLink(*m) for m in made]


# ------------------------------------------------------------------------------------ links


@dataclass(frozen=True)
class Linked:
    case: str
    media_id: int
    made: bool  # False: it was linked already


def link_media(instance: Instance, number: str, media: str | int, reason: str) -> Linked:
    """Link a record (id or SHA-256 prefix) to a case by hand, with a reason."""
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, media).id
        made = cases.link(conn, number, media_id, _actor(instance), reason, instance.clock())
    locks.follow(instance, [media_id] if made else [])  # issue 19: locks follow retention
    return Linked(number, media_id, made)


@dataclass(frozen=True)
class Unlinked:
    case: str
    media_id: int


def unlink_media(instance: Instance, number: str, media: str | int, reason: str) -> Unlinked:
    """Remove a record from a case; the history is kept and the rule will not re-add it."""
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, media).id
        cases.unlink(conn, number, media_id, _actor(instance), reason, instance.clock())
    return Unlinked(number, media_id)


# ---------------------------------------------------------------------------- sealing


def archive_case(
    instance: Instance, number: str, reason: str, *, force: bool = False
) -> seal.Sealed:
    """Seal a concluded case file (归档); an incomplete one only with ``force``."""
    return seal.seal_with(
        instance.catalog,
        instance.store,
        instance.settings,
        number,
        _actor(instance),
        reason,
        force=force,
        now=instance.clock(),
    )


@dataclass(frozen=True)
class SealCheck:
    case: str
    bag: str  # the SHA-256 the store keeps the bag under
    problems: tuple[Problem, ...]  # empty: the sealed case file verifies


def verify_sealed_case(instance: Instance, number: str) -> SealCheck:
    """Check a sealed case file: its bag from the store against its digest and its SEALED
    event, its BagIt manifests, and every file of it against the signatures of the pinned
    keys (never a key found in EVIDENCE_HOME or in the bag). Damage is reported as problems;
    CaseError only when the case is not sealed."""
    with instance.catalog.read() as conn:
        case = cases.get_case(conn, number)
    if case.archive_key is None:
        raise CaseError(number, "is not sealed")
    trust = pinned_trust(instance.settings)
    check = seal.check_sealed_bags(
        instance.catalog,
        instance.store,
        trust.keys,
        numbers=[number],
        work=instance.settings.home / "work",
    )
    return SealCheck(number, case.archive_key, (*trust.problems, *check.problems))


# ----------------------------------------------------------------------------- compliance


@dataclass(frozen=True)
class CaseCompliance:
    number: str
    state: CaseState
    problems: tuple[str, ...]


@dataclass(frozen=True)
class ComplianceReport:
    today: date
    departments: dict[str, Tally]
    officers: dict[str, Tally]
    devices: dict[str, Tally]
    cases: tuple[CaseCompliance, ...]
    # The dashboard's figures in all for the report's days ("from", "to": local dates):
    # upload timeliness, link rate, coverage… (pipeline.supervision).
    figures: dict[str, Any] = field(default_factory=dict)


def compliance_report(
    instance: Instance,
    department: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ComplianceReport:
    """Per department, officer and device, for acts ending in [since, until): cases
    concluded, archived on time or late, overdue now, coverage failures, recordings without
    description, unlinked media; and each case's problems."""
    settings, today = instance.settings, _today(instance)
    with instance.catalog.read() as conn:
        findings = compliance.evaluate_all(
            conn,
            settings,
            load_categories(settings),
            today,
            compliance.period_clause(department, since, until),
        )
        unlinked = compliance.unlinked_media(conn, since, until, department)
    report = report_of(compliance.report(findings, unlinked, today), department)
    # Imported here: the supervision figures build on this package (cases, coverage).
    from pipeline.supervision.usecases import days_of, period_figures

    start, end = days_of(instance, since, until)
    found = plain(period_figures(instance, department, start, end))
    return replace(report, figures={"from": start.isoformat(), "to": end.isoformat(), **found})


def report_of(rep: compliance.Report, department: str | None = None) -> ComplianceReport:
    """The report as interfaces show it; for one ``department``, without the line of cases
    that have none."""
    departments = rep.departments
    if department:
        departments = {k: v for k, v in departments.items() if k != "(none)"}
    return ComplianceReport(
        rep.today,
        departments,
        rep.officers,
        rep.devices,
        tuple(CaseCompliance(f.case.number, f.state, tuple(f.problems())) for f in rep.findings),
    )


# ------------------------------------------------------------------------- record fields


@dataclass(frozen=True)
class Described:
    media_id: int
    description: str


def describe_media(instance: Instance, media: str | int, text: str) -> Described:
    """Set the written description (文字说明) of a recording (id or SHA-256 prefix)."""
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, media).id
        cases.describe(conn, media_id, text, _actor(instance), instance.clock())
    return Described(media_id, text.strip())


@dataclass(frozen=True)
class TextRecord:
    media_id: int
    record_type: RecordType
    signature: Signature


def set_text_record(
    instance: Instance, media: str | int, record_type: RecordType, signature: Signature
) -> TextRecord:
    """Mark a document as a text record (笔录): its type, signed or the refusal noted."""
    with instance.catalog.begin() as conn:
        media_id = media_db.get(conn, media).id
        cases.set_record(conn, media_id, record_type, signature, _actor(instance), instance.clock())
    return TextRecord(media_id, record_type, signature)


def list_unlinked(instance: Instance) -> list[UnlinkedMedia]:
    """Archived recordings in no case, for an archivist to review."""
    with instance.catalog.read() as conn:
        return compliance.unlinked_media(conn)
