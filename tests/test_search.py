"""Search: the SQL of a query against its Python predicate on a generated catalog, on SQLite
and PostgreSQL; Chinese substrings; the search index kept current by the write paths; tags;
query plans; the `evidence search` and `evidence media tag` commands."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, text

from pipeline.accounts.permissions import ItemScope, can_view, reach
from pipeline.accounts.users import User, UserRole
from pipeline.cases import records as cases
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import accounts as account_rows
from pipeline.catalog import cases as case_rows
from pipeline.catalog.schema import cases as cases_table
from pipeline.catalog.schema import links, media, media_tags, officers, stations
from pipeline.custody import log as custody
from pipeline.errors import NotFound, TagError
from pipeline.models import EventKind, LinkMethod
from pipeline.search import run as search_module
from pipeline.search import tags
from pipeline.search.query import matches, parse
from pipeline.search.run import Sort, SortKey, search, selection, views

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)
START = datetime(2026, 4, 28, tzinfo=SH)  # recordings spread over two weeks from here

OFFICERS = [  # id, name, cert, department
    ("1023", "张伟", "62010023001", "市场监管执法大队"),
    ("1024", "李娜", "62010023002", "市场监管执法大队"),
    ("1088", "王芳", "62010023003", "交通运输执法大队"),
    ("1090", "Zhang Wei", "62010023004", "城管执法大队"),
    ("1101", "刘洋", "62010023005", "城管执法大队"),
]
UNREGISTERED = "9999"  # an officer id on media but not in the registry
CASES = [  # number, title, category, department
    ("2026-0113", "查封某仓库", "seizure", "市场监管执法大队"),
    ("2026-0114", "扣押涉案车辆", "seizure", "交通运输执法大队"),
    ("2026-0115", "强制拆除违章建筑", "demolition", "城管执法大队"),
    ("2026-0116", "Warehouse inspection 仓库检查", "inspection", "市场监管执法大队"),
    ("2026-0117", "听证会", "hearing", "法制科"),
]
PHRASES = ["执法人员表明身份", "告知事由", "依法扣押物品", "现场检查", "当事人拒绝签字",
           "查封仓库大门", "Seized goods at the warehouse", "night patrol", "100%_done"]  # fmt: skip
TAGS = ["待复核", "night", "court", "needs review"]
KINDS = ["video", "video", "audio", "photo", "document"]


def generate(conn: Connection, n: int, seed: int = 6) -> None:
    """A catalog of ``n`` media items with officers, cases, links and tags, by bulk inserts."""
    rng = random.Random(seed)
    conn.execute(stations.insert(), [
        {"id": s, "name": s, "root": f"/dock/{s}", "location": "", "created_at": NOW}
        for s in ("DOCK-01", "DOCK-02")
    ])  # fmt: skip
    conn.execute(officers.insert(), [
        {"id": i, "name": nm, "cert_no": c, "department": d, "roles": [], "updated_at": NOW}
        for i, nm, c, d in OFFICERS
    ])  # fmt: skip
    conn.execute(cases_table.insert(), [
        {"number": num, "title": t, "category": cat, "department": d, "status": "open",
         "due_provisional": False, "updated_at": NOW}
        for num, t, cat, d in CASES
    ])  # fmt: skip
    rows, link_rows, tag_rows = [], [], []
    for i in range(1, n + 1):
        kind = rng.choice(KINDS)
        start = (
            START + timedelta(minutes=rng.randrange(14 * 24 * 60)) if rng.random() < 0.9 else None
        )
        duration = round(rng.uniform(5, 3600), 1) if kind in ("video", "audio") else None
        officer = rng.choice([o[0] for o in OFFICERS] + [UNREGISTERED, None])
        words = rng.sample(PHRASES, rng.randrange(0, 3))
        rows.append({
            "id": i, "sha256": f"{rng.getrandbits(256):064x}", "size": rng.randrange(1, 1 << 31),
            "kind": kind, "status": "archived" if rng.random() < 0.9 else "quarantined",
            "original_name": rng.choice([f"BWC{i:04d}.MP4", f"现场笔录 {i}.pdf", f"Night_{i}.mp4"]),
            "station_id": rng.choice(["DOCK-01", "DOCK-02"]), "source_path": f"/dock/{i}",
            "ingested_at": NOW - timedelta(hours=rng.randrange(24 * 20)), "extra": {},
            "device_serial": None if kind == "document" else f"BWC{rng.randrange(1, 11):04d}",
            "officer_id": officer, "duration_s": duration,
            "recorded_start": start,
            "recorded_end": start + timedelta(seconds=duration or 0) if start else None,
            "id_sources": {}, "flags": [],
            "description": rng.choice([None, "", "，".join(words)]) if words else None,
        })  # fmt: skip
        for number in rng.sample([c[0] for c in CASES], rng.choice([0, 0, 1, 1, 2])):
            removed = NOW if rng.random() < 0.15 else None
            link_rows.append({
                "case_number": number, "media_id": i, "method": "rule", "rule": "t",
                "actor": "t", "created_at": NOW, "removed_at": removed,
            })  # fmt: skip
        for tag in rng.sample(TAGS, rng.choice([0, 0, 1, 2])):
            tag_rows.append({"media_id": i, "tag": tag, "created_at": NOW, "created_by": "t"})
    conn.execute(media.insert(), rows)
    conn.execute(links.insert(), link_rows)
    conn.execute(media_tags.insert(), tag_rows)


# Each query of the table must select some items and leave out others (checked below), so
# that agreement means something.
AGREEMENT = [
    "case:2026-0113", "case:2026-0113,2026-0115", "-case:2026-0114",
    "officer:1023", "officer:张伟,1088", 'officer:"Zhang Wei"', "officer:9999", "-officer:1023",
    "cert:62010023003", "-cert:62010023003",
    "device:BWC0003", "device:BWC0003,BWC0004 -kind:video", "-device:BWC0003",
    "station:DOCK-02", "department:市场监管执法大队", "-department:城管执法大队", "department:法制科",
    "category:seizure", "category:demolition,hearing", "-category:seizure",
    "kind:video", "kind:audio,photo", "-kind:document", "status:quarantined", "-status:archived",
    "recorded:2026-05-05", "recorded:2026-05-01..2026-05-03", "recorded:..2026-04-30",
    "recorded:2026-05-09T12..", "-recorded:2026-05", "recorded:2026-05-05,2026-05-07",
    "ingested:2026-05-01..2026-05-05", "-ingested:2026-05-10..",
    "duration:10m..", "duration:..1m,50m..", "-duration:..30m", "size:..100MB", "size:1G..",
    "id:100..200", "-id:..1000",
    "sha256:a", "sha256:0,f", "sha256:9", "-sha256:8",
    "tag:待复核", "tag:night,court", 'tag:"needs review"', "-tag:night",
    "linked:yes", "linked:no", "-linked:yes", "described:yes", "described:no", "-described:yes",
    # Text: two Chinese characters (below a trigram), longer ones, English in any case, phrases
    # with a space, LIKE's wildcards taken literally, case titles, tags, file names.
    "扣押", "仓库", "依法扣押物品", "表明身份", "-扣押", "扣押,拆除", "warehouse", "WAREHOUSE",
    '"night patrol"', "night", '"the w"', "%_", "100%", "现场笔录", "bwc00", "车辆", "违章建筑",
    "待复核", "text:听证", "a", "BW", "t,W",
    # Combinations.
    "officer:1023 recorded:2026-05-01..2026-05-07", "device:BWC0005 kind:video duration:5m..",
    "category:seizure -described:yes", "department:市场监管执法大队 recorded:2026-Q2 扣押",
    "linked:yes -tag:待复核 status:archived", "officer:9999,1101 -linked:yes 现场",
]  # fmt: skip


def _select(conn: Connection, query: str) -> set[int]:
    return set(conn.execute(selection(conn, parse(query, SH))).scalars())


def _check_agreement(conn: Connection, queries: list[str]) -> None:
    items = views(conn)
    for q in queries:
        parsed = parse(q, SH)
        expected = {v.id for v in items if matches(parsed, v)}
        assert _select(conn, q) == expected, q
        assert 0 < len(expected) < len(items), f"{q} selects {len(expected)} of {len(items)}"


TEXT = [q for q in AGREEMENT if ":" not in q]


def test_sql_and_python_select_the_same_items(
    any_catalog_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = open_catalog(any_catalog_url)
    with cat.begin() as conn:
        generate(conn, 3000)
    with cat.begin() as conn:
        _check_agreement(conn, AGREEMENT)
        # Text matching many items is tested item by item (SQLite): the same items.
        monkeypatch.setattr(search_module, "BROAD", 20)
        _check_agreement(conn, [*TEXT, "officer:1023 依法扣押物品", "依法扣押物品 -表明身份"])
        monkeypatch.undo()
    # Change text through the write paths; the triggers must carry it into the search index.
    with cat.begin() as conn:
        for media_id in range(1, 3001, 7):
            cases.describe(conn, media_id, "依法扣押物品，当事人拒绝签字", "A001", NOW)
        for media_id in range(2, 3001, 11):
            tags.change(conn, media_id, ["复查中"], ["待复核"], "A001", NOW)
        for link in case_rows.links_of_case(conn, "2026-0113")[::2]:
            cases.unlink(conn, "2026-0113", link.media_id, "A001", "wrong case", NOW)
        case_rows.save(
            conn, replace(cases.get_case(conn, "2026-0116"), title="现场检查 二号库"), NOW
        )
    with cat.begin() as conn:
        _check_agreement(conn, [
            "扣押", "拒绝签字", "复查", "复查中", "待复核", "仓库", "二号库", "warehouse",
            "case:2026-0113 仓库", "tag:复查中",
        ])  # fmt: skip
    cat.dispose()


@pytest.fixture
def small(catalog: Catalog) -> Catalog:
    with catalog.begin() as conn:
        generate(conn, 300, seed=1)
    return catalog


def test_chinese_substrings_in_descriptions_and_case_titles(small: Catalog) -> None:
    with small.begin() as conn:
        cases.describe(conn, 5, "执法人员依法扣押涉案物品", "A001", NOW)
        cases.describe(conn, 6, "现场检查", "A001", NOW)
        case_rows.add_link(conn, "2026-0115", 6, LinkMethod.MANUAL, "t", "t", NOW)

        def found(q: str) -> set[int]:
            return _select(conn, f"id:5..6 {q}")

        assert found("扣押") == {5}, "two characters: shorter than a trigram"
        assert found("扣押涉案") == {5}
        assert found("涉案物品") == {5}
        assert found("物品") == {5}, "two characters at the end of a line"
        assert found("建筑") == {6}, "two characters at the end of the document"
        assert found("拆除") == {6} and found("违章建筑") == {6}, "the title of a linked case"
        assert found("扣押,拆除") == {5, 6}
        assert found("扣留") == set()
        cases.unlink(conn, "2026-0115", 6, "A001", "wrong case", NOW)
        assert found("违章建筑") == set(), "an unlinked case's title no longer finds the item"


def test_search_sorts_limits_and_loads_views(small: Catalog) -> None:
    with small.begin() as conn:
        found = search(conn, parse("kind:video", SH), limit=10)
        assert len(found.items) == 10 and found.more
        starts = [v.recorded_start for v in found.items]
        assert all(s is not None for s in starts) and starts == sorted(starts, reverse=True)  # type: ignore[type-var]
        by_size = search(conn, parse("kind:video", SH), sort=Sort(SortKey.SIZE), limit=1000)
        assert not by_size.more
        assert [v.size for v in by_size.items] == sorted(v.size for v in by_size.items)
        item = next(v for v in views(conn) if v.cases and v.officer_name)
        assert search(conn, parse(f"id:{item.id}", SH)).items == [item]
        assert search(conn, parse("recorded:1999", SH)).items == []


def test_tags_are_normalized_validated_and_logged(small: Catalog) -> None:
    with small.begin() as conn:
        before = conn.execute(text("select count(*) from custody_events")).scalar_one()
        done = tags.change(conn, 7, ["Needs  Review", "待复核"], [], "A001", NOW)
        assert "needs review" in done.tags and "待复核" in done.tags
        again = tags.change(conn, "7", ["needs review"], ["court-x"], "A001", NOW)
        assert (again.added, again.removed, again.already, again.absent) == (
            (),
            (),
            ("needs review",),
            ("court-x",),
        ), "nothing changed: no event"
        tags.change(conn, 7, [], ["NEEDS REVIEW"], "A002", NOW)
        events = [e for e in custody.events(conn, media_id=7) if e.kind is EventKind.TAGGED]
        assert conn.execute(text("select count(*) from custody_events")).scalar_one() == before + 2
        assert events[-1].actor == "A002" and events[-1].details == {
            "added": [],
            "removed": ["needs review"],
        }
        assert 7 not in _select(conn, 'tag:"needs review"')
        for bad, why in [
            ("", "is empty"),
            ("-x", "cannot start with"),
            ("a,b", "comma"),
            ("x" * 65, "longer"),
        ]:
            with pytest.raises(TagError, match=why):
                tags.change(conn, 7, [bad], [], "A001", NOW)
        with pytest.raises(TagError, match="both added and removed"):
            tags.change(conn, 7, ["x"], ["X"], "A001", NOW)
        with pytest.raises(NotFound):
            tags.change(conn, 99999, ["x"], [], "A001", NOW)


COMMON = {  # the queries of benchmarks/queries.py, and the index each must use
    "case:2026-0113": "ix_links_case_number",
    "officer:1023 recorded:2026-05-01..2026-05-07": "ix_media_officer_recorded",
    "device:BWC0003": "ix_media_device_recorded",
    "依法扣押物品": "search_fts VIRTUAL TABLE INDEX",
    "sha256:3f2a9c": "(sha256>? AND sha256<?)",
}


def _plan(catalog: Catalog, query: str) -> str:
    with catalog.begin() as conn:
        statement = selection(conn, parse(query, SH)).limit(50)
        sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
        return "\n".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.parametrize(("query", "index"), COMMON.items())
def test_common_queries_use_indexes(small: Catalog, query: str, index: str) -> None:
    plan = _plan(small, query)
    assert index in plan, plan
    assert "SCAN media" not in plan, plan


def test_broad_text_is_tested_on_the_newest_first_scan(
    small: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_module, "BROAD", 5)
    plan = _plan(small, "依法扣押物品")
    assert "SCAN media USING COVERING INDEX ix_media_recorded_start" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


# ------------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(small: Catalog, settings: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}
    env["EVIDENCE_HOME"] = str(settings.home)
    env["COLUMNS"] = "200"  # the table at full width

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "interfaces.cli", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    return run


def test_cli_search_tag_and_errors(cli: Any, small: Catalog) -> None:
    tagged = cli("media", "tag", "8", "+证据", "-night", "+Court", "--as", "A001", "--json")
    assert tagged.returncode == 0, tagged.stderr
    assert set(json.loads(tagged.stdout)["tags"]) >= {"证据", "court"}
    with small.begin() as conn:
        (event,) = [e for e in custody.events(conn, media_id=8) if e.kind is EventKind.TAGGED]
        assert event.actor == "A001" and event.details["added"] == ["court", "证据"]
    # A term with a leading "-" is a query term, not an option.
    found = cli("search", "tag:证据", "-tag:night", "--json", "--limit", "5", "--sort", "-size")
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout)
    assert [i["id"] for i in result["items"]] == [8]
    assert result["sort"] == "-size" and result["more"] is False
    assert {"thumbnail", "cases", "officer_name", "recorded_start"} <= set(result["items"][0])
    table = cli("search", "kind:video", "--limit", "3")
    assert (
        table.returncode == 0 and "thumbnail" in table.stdout and "More items match" in table.stdout
    )
    bad = cli("search", "officer:1023 recorded:2026-13-01")
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "error (query): recorded:2026-13-01: not a date (term 2 at column 14)"
    )
    assert cli("search", "x", "--sort", "name").returncode == 2
    refused = cli("media", "tag", "8", "+a,b")
    assert refused.returncode == 2 and "comma" in refused.stderr


# ----------------------------------------------------------- listings scoped to the user

TREE_OFFICERS = [  # id, department
    ("1", "县公安局/治安大队"), ("2", "县公安局/交警大队"), ("3", "县公安局/治安大队二"),
    ("4", "县公安局/治安大队/一中队"),
]  # fmt: skip
TREE_ITEMS = [  # id, officer, linked to (case: department), with its link removed?
    (1, "1", None), (2, "2", None), (3, "3", None), (4, "4", None),
    (5, "2", ("Z-1", False)), (6, "2", ("Z-1", True)), (7, None, None), (8, "9999", None),
]  # fmt: skip


def _tree_catalog(url: str) -> Catalog:
    cat = open_catalog(url)
    with cat.begin() as conn:
        conn.execute(stations.insert(), [{"id": "D", "name": "D", "root": "/d", "location": "",
                                          "created_at": NOW}])  # fmt: skip
        conn.execute(officers.insert(), [
            {"id": i, "name": f"officer {i}", "cert_no": f"C{i}", "department": d, "roles": [],
             "updated_at": NOW} for i, d in TREE_OFFICERS
        ])  # fmt: skip
        conn.execute(cases_table.insert(), [
            {"number": "Z-1", "title": "扣押", "category": "seizure", "department": "县公安局/治安大队",
             "status": "open", "due_provisional": False, "updated_at": NOW},
        ])  # fmt: skip
        conn.execute(media.insert(), [
            {"id": i, "sha256": f"{i:x}" * 64, "size": 10, "kind": "video", "status": "archived",
             "original_name": f"扣押现场 {i}.mp4", "station_id": "D", "source_path": f"/d/{i}",
             "ingested_at": NOW, "extra": {}, "device_serial": None, "officer_id": officer,
             "id_sources": {}, "flags": []}
            for i, officer, _ in TREE_ITEMS
        ])  # fmt: skip
        conn.execute(links.insert(), [
            {"case_number": case, "media_id": i, "method": "manual", "rule": "", "actor": "t",
             "created_at": NOW, "removed_at": NOW if removed else None}
            for i, _, linked in TREE_ITEMS if linked for case, removed in [linked]
        ])  # fmt: skip
    return cat


def _person(roles: tuple[UserRole, ...], department: str, officer: str = "1") -> User:
    return User("u", officer, roles, department, True, NOW, NOW)


def test_a_search_finds_only_what_the_user_may_view(any_catalog_url: str) -> None:
    """The SQL of ``reach`` against ``can_view`` on the items' real departments, on SQLite and
    PostgreSQL: an archivist of 治安大队 finds nothing of 交警大队 (but what is linked to a case
    of theirs) nor of 治安大队二, by any query; a supervisor of 县公安局 finds both."""
    cat = _tree_catalog(any_catalog_url)
    people = {
        "archivist": _person((UserRole.ARCHIVIST,), "县公安局/治安大队"),
        "supervisor": _person((UserRole.SUPERVISOR,), "县公安局"),
        "officer": _person((UserRole.OFFICER,), "县公安局/交警大队", officer="2"),
        "legal": _person((UserRole.LEGAL_REVIEWER,), "县法制局"),
        "admin": _person((UserRole.ADMIN,), "县公安局"),
    }
    queries = ["", "扣押", "现场 2", "officer:2", "sha256:2222", "department:县公安局/交警大队",
               "case:Z-1", "-linked:yes", "id:1..8"]  # fmt: skip
    with cat.read() as conn:
        everything = views(conn)
        departments = {v.id: account_rows.item_departments(conn, v.officer_id, v.id)
                       for v in everything}  # fmt: skip

        def found(user: User, q: str) -> set[int]:
            result = search(conn, parse(q, SH), limit=100, scope=reach(user))
            descending = search(conn, parse(q, SH), sort=Sort(SortKey.ID, True), scope=reach(user))
            assert {v.id for v in descending.items} == {v.id for v in result.items}, q
            return {v.id for v in result.items}

        for name, user in people.items():
            for q in queries:
                parsed = parse(q, SH)
                expected = {v.id for v in everything if matches(parsed, v)
                            and can_view(user, ItemScope(v.officer_id, departments[v.id]))}  # fmt: skip
                assert found(user, q) == expected, (name, q)
        assert found(people["archivist"], "") == {1, 4, 5}
        for q in ("officer:2", "sha256:2222", "扣押现场 2", "department:县公安局/交警大队"):
            assert found(people["archivist"], q) <= {5}, q
        assert found(people["supervisor"], "") == {1, 2, 3, 4, 5, 6}
        assert found(people["supervisor"], "officer:2") == {2, 5, 6}
        assert found(people["officer"], "") == {2, 5, 6}
        assert found(people["legal"], "") == set(range(1, 9))
        assert found(people["admin"], "") == set()
        assert {v.id for v in search(conn, parse("", SH), limit=100).items} == set(range(1, 9))
    cat.dispose()
