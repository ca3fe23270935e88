"""Cases: linking by rule and by hand, coverage of mandatory categories, the 15-day state in
SQL and in Python, the compliance report, and bulk import."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, select

from pipeline.cases import bulk as case_io
from pipeline.cases import compliance
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.coverage import coverage
from pipeline.cases.deadline import CaseState
from pipeline.catalog import Catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import cases as cases_table
from pipeline.custody import log as custody
from pipeline.errors import CaseError, ConfigError
from pipeline.models import (
    Case,
    CaseStatus,
    EventKind,
    Identification,
    IdSource,
    MediaKind,
    MediaStatus,
    Officer,
    ProbeResult,
    RecordType,
    Signature,
    SourceFile,
    Station,
)
from pipeline.registry import records as registry
from pipeline.settings import Settings
from tests.conftest import make_settings

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
M = timedelta(minutes=1)
_n = itertools.count(1)


def record(
    conn: Connection,
    station: Station,
    officer: str | None,
    start: datetime,
    end: datetime,
    *,
    kind: MediaKind = MediaKind.VIDEO,
    name: str | None = None,
    device: str = "BWC0017",
) -> int:
    """A catalogued recording (the catalog's view is what linking and coverage read)."""
    n = next(_n)
    source = SourceFile(station.id, station.root / (name or f"r{n}.mp4"), 10, n)
    ident = Identification(device, {}, start, end, IdSource.METADATA, officer)
    return media_db.insert(
        conn,
        sha256=hashlib.sha256(str(n).encode()).hexdigest(),
        size=10,
        source=source,
        probe=ProbeResult(kind),
        ident=ident,
        status=MediaStatus.ARCHIVED,
        now=T0,
    )


@pytest.fixture
def officers(catalog: Catalog) -> None:
    with catalog.begin() as conn:
        for oid, cert in (("1023", "c1"), ("1088", "c2"), ("2000", "c3")):
            registry.save_officer(conn, Officer(oid, f"officer {oid}", cert, "市场监管"), "A001")


def seizure(number: str = "2026-0113", **kw: object) -> Case:
    base = Case(
        number,
        "查封某仓库",
        "seizure",
        "市场监管",
        CaseStatus.OPEN,
        ("1023", "1088"),
        action_start=T0,
        action_end=T0 + 60 * M,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.usefixtures("officers")
def test_linking_rule_coverage_and_descriptions(
    catalog: Catalog, settings: Settings, station: Station
) -> None:
    cats = load_categories(settings)
    with catalog.begin() as conn:
        cases.save_case(conn, seizure(), "A001", settings, cats, T0)
        a = record(conn, station, "1023", T0 - 5 * M, T0 + 30 * M)  # officer 1: the first half
        b = record(conn, station, "1088", T0 + 20 * M, T0 + 40 * M)  # officer 2 overlaps a
        other = record(conn, station, "2000", T0 + 40 * M, T0 + 60 * M)  # not on the case
        late = record(conn, station, "1023", T0 + 75 * M, T0 + 80 * M)  # within the 30 min margin
        far = record(conn, station, "1023", T0 + 200 * M, T0 + 210 * M)  # outside it
        doc = record(
            conn, station, None, T0, T0, kind=MediaKind.DOCUMENT, name="现场笔录 2026-0113.pdf"
        )
        made = cases.autolink(conn, settings, "system", T0)
        assert {(m, r.split(":")[0]) for _, m, r in made} == {
            (a, "officer-time"),
            (b, "officer-time"),
            (late, "officer-time"),
            (doc, "case-number-in-name"),
        }
        assert cases.autolink(conn, settings, "system", T0) == [], "linking twice adds nothing"
        finding = compliance.evaluate(
            conn, cases.get_case(conn, "2026-0113"), settings, cats, T0.date()
        )

    cov = finding.coverage
    assert cov is not None and cov.recordings == 2, (
        "the late one lies in the margin, not the window"
    )
    # a ∪ b cover 0–40 min; the officer not on the case does not count: 40–60 min is a gap.
    assert [(g.start, g.end) for g in cov.gaps] == [(T0 + 40 * M, T0 + 60 * M)]
    assert finding.coverage_failed and not finding.complete
    assert set(finding.undescribed) == {a, b, late}
    assert any("coverage gap" in p for p in finding.problems())
    assert far not in {m for _, m, _ in made} and other not in {m for _, m, _ in made}

    with catalog.begin() as conn:
        for m in (a, b, late):
            cases.describe(conn, m, "现场查封过程，执法人员出示证件", "1023", T0)
        cases.link(
            conn, "2026-0113", other, "A001", "the third officer's recording covers the gap", T0
        )
        finding = compliance.evaluate(
            conn, cases.get_case(conn, "2026-0113"), settings, cats, T0.date()
        )
    assert (
        finding.coverage is not None
        and finding.coverage.gaps == ()
        and finding.undescribed == (other,)
    )


@pytest.mark.usefixtures("officers")
def test_a_link_removed_by_hand_is_not_put_back_by_the_rule(
    catalog: Catalog, settings: Settings, station: Station
) -> None:
    cats = load_categories(settings)
    with catalog.begin() as conn:
        cases.save_case(conn, seizure(), "A001", settings, cats, T0)
        m = record(conn, station, "1023", T0, T0 + 10 * M)
        cases.autolink(conn, settings, "system", T0)
        with pytest.raises(CaseError, match="needs a reason"):
            cases.unlink(conn, "2026-0113", m, "A001", " ", T0)
        cases.unlink(conn, "2026-0113", m, "A001", "a private conversation, not the act", T0)
        assert cases.autolink(conn, settings, "system", T0) == []
        assert case_rows.links_of_case(conn, "2026-0113") == []
        kinds = [e.kind for e in custody.events(conn, media_id=m)]
    assert kinds == [EventKind.LINKED, EventKind.UNLINKED]


@pytest.mark.usefixtures("officers")
def test_case_validation(catalog: Catalog, settings: Settings) -> None:
    cats = load_categories(settings)
    with catalog.begin() as conn:
        with pytest.raises(ConfigError, match="unknown category 'parking'"):
            cases.save_case(conn, seizure(category="parking"), "A001", settings, cats, T0)
        with pytest.raises(CaseError, match="officer 9999 is not registered"):
            cases.save_case(conn, seizure(officers=("9999",)), "A001", settings, cats, T0)
        with pytest.raises(CaseError, match="ends before it starts"):
            cases.save_case(conn, seizure(action_end=T0 - M), "A001", settings, cats, T0)
        assert cases.save_case(conn, seizure(), "A001", settings, cats, T0) == "added"
        assert cases.save_case(conn, seizure(), "A001", settings, cats, T0) == "unchanged"
        concluded = cases.conclude(conn, "2026-0113", None, "A001", settings, cats, T0)
    # 27 Nov + 15 days is Saturday 12 Dec: a last day on a rest day moves to the next working
    # day (民法典 art. 203), Monday 14 Dec.
    assert concluded.status is CaseStatus.CONCLUDED and concluded.due == date(2026, 12, 14)


def test_coverage_of_nothing_and_of_everything() -> None:
    empty = coverage(T0, T0 + 60 * M, [], 60)
    assert empty.recordings == 0 and not empty.complete and empty.gaps[0].seconds == 3600
    full = coverage(
        T0,
        T0 + 60 * M,
        [(T0 - M, T0 + 30 * M), (T0 + 30 * M + timedelta(seconds=30), T0 + 61 * M)],
        60,
    )
    assert full.complete and full.gaps == (), "a 30 s hand-over pause is within tolerance"


# Dates around National Day and Spring Festival (with their make-up working days) and
# month and year ends, in both counting modes: the SQL filter and the Python rule must agree.
END_DATES = [
    date(2026, 1, 31),
    date(2026, 2, 10),
    date(2026, 2, 20),
    date(2026, 9, 25),
    date(2026, 9, 30),
    date(2026, 10, 1),
    date(2026, 10, 9),
    date(2026, 12, 20),
    date(2026, 12, 31),
    date(2025, 12, 25),
]
TODAYS = [
    date(2026, 2, 14),
    date(2026, 3, 1),
    date(2026, 10, 12),
    date(2026, 10, 16),
    date(2026, 10, 25),
    date(2027, 1, 8),
]


@pytest.mark.parametrize("mode", ["calendar", "working"])
def test_sql_filter_and_python_predicate_agree(catalog: Catalog, tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path / "h", cases={"deadline_mode": mode})
    with catalog.begin() as conn:
        for i, (end, archived_after) in enumerate(
            itertools.product(END_DATES, (None, 5, 15, 16, 40))
        ):
            ended = datetime(end.year, end.month, end.day, 17, 0, tzinfo=SH)
            due, provisional = cases.due_of(settings, ended)
            archived_on = None if archived_after is None else end + timedelta(days=archived_after)
            case = Case(
                f"C{i:03d}",
                "t",
                "on-site-inspection",
                "d",
                CaseStatus.CONCLUDED,
                (),
                action_start=ended - timedelta(hours=2),
                action_end=ended,
                due=due,
                due_provisional=provisional,
                archived_on=archived_on,
            )
            case_rows.save(conn, case, T0)
        case_rows.save(conn, Case("OPEN", "t", "hearing", "d", CaseStatus.OPEN, ()), T0)
        everything = case_rows.listing(conn)
        for today in TODAYS:
            for state in CaseState:
                in_sql = {
                    r[0]
                    for r in conn.execute(
                        select(cases_table.c.number).where(compliance.state_clause(state, today, 3))
                    )
                }
                in_python = {
                    c.number for c in everything if compliance.state_of(c, today, 3) is state
                }
                assert in_sql == in_python, (mode, today, state)
    provisional_ones = [c for c in everything if c.due_provisional]
    if mode == "working":
        assert provisional_ones, "December 2026 ends reach into 2027, which the calendar lacks"
        assert {c.due.year for c in provisional_ones if c.due} == {2027}


@pytest.mark.usefixtures("officers")
def test_compliance_report_tallies_by_department_officer_and_device(
    catalog: Catalog, settings: Settings, station: Station
) -> None:
    cats = load_categories(settings)
    today = date(2026, 12, 20)
    with catalog.begin() as conn:
        cases.save_case(conn, seizure("A", status=CaseStatus.CONCLUDED), "A001", settings, cats, T0)
        record(conn, station, "1023", T0, T0 + 60 * M)  # full coverage, not described
        cases.save_case(
            conn,
            seizure(
                "B",
                title="拆除违建",
                category="forced-demolition",
                officers=("2000",),
                department="城管",
                status=CaseStatus.CONCLUDED,
            ),
            "A001",
            settings,
            cats,
            T0,
        )
        record(conn, station, "1088", T0 + 600 * M, T0 + 605 * M, device="BWC0022")  # unlinked
        cases.autolink(conn, settings, "system", T0)
        findings = compliance.evaluate_all(conn, settings, cats, today)
        rep = compliance.report(findings, compliance.unlinked_media(conn), today)
    assert (
        rep.departments["市场监管"].overdue_now == 1
        and rep.departments["市场监管"].without_description == 1
    )
    assert rep.departments["城管"].coverage_failures == 1, (
        "forced demolition with no recording at all"
    )
    assert rep.officers["1023"].cases_concluded == 1 and rep.officers["1088"].unlinked_media == 1
    assert (
        rep.devices["BWC0017"].without_description == 1
        and rep.devices["BWC0022"].unlinked_media == 1
    )


@pytest.mark.usefixtures("officers")
def test_import_cases_descriptions_and_records(
    catalog: Catalog, settings: Settings, station: Station, tmp_path: Path
) -> None:
    cats = load_categories(settings)
    with catalog.begin() as conn:
        m = record(conn, station, "1023", T0, T0 + M)
        doc = record(conn, station, None, T0, T0, kind=MediaKind.DOCUMENT)
        sha = media_db.get(conn, m).sha256
        doc_sha = media_db.get(conn, doc).sha256
    path = tmp_path / "cases.yaml"
    path.write_text(
        "cases:\n"
        "  - {number: 2026-0200, title: 现场检查, category: on-site-inspection, officers: ['1023'],\n"
        "     start: 2026-11-27T09:00, end: 2026-11-27T10:00, status: concluded}\n"
        f"descriptions:\n  - {{media: {sha}, text: 出示执法证件后开始检查}}\n"
        f"records:\n  - {{media: {doc_sha}, type: on-site, signature: refusal-noted}}\n",
        encoding="utf-8",
    )
    first = case_io.apply(catalog, case_io.read_file(path, SH), path, "A001", settings, cats, T0)
    assert [a for _, _, a in first] == ["added", "changed", "changed"]
    again = case_io.apply(catalog, case_io.read_file(path, SH), path, "A001", settings, cats, T0)
    assert [a for _, _, a in again] == ["unchanged"] * 3
    with catalog.begin() as conn:
        item, d = media_db.get(conn, m), media_db.get(conn, doc)
    assert item.description == "出示执法证件后开始检查" and item.described_by == "A001"
    assert (d.record_type, d.signature) == (RecordType.ON_SITE.value, Signature.REFUSAL_NOTED.value)

    bad = tmp_path / "bad.csv"
    bad.write_text("number,title,category,start\nX1,t,seizure,tomorrow\n", encoding="utf-8")
    with pytest.raises(CaseError, match=r"bad\.csv:2: cases: start 'tomorrow' is not a date-time"):
        case_io.read_file(bad, SH)
    refused = tmp_path / "refused.yaml"
    refused.write_text("cases:\n  - {number: X, title: t, category: nope}\n", encoding="utf-8")
    with pytest.raises(CaseError, match=r"refused\.yaml:2: cases: unknown category 'nope'"):
        case_io.apply(catalog, case_io.read_file(refused, SH), refused, "A001", settings, cats, T0)
