"""Search tails (issue 20): text of one and two characters, phrases, text in no item, text
with an officer by id and by name, on SQLite and PostgreSQL with the same expected items,
whichever way each back end finds them (an index, or item by item); PostgreSQL's index of
bigrams (migration 0014): used by its lookups, built for the documents already there, and
safe for a document too long to be split."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, create_engine, select, text

from pipeline.cases import records as cases
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog.db import _alembic_config
from pipeline.catalog.schema import cases as cases_table
from pipeline.catalog.schema import links, media, media_tags, officers, search_text, stations
from pipeline.search import run, tags
from pipeline.search.query import matches, parse, postgres_indexed
from pipeline.search.run import look_up, search, selection, views
from tests.test_search import SH

NOW = datetime(2026, 5, 12, 2, 0, tzinfo=UTC)

OFFICERS = [("1023", "张伟"), ("1077", "张伟"), ("1088", "王芳")]  # two officers of one name
# id, officer, file name, description, tags
ITEMS = [
    (1, "1023", "BWC0001.MP4", "依法扣押物品，当事人拒绝签字", ["查封"]),
    (2, "1077", "BWC0002.MP4", "现场检查，责令整改", []),
    (3, "1088", "AB_3.mp4", "it's C:\\dir，扣留车辆", ["夜查"]),
    (4, "1023", "现场笔录 4.pdf", None, []),
    (5, "9999", "BWC0005.MP4", "扣押涉案车辆", ["待复核"]),  # an officer not in the registry
    (6, None, "Night_6.mp4", "", ["night"]),
]
CASES = [  # number, title, linked items; 鑫 is only the last character of a title
    ("2026-0113", "查封某仓库", [1, 2]),
    ("2026-0114", "扣押金鑫", [4]),
]
# query -> the items it selects, on both back ends and by every way of looking text up
EXPECTED: dict[str, set[int]] = {
    "扣": {1, 3, 4, 5},
    "鑫": {4},  # at the very end of the document: the last title's last character
    "淼": set(),
    "车": {3, 5},
    "扣押": {1, 4, 5},
    "扣押,鑫": {1, 4, 5},
    "-扣押": {2, 3, 6},
    "押当": set(),
    "字查": set(),  # "…签字\n查封": two parts of the document, no match across them
    "签字": {1},  # at the end of a line
    "ab": {3},
    "AB": {3},
    "t'": {3},
    ":\\": {3},
    "依法扣押物品": {1},
    "涉案车辆": {5},
    "子虚乌有": set(),
    "ni": {6},
    "officer:1023 扣押": {1, 4},
    "officer:张伟 扣押": {1, 4},
    "officer:张伟 现场": {2, 4},
    "officer:张伟,王芳 车": {3},
    "officer:9999 扣押": {5},
    "officer:张三丰 扣押": set(),
    "officer:张三丰": set(),
    "-officer:张伟 扣": {3, 5},
}


def _fill(conn: Connection) -> None:
    conn.execute(
        stations.insert(),
        [{"id": "D", "name": "D", "root": "/d", "location": "", "created_at": NOW}],
    )
    conn.execute(officers.insert(), [
        {"id": i, "name": n, "cert_no": f"C{i}", "department": "执法大队", "roles": [],
         "updated_at": NOW} for i, n in OFFICERS
    ])  # fmt: skip
    conn.execute(cases_table.insert(), [
        {"number": num, "title": t, "category": "seizure", "department": "执法大队",
         "status": "open", "due_provisional": False, "updated_at": NOW} for num, t, _ in CASES
    ])  # fmt: skip
    conn.execute(media.insert(), [
        {"id": i, "sha256": f"{i:064x}", "size": 10, "kind": "video", "status": "archived",
         "original_name": name, "station_id": "D", "source_path": f"/d/{i}",
         "ingested_at": NOW, "extra": {}, "device_serial": None, "officer_id": officer,
         "recorded_start": NOW - timedelta(hours=i), "id_sources": {}, "flags": [],
         "description": description}
        for i, officer, name, description, _ in ITEMS
    ])  # fmt: skip
    conn.execute(links.insert(), [
        {"case_number": num, "media_id": i, "method": "manual", "rule": "", "actor": "t",
         "created_at": NOW} for num, _, items in CASES for i in items
    ])  # fmt: skip
    tag_rows = [(i, tag) for i, *_, tags in ITEMS for tag in tags]
    conn.execute(media_tags.insert(), [
        {"media_id": i, "tag": tag, "created_at": NOW, "created_by": "t"} for i, tag in tag_rows
    ])  # fmt: skip


@pytest.fixture
def tails(any_catalog_url: str) -> Iterator[Catalog]:
    cat = open_catalog(any_catalog_url)
    with cat.begin() as conn:
        _fill(conn)
    yield cat
    cat.dispose()


WAYS = {
    "as shipped": {},
    # Text is broad: tested item by item, on the sort's index.
    "item by item": {"SAMPLE_BROAD": 0, "BROAD": 0},
    # Text is never broad: found in the index, whatever its share.
    "by the index": {"SAMPLE_BROAD": 10**9, "BROAD": 10**9},
}


@pytest.mark.parametrize("way", WAYS)
def test_tails_select_the_same_items_on_both_back_ends(
    tails: Catalog, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in WAYS[way].items():
        monkeypatch.setattr(run, name, value)
    with tails.read() as conn:
        items = views(conn)
        for q, expected in EXPECTED.items():
            parsed = parse(q, SH)
            assert {v.id for v in items if matches(parsed, v)} == expected, f"Python: {q}"
            assert set(conn.execute(selection(conn, parsed)).scalars()) == expected, q
            found = search(conn, parsed, limit=3)
            newest_first = sorted(expected)[:3]  # recorded an hour earlier per id
            assert [v.id for v in found.items] == newest_first, q
            assert found.more == (len(expected) > 3), q


def test_officer_names_are_looked_up_before_the_sql(tails: Catalog) -> None:
    with tails.read() as conn:
        known = look_up(conn, parse("officer:张伟,9999,张三丰,4444 扣押", SH)).officers
        # A name stands for the ids of its officers; an id for itself, while some item has it.
        assert known == {"张伟": ("1023", "1077"), "9999": ("9999",), "张三丰": (), "4444": ()}
        sql = str(selection(conn, parse("officer:张伟", SH)).compile(conn))
        assert "officers" not in sql, sql


def test_text_found_in_the_index_is_listed_by_id(
    tails: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "SAMPLE_BROAD", 10**9)
    with tails.read() as conn:
        looked_up = look_up(conn, parse("扣押 子虚乌有 鑫", SH))
        if conn.dialect.name == "sqlite":
            # FTS5 finds two characters and more itself; one character is listed.
            assert looked_up.found == {"鑫": (4,)} and not looked_up.arrays
        else:
            arrays = {k: set(v.strip("{}").split(",")) - {""} for k, v in looked_up.arrays.items()}
            assert arrays == {"扣押": {"1", "4", "5"}, "子虚乌有": set(), "鑫": {"4"}}
            assert not looked_up.found


def test_a_document_too_long_to_split_is_still_found(tails: Catalog) -> None:
    """A tsvector holds at most 1 MB: 100,000 characters of distinct bigrams would not fit."""
    rng = random.Random(20)
    long_text = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(100_000))
    with tails.begin() as conn:
        cases.describe(conn, 6, long_text + "罕见物证", "A001", NOW)
    with tails.read() as conn:
        for q, expected in {"罕见物证": {6}, "证": {6}, "罕见": {6}, "扣押": {1, 4, 5}}.items():
            assert set(conn.execute(selection(conn, parse(q, SH))).scalars()) == expected, q
        assert {6} <= set(conn.execute(selection(conn, parse(long_text[500:502], SH))).scalars())


def _explain(conn: Connection, sql: str) -> str:
    # A catalog this small is read whole by any plan the planner is free to choose: forbid
    # that, and see which index serves the statement.
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def _lookup_sql(conn: Connection, needle: str) -> str:
    statement = select(search_text.c.media_id).where(postgres_indexed(needle))
    return str(statement.compile(conn, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("needle", ["扣", "扣押", "依法扣押物品", "绝无"])
def test_postgres_looks_text_up_in_the_bigram_index(pg_url: str, needle: str) -> None:
    cat = open_catalog(pg_url)
    with cat.begin() as conn:
        _fill(conn)
    with cat.begin() as conn:
        plan = _explain(conn, _lookup_sql(conn, needle))
        assert "Bitmap Index Scan on ix_search_text_grams" in plan, plan
        assert "Seq Scan" not in plan, plan
    cat.dispose()


def test_migration_0014_indexes_the_documents_already_there(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0013")
        _fill(conn)
        command.upgrade(_alembic_config(conn), "0014")
        grams = "search_grams(body) @@ search_grams_query('{}')"
        found = {
            q: set(conn.execute(text(f"SELECT media_id FROM search_text WHERE {grams.format(q)}")).scalars())
            for q in ("扣押", "扣", "鑫", "绝无")
        }  # fmt: skip
        assert found == {"扣押": {1, 4, 5}, "扣": {1, 3, 4, 5}, "鑫": {4}, "绝无": set()}
        command.upgrade(_alembic_config(conn), "head")
    engine.dispose()
    cat = open_catalog(pg_url)
    with cat.read() as conn:
        assert set(conn.execute(selection(conn, parse("扣押", SH))).scalars()) == {1, 4, 5}
    cat.dispose()


def test_the_index_follows_every_write_path(
    tails: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Descriptions, tags, links and case titles change; the lookups (never broad here) find
    what the documents now hold, on both back ends."""
    monkeypatch.setattr(run, "SAMPLE_BROAD", 10**9)
    with tails.begin() as conn:
        cases.describe(conn, 2, "查获走私香烟", "A001", NOW)
        tags.change(conn, 6, ["鹰眼"], ["night"], "A001", NOW)
        cases.unlink(conn, "2026-0114", 4, "A001", "wrong case", NOW)
        case_rows.save(conn, replace(cases.get_case(conn, "2026-0113"), title="查封淼仓"), NOW)
    with tails.read() as conn:
        items = views(conn)
        for q, expected in {
            "走私": {2}, "私": {2}, "查获走私香烟": {2}, "鹰": {6}, "鹰眼": {6}, "ni": {6},
            "鑫": set(), "扣押": {1, 5}, "淼": {1, 2}, "淼仓": {1, 2}, "仓库": set(),
        }.items():  # fmt: skip
            parsed = parse(q, SH)
            assert {v.id for v in items if matches(parsed, v)} == expected, f"Python: {q}"
            assert set(conn.execute(selection(conn, parsed)).scalars()) == expected, q
