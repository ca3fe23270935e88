"""Retention rules (config/retention.toml) and each record's derived retention, on a real
catalog with an injected clock: unlinked footage kept 6 calendar months from the end of its
recording, linking to a case of a permanent category, the longest rule winning with every
reason listed, the invalid class shortening only what nothing else keeps, important-file marks
found at ingest (file name, metadata) and set by a person, the candidates of disposal, and
`evidence media mark` / `media show --json` through the real CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import usecases as case_usecases
from pipeline.catalog import Catalog
from pipeline.catalog import media as media_db
from pipeline.custody import log as custody
from pipeline.custody.replay import check_records
from pipeline.errors import ConfigError, RetentionError
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import (
    EventKind,
    Identification,
    IdSource,
    MediaKind,
    MediaStatus,
    ProbeResult,
    SourceFile,
    Station,
)
from pipeline.retention import usecases as retention
from pipeline.retention.derive import candidates
from pipeline.retention.rules import Period, add_months, rules_of
from pipeline.settings import Settings
from tests import test_approvals
from tests.conftest import RECORDED, make_settings, put
from tests.test_approvals import Cli

cli = test_approvals.cli  # `evidence …` through its real entry point, in this process

SH = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
_n = itertools.count(1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def record(
    conn: Connection,
    station: Station,
    *,
    end: datetime | None = END,
    kind: MediaKind = MediaKind.VIDEO,
    officer: str | None = None,
) -> int:
    """A catalogued recording that ended at ``end`` (what the rules read)."""
    n = next(_n)
    source = SourceFile(station.id, station.root / f"r{n}.mp4", 10, n)
    start = None if end is None else end - timedelta(minutes=10)
    ident = Identification("BWC0017", {}, start, end, IdSource.METADATA, officer)
    return media_db.insert(
        conn,
        sha256=hashlib.sha256(f"retention {n}".encode()).hexdigest(),
        size=10,
        source=source,
        probe=ProbeResult(kind),
        ident=ident,
        status=MediaStatus.ARCHIVED,
        now=END + timedelta(hours=2),
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(END + timedelta(days=1))


@pytest.fixture
def instance(settings: Settings, catalog: Catalog, clock: Clock) -> Instance:
    return Instance(settings, catalog, clock=clock, actor="A001")


def case(instance: Instance, number: str, category: str) -> None:
    case_usecases.add_case(instance, number, title=f"案件 {number}", category=category)


# ------------------------------------------------------------------------------ periods


def test_months_count_by_the_calendar_and_end_on_the_last_day_of_a_short_month() -> None:
    assert add_months(datetime(2026, 8, 31, 10, tzinfo=SH), 6) == datetime(
        2027, 2, 28, 10, tzinfo=SH
    )
    assert add_months(datetime(2027, 8, 31, tzinfo=SH), 6) == datetime(2028, 2, 29, tzinfo=SH)
    assert add_months(datetime(2026, 11, 5, tzinfo=SH), 14) == datetime(2028, 1, 5, tzinfo=SH)
    # Months count in local time: 2026-05-31 20:00 UTC is already June 1st in Shanghai.
    late = datetime(2026, 5, 31, 20, tzinfo=UTC)
    assert Period(months=1).until(late, SH) == datetime(2026, 6, 30, 20, tzinfo=UTC)
    assert Period(days=7).until(late, SH) == late + timedelta(days=7)
    assert Period(permanent=True).until(late, SH) is None
    assert Period(case=True).until(late, SH) is None


def test_the_shipped_rules_keep_the_categories_classes_and_add_their_own(
    settings: Settings,
) -> None:
    rules = rules_of(settings)
    assert rules.own_class("video").said() == "未关联案件的记录 6 个月 (unlinked footage, 6 months)"
    assert rules.own_class("document").id == "long"  # [kinds]
    assert rules.category_class("seizure").period.permanent  # categories.toml: permanent (0)
    assert rules.category_class("on-site-inspection").period == Period(days=3650)
    assert rules.category_class("service-of-documents").period == Period(days=183)
    assert rules.of(rules.invalid).period == Period(days=7)
    assert rules.of(rules.marked).period == Period(months=36)
    assert rules_of(settings) is rules  # read once while the file is unchanged


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("unlinked = 'nope'\n", "not a retention class"),
        ("[class.x]\nname_zh = 'x'\n", "exactly one of days, months, permanent, case"),
        ("[class.x]\ndays = 0\n", "whole number"),
        ("[class.x]\ndays = 3\nyears = 1\n", "unknown key"),
        ("[kinds]\nhologram = 'long'\n", "unknown kinds"),
        ("[categories]\nparking = 'long'\n", "unknown categories"),
        ("marked = 'case'\n[class.case]\ncase = true\n", "for categories only"),
        ("[marks]\nfilename_patterns = ['(']\n", "filename_patterns"),
        ("colour = 'red'\n", "unknown table or key"),
        ("[class.x\n", "cannot read"),
    ],
)
def test_a_broken_rules_file_is_refused_naming_it(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "retention.toml"
    base = "[class.unlinked]\nmonths = 6\n[class.marked]\nmonths = 36\n[class.invalid]\ndays = 7\n"
    path.write_text(text + "\n" + base, encoding="utf-8")
    local = make_settings(tmp_path / "home", retention={"rules_file": str(path)})
    with pytest.raises(ConfigError, match=says) as refused:
        rules_of(local)
    assert str(path) in str(refused.value)


def test_a_category_may_keep_its_records_as_long_as_the_case_file(
    tmp_path: Path, settings: Settings, catalog: Catalog, station: Station, clock: Clock
) -> None:
    shipped = (Path(__file__).parent.parent / "config" / "retention.toml").read_text("utf-8")
    path = tmp_path / "retention.toml"
    path.write_text(shipped.replace('# seizure = "case"', 'hearing = "case"'), encoding="utf-8")
    local = make_settings(settings.home, retention={"rules_file": str(path)})
    instance = Instance(local, catalog, clock=clock, actor="A001")
    with catalog.begin() as conn:
        item = record(conn, station)
    case(instance, "2026-0200", "hearing")
    case_usecases.link_media(instance, "2026-0200", item, "听证录像")
    kept = retention.retention(instance, item)
    assert kept.until is None
    assert kept.reasons[0].startswith("永久：案件 2026-0200（听证）的证据")


# --------------------------------------------------------------------------- derivation


def test_unlinked_footage_is_kept_six_months_from_the_end_of_its_recording(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station)
        no_times = record(conn, station, end=None)
    kept = retention.retention(instance, item)
    assert kept.until == datetime(2026, 11, 5, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai, 6 months on
    assert kept.reasons == ("未关联案件的记录 6 个月 (unlinked footage, 6 months)",)
    assert not kept.held
    assert kept.said(SH).startswith("保存至 2026-11-05（本地时间）因为：未关联案件的记录 6 个月")
    # Nothing recorded of its times: counted from its ingest.
    ingested = END + timedelta(hours=2)
    assert retention.retention(instance, no_times).until == add_months(
        ingested.astimezone(SH), 6
    ).astimezone(UTC)

    rules = rules_of(instance.settings)
    with catalog.read() as conn:
        due = kept.until
        assert due is not None
        assert not kept.disposable(due - timedelta(seconds=1)) and kept.disposable(due)
        assert [r.media_id for r in candidates(conn, rules, due - timedelta(seconds=1))] == []
        assert [r.media_id for r in candidates(conn, rules, due)] == [item]
        found = candidates(conn, rules, due + timedelta(days=1))
        assert [r.media_id for r in found] == [item, no_times]  # oldest first


def test_linking_to_a_case_of_a_permanent_category_makes_it_permanent_while_linked(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station)
    case(instance, "2026-0113", "seizure")
    assert case_usecases.link_media(instance, "2026-0113", item, "查封现场录像").made
    kept = retention.retention(instance, item)
    assert kept.until is None and kept.permanent
    assert kept.reasons[0] == (
        "永久：案件 2026-0113（查封扣押）的证据 (permanent: evidence in case 2026-0113)"
    )
    assert kept.said(SH).startswith("永久保存：永久：案件 2026-0113")
    rules = rules_of(instance.settings)
    with catalog.read() as conn:
        assert candidates(conn, rules, END + timedelta(days=3650)) == []
    case_usecases.unlink_media(instance, "2026-0113", item, "误关联")
    assert retention.retention(instance, item).until == datetime(2026, 11, 5, 9, tzinfo=UTC)


def test_the_longest_rule_wins_and_every_reason_is_listed(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station)
    case(instance, "2026-0120", "on-site-inspection")  # long: 3650 days
    case(instance, "2026-0121", "service-of-documents")  # standard: 183 days
    case_usecases.link_media(instance, "2026-0120", item, "检查录像")
    case_usecases.link_media(instance, "2026-0121", item, "送达录像")
    marked = retention.mark_media(instance, item, "执法人员按键标记")
    assert marked.changed
    kept = marked.retention
    assert kept.until == END + timedelta(days=3650)
    assert kept.reasons == (
        "案件 2026-0120（现场检查）的证据 3650 天 (evidence in case 2026-0120, 3650 days)",
        "重点文件 36 个月 (important file, 36 months)：人工标记 A001",
        "未关联案件的记录 6 个月 (unlinked footage, 6 months)",
        "案件 2026-0121（文书送达）的证据 183 天 (evidence in case 2026-0121, 183 days)",
    )
    # The mark alone outlasts the standard case.
    case_usecases.unlink_media(instance, "2026-0120", item, "误关联")
    assert retention.retention(instance, item).until == datetime(2029, 5, 5, 9, tzinfo=UTC)
    assert not retention.mark_media(instance, item, "再次标记").changed  # marked already
    cleared = retention.mark_media(instance, item, "误按", clear=True)
    # The record's own six calendar months (184 days here) outlast the standard 183 days.
    assert cleared.changed and cleared.retention.until == datetime(2026, 11, 5, 9, tzinfo=UTC)
    assert cleared.retention.reasons[0].startswith("未关联案件的记录")
    with catalog.read() as conn:
        events = [e for e in custody.events(conn, media_id=item) if e.kind is EventKind.MARKED]
    assert [(e.details["mark"], e.details["reason"]) for e in events] == [
        ("set", "执法人员按键标记"),
        ("cleared", "误按"),
    ]


def test_the_invalid_class_shortens_an_unlinked_item_and_never_a_linked_or_marked_one(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        blank, linked, marked = (record(conn, station) for _ in range(3))
    for item in (blank, linked, marked):
        done = retention.assign_class(instance, item, "invalid", "误触录制，黑屏")
        assert done.changed
    assert retention.retention(instance, blank).until == END + timedelta(days=7)
    assert retention.retention(instance, blank).reasons == (
        "无效数据 7 天 (invalid recording, 7 days)：A001 指定，误触录制，黑屏",
    )
    case(instance, "2026-0113", "seizure")
    case_usecases.link_media(instance, "2026-0113", linked, "查封现场录像")
    kept = retention.retention(instance, linked)
    assert kept.until is None
    assert "不因“无效数据”缩短" in kept.reasons[-1]
    retention.mark_media(instance, marked, "重点")
    assert retention.retention(instance, marked).until == datetime(2029, 5, 5, 9, tzinfo=UTC)

    rules = rules_of(instance.settings)
    with catalog.read() as conn:
        due = [r.media_id for r in candidates(conn, rules, END + timedelta(days=8))]
    assert due == [blank]
    # Another class a person assigns counts like the others: the longest wins.
    assert retention.assign_class(instance, blank, "long", "复核后保留").changed
    assert retention.retention(instance, blank).until == END + timedelta(days=3650)
    assert retention.assign_class(instance, blank, None, "撤销").changed
    assert retention.retention(instance, blank).until == datetime(2026, 11, 5, 9, tzinfo=UTC)
    with pytest.raises(RetentionError, match="无此保存类别"):
        retention.assign_class(instance, blank, "case", "随案")
    with pytest.raises(RetentionError, match="须说明理由"):
        retention.assign_class(instance, blank, "invalid", " ")


def test_candidates_leave_out_what_is_not_archived_and_come_oldest_first(
    instance: Instance, catalog: Catalog, station: Station
) -> None:
    with catalog.begin() as conn:
        later = record(conn, station, end=END + timedelta(days=10))
        first = record(conn, station)
        quarantined = record(conn, station)
        media_db.set_quarantined(conn, quarantined, "truncated")
    rules = rules_of(instance.settings)
    now = END + timedelta(days=400)
    with catalog.read() as conn:
        assert [r.media_id for r in candidates(conn, rules, now)] == [first, later]
        assert [r.media_id for r in candidates(conn, rules, now, limit=1)] == [first]


# ----------------------------------------------------------------------------- marks


@pytest.fixture
def marked_clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("marked")
    return {
        "comment": synth.make_video(
            d / "c.mp4", seconds=0.5, creation_time=RECORDED, tags={"comment": "重点 现场"}
        ),
        "impact": synth.make_video(
            d / "i.mp4",
            seconds=0.5,
            width=160,
            height=120,
            creation_time=RECORDED,
            tags={"comment": "IMPACT test"},
        ),
    }


def test_a_mark_in_the_file_name_or_its_metadata_is_found_at_ingest(
    ctx: IngestContext,
    catalog: Catalog,
    settings: Settings,
    station: Station,
    clips: dict[str, Path],
    marked_clips: dict[str, Path],
) -> None:
    put(clips["video"], station.root, "BWC0017/BWC0017_1023_20260505083000_0001_IMP.mp4")
    put(clips["photo"], station.root, "BWC0017/IMG_0001_I.jpg")
    put(clips["audio"], station.root, "BWC0017/rec 0001.m4a")
    put(marked_clips["comment"], station.root, "BWC0017/plain.mp4")
    put(marked_clips["impact"], station.root, "BWC0017/other.mp4")
    assert sweep_station(ctx, station).ok
    instance = Instance(settings, catalog, clock=lambda: END + timedelta(days=1))
    with catalog.read() as conn:
        by_name = {m.original_name: m for m in media_db.listing(conn)}
    said = {name: retention.retention(instance, m.id).reasons[0] for name, m in by_name.items()}
    assert said["BWC0017_1023_20260505083000_0001_IMP.mp4"].startswith(
        "重点文件 36 个月 (important file, 36 months)：文件名标记 (^|_)IMP(_|\\.)"
    )
    assert said["IMG_0001_I.jpg"].startswith("重点文件 36 个月")
    assert (
        said["plain.mp4"]
        == "重点文件 36 个月 (important file, 36 months)：元数据标记 comment: 重点"
    )
    assert (
        said["rec 0001.m4a"]
        == said["other.mp4"]
        == ("未关联案件的记录 6 个月 (unlinked footage, 6 months)")
    )
    marked = by_name["BWC0017_1023_20260505083000_0001_IMP.mp4"]
    with catalog.read() as conn:
        events = list(custody.events(conn, media_id=marked.id))
    kinds = [e.kind for e in events]
    assert kinds.index(EventKind.INGESTED) < kinds.index(EventKind.MARKED)
    (event,) = [e for e in events if e.kind is EventKind.MARKED]
    assert event.details == {"mark": "set", "source": "filename", "matched": "(^|_)IMP(_|\\.)"}
    # The INGESTED events still replay to the rows they wrote.
    assert check_records(catalog).problems == ()


# --------------------------------------------------------------------------------- CLI


def test_media_mark_and_show_through_the_cli(
    cli: Cli, catalog: Catalog, settings: Settings, station: Station
) -> None:
    with catalog.begin() as conn:
        item = record(conn, station)
    code, out, err = cli("media", "mark", str(item), "--reason", "按键标记", "--as", "A001")
    assert code == 0, err
    assert "重点文件" in out
    code, out, err = cli("media", "show", str(item), "--reason", "复核", "--as", "A001", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["retention"]["until"] == "2029-05-05T09:00:00+00:00"
    assert shown["retention"]["reasons"][0].startswith("重点文件 36 个月")
    assert shown["retention"]["held"] is False
    code, out, err = cli("media", "show", str(item), "--reason", "复核", "--as", "A001")
    assert code == 0, err
    assert "保存至 2029-05-05（本地时间）因为：重点文件 36 个月" in out
    code, out, err = cli(
        "media", "mark", str(item), "--class", "invalid", "--reason", "误录", "--as", "A001"
    )
    assert code == 0, err
    assert "不因“无效数据”缩短" in out
    code, out, err = cli("media", "mark", str(item), "--clear", "--reason", "x", "--as", "A001")
    assert code == 2 and "须说明理由" in err and "Traceback" not in err
    code, out, err = cli(
        "media", "mark", str(item), "--clear", "--reason", "误按", "--as", "A001", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["retention"]["until"] == "2026-05-12T09:00:00+00:00"  # invalid: 7 d
