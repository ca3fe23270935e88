"""The cases use cases: the CLI prints exactly what they return, and they work called directly
with an Instance on a real archive (SQLite, a local folder, three ingested items)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.cases import usecases
from pipeline.cases.deadline import CaseState
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.errors import CaseError
from pipeline.instance import Instance
from pipeline.models import CaseStatus, EventKind, RecordType, Signature, plain
from tests.custody_helpers import Archive, copy_archive, template

#: When the enforcement act ended: yesterday, so that the case is due in the future.
ENDED = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _instance(archive: Archive, actor: str | None = "A001") -> Instance:
    return Instance(archive.settings, archive.catalog, actor=actor, _store=archive.store)


def _inspection(archive: Archive, number: str = "2026-0113") -> Instance:
    """A case of a category without mandatory A/V, the video and the record linked by hand."""
    instance = _instance(archive)
    usecases.add_case(
        instance,
        number,
        title="现场检查 某仓库",
        category="on-site-inspection",
        department="一中队",
        action_start=ENDED - timedelta(hours=1),
        action_end=ENDED,
    )
    for name in ("video", "pdf"):
        usecases.link_media(instance, number, archive.items[name].sha256[:12], "同一现场")
    return instance


def _cli_json(archive: Archive, *args: str) -> object:
    result = archive.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cases_show_json_is_exactly_the_plain_case_detail(archive: Archive) -> None:
    instance = _inspection(archive)
    shown = _cli_json(archive, "cases", "show", "2026-0113")
    assert shown == plain(usecases.case_detail(instance, "2026-0113"))
    assert shown["state"] == "open" and len(shown["links"]) == 2  # type: ignore[index]
    video = archive.items["video"].id
    assert shown["problems"] == [f"1 recording(s) without description: [{video}]"]  # type: ignore[index]


def test_the_other_readings_print_their_use_case_too(archive: Archive) -> None:
    instance = _inspection(archive)
    assert _cli_json(archive, "cases", "list") == plain(usecases.list_cases(instance))
    assert _cli_json(archive, "media", "unlinked") == plain(usecases.list_unlinked(instance))
    report = _cli_json(archive, "compliance", "report", "--department", "一中队")
    assert report == plain(usecases.compliance_report(instance, "一中队"))
    unlinked = [item.id for item in usecases.list_unlinked(instance)]
    assert unlinked == [archive.items["photo"].id], "the photo is in no case"


def test_adding_a_case_again_merges_it_with_the_one_there(archive: Archive) -> None:
    instance = _inspection(archive)
    concluded = usecases.conclude_case(instance, "2026-0113")
    assert concluded.status is CaseStatus.CONCLUDED and concluded.due is not None

    again = usecases.add_case(
        instance, "2026-0113", title="现场检查 某仓库（更正）", category="on-site-inspection"
    )
    assert again == usecases.CaseSaved("2026-0113", "changed", ())
    case = usecases.case_detail(instance, "2026-0113").case
    assert case.title == "现场检查 某仓库（更正）"
    assert case.status is CaseStatus.CONCLUDED, "the status is kept"
    assert (case.action_start, case.action_end) == (ENDED - timedelta(hours=1), ENDED)
    assert [c.number for c in usecases.list_cases(instance, CaseState.OPEN)] == ["2026-0113"]


def test_record_fields_links_and_the_sealed_file_by_media_key(archive: Archive) -> None:
    instance = _inspection(archive)
    video, pdf, photo = (archive.items[n] for n in ("video", "pdf", "photo"))
    assert usecases.link_media(instance, "2026-0113", str(pdf.id), "again") == usecases.Linked(
        "2026-0113", pdf.id, made=False
    )
    usecases.link_media(instance, "2026-0113", photo.sha256[:10], "wrong case")
    assert usecases.unlink_media(
        instance, "2026-0113", str(photo.id), "another matter"
    ) == usecases.Unlinked("2026-0113", photo.id)

    described = usecases.describe_media(instance, video.sha256[:10], "  检查现场，当事人在场 ")
    assert described == usecases.Described(video.id, "检查现场，当事人在场")
    record = usecases.set_text_record(
        instance, pdf.sha256[:10], RecordType.ON_SITE, Signature.REFUSAL_NOTED
    )
    assert record == usecases.TextRecord(pdf.id, RecordType.ON_SITE, Signature.REFUSAL_NOTED)
    with archive.catalog.read() as conn:
        assert media_db.get(conn, video.id).description == "检查现场，当事人在场"
        described_by = [
            e.actor
            for e in custody.events(conn, media_id=video.id)
            if e.kind is EventKind.DESCRIBED
        ]
    assert described_by == ["A001"], "the instance's actor is who acted"

    with pytest.raises(CaseError, match="case 2026-0113: is not sealed"):
        usecases.verify_sealed_case(instance, "2026-0113")
    usecases.conclude_case(instance, "2026-0113")
    assert usecases.case_detail(instance, "2026-0113").problems == ()
    sealed = usecases.archive_case(instance, "2026-0113", "case file complete")
    assert (sealed.items, sealed.state) == (2, CaseState.ARCHIVED_ON_TIME)
    check = usecases.verify_sealed_case(instance, "2026-0113")
    assert check == usecases.SealCheck("2026-0113", sealed.key, ())
    assert _cli_json(archive, "cases", "verify", "2026-0113") == plain(check)


def test_lookups_do_not_wait_for_a_writer(archive: Archive) -> None:
    """`cases show`, `media unlinked` and `compliance report` took SQLite's write lock and
    queued behind an ingest; they read now."""
    instance = _inspection(archive)
    with archive.catalog.begin() as writer:
        # The write lock is held from here on: a lookup that asked for it would wait, then
        # fail with "database is locked"; one that reads goes on beside the writer (WAL).
        custody.append(writer, EventKind.VIEWED, "clerk")
        assert usecases.case_detail(instance, "2026-0113").case.number == "2026-0113"
        assert usecases.list_cases(instance)
        usecases.list_unlinked(instance)
        usecases.compliance_report(instance)


def test_a_department_report_covers_its_tree_and_no_other_units_officers(
    archive: Archive,
) -> None:
    """A supervisor's report of 一中队 holds the cases of the units below it, and the unlinked
    recordings of its own officers only: never another unit's officers and their counts."""
    from sqlalchemy import update

    from pipeline.catalog import registry as registry_rows
    from pipeline.catalog.schema import media
    from pipeline.models import Officer

    instance = _inspection(archive)
    for number, department in (("2026-0114", "一中队/一组"), ("2026-0115", "二中队")):
        usecases.add_case(
            instance, number, title="检查", category="on-site-inspection", department=department,
            action_start=ENDED - timedelta(hours=1), action_end=ENDED,
        )  # fmt: skip
    with archive.catalog.begin() as conn:
        registry_rows.save_officer(conn, Officer("2046", "王五", "9900", "二中队"), ENDED)
        conn.execute(
            update(media).where(media.c.id == archive.items["photo"].id).values(officer_id="2046")
        )
    mine = usecases.compliance_report(instance, "一中队")
    assert {c.number for c in mine.cases} == {"2026-0113", "2026-0114"}
    assert "2046" not in mine.officers and "二中队" not in mine.departments
    everyone = usecases.compliance_report(instance)
    assert everyone.officers["2046"].unlinked_media == 1
