"""The query language: query string in, structure out; bad queries name the term."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.errors import QueryError
from pipeline.search.query import Between, Field, Span, Term, parse
from pipeline.search.run import Sort, SortKey

SH = ZoneInfo("Asia/Shanghai")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def T(field: Field, *values: object, negated: bool = False) -> Term:
    return Term(field, tuple(values), negated)  # type: ignore[arg-type]


MAY5 = Span(utc(2026, 5, 4, 16), utc(2026, 5, 5, 16))  # the local day in Shanghai (UTC+8)

PARSES: list[tuple[str, list[Term]]] = [
    ("", []),
    ("   ", []),
    ("case:2026-0113", [T(Field.CASE, "2026-0113")]),
    ("Case:2026-0113", [T(Field.CASE, "2026-0113")]),
    ("officer:1023 device:BWC0017", [T(Field.OFFICER, "1023"), T(Field.DEVICE, "BWC0017")]),
    ("officer:张伟,1088", [T(Field.OFFICER, "张伟", "1088")]),
    ('officer:"Zhang Wei"', [T(Field.OFFICER, "Zhang Wei")]),
    ('department:"市场监管, 一中队",交警', [T(Field.DEPARTMENT, "市场监管, 一中队", "交警")]),
    ("-status:quarantined", [T(Field.STATUS, "quarantined", negated=True)]),
    ("status:已隔离", [T(Field.STATUS, "quarantined")]),
    ("kind:Video,音频,document", [T(Field.KIND, "video", "audio", "document")]),
    (
        "cert:62010023001 station:DOCK-01 category:seizure",
        [T(Field.CERT, "62010023001"), T(Field.STATION, "DOCK-01"), T(Field.CATEGORY, "seizure")],
    ),
    # Times: local days, months, quarters, years; ranges run to the end of their last period.
    ("recorded:2026-05-05", [T(Field.RECORDED, MAY5)]),
    ("recorded:2026-5-5", [T(Field.RECORDED, MAY5)]),
    (
        "recorded:2026-05-01..2026-05-07",
        [T(Field.RECORDED, Span(utc(2026, 4, 30, 16), utc(2026, 5, 7, 16)))],
    ),
    (
        "recorded:2026-05..2026-06",
        [T(Field.RECORDED, Span(utc(2026, 4, 30, 16), utc(2026, 6, 30, 16)))],
    ),
    ("recorded:2026-Q2", [T(Field.RECORDED, Span(utc(2026, 3, 31, 16), utc(2026, 6, 30, 16)))]),
    ("recorded:2026", [T(Field.RECORDED, Span(utc(2025, 12, 31, 16), utc(2026, 12, 31, 16)))]),
    ("recorded:2026-12", [T(Field.RECORDED, Span(utc(2026, 11, 30, 16), utc(2026, 12, 31, 16)))]),
    (
        "recorded:2026-05-05T08:30",
        [T(Field.RECORDED, Span(utc(2026, 5, 5, 0, 30), utc(2026, 5, 5, 0, 31)))],
    ),
    (
        "recorded:2026-05-05T08:30:15Z",
        [T(Field.RECORDED, Span(utc(2026, 5, 5, 8, 30, 15), utc(2026, 5, 5, 8, 30, 16)))],
    ),
    ('recorded:"2026-05-05 08"', [T(Field.RECORDED, Span(utc(2026, 5, 5, 0), utc(2026, 5, 5, 1)))]),
    (
        "recorded:2026-05-05T08:00..2026-05-05T10:00+08:00",
        [T(Field.RECORDED, Span(utc(2026, 5, 5, 0), utc(2026, 5, 5, 2, 1)))],
    ),
    ("recorded:2026-05-05..", [T(Field.RECORDED, Span(utc(2026, 5, 4, 16), None))]),
    ("ingested:..2026-05-05", [T(Field.INGESTED, Span(None, utc(2026, 5, 5, 16)))]),
    (
        "recorded:2026-05-05,2026-05-07",
        [T(Field.RECORDED, MAY5, Span(utc(2026, 5, 6, 16), utc(2026, 5, 7, 16)))],
    ),
    # Numbers: durations in seconds, sizes in bytes (K = 1024), ids; a value alone is equality.
    ("duration:90", [T(Field.DURATION, Between(90, 90))]),
    ("duration:5m..1h30m", [T(Field.DURATION, Between(300, 5400))]),
    ("duration:1.5h..", [T(Field.DURATION, Between(5400, None))]),
    ("duration:..90s", [T(Field.DURATION, Between(None, 90))]),
    ("size:..10MB,1G..", [T(Field.SIZE, Between(None, 10 << 20), Between(1 << 30, None))]),
    ("size:500K..1.5MiB", [T(Field.SIZE, Between(500 << 10, 1.5 * (1 << 20)))]),
    ("id:10..20", [T(Field.ID, Between(10, 20))]),
    ("sha256:3F2A9C", [T(Field.SHA256, "3f2a9c")]),
    ("tag:Needs  Review", [T(Field.TAG, "needs"), T(Field.TEXT, "Review")]),
    ('tag:"Needs  Review"', [T(Field.TAG, "needs review")]),
    ("linked:no described:是", [T(Field.LINKED, False), T(Field.DESCRIBED, True)]),
    # Text: bare words, phrases, negation, OR; a colon after a non-name is just text.
    ("扣押", [T(Field.TEXT, "扣押")]),
    ('"查封 仓库" -草稿', [T(Field.TEXT, "查封 仓库"), T(Field.TEXT, "草稿", negated=True)]),
    ("查封,扣押", [T(Field.TEXT, "查封", "扣押")]),
    ("text:warehouse 10:30", [T(Field.TEXT, "warehouse"), T(Field.TEXT, "10:30")]),
    ("case:2026..2027", [T(Field.CASE, "2026..2027")]),  # only ranged fields read ".."
    ('-"a,b"', [T(Field.TEXT, "a,b", negated=True)]),
]


@pytest.mark.parametrize(("text", "terms"), PARSES)
def test_query_string_in_structure_out(text: str, terms: list[Term]) -> None:
    assert list(parse(text, SH).terms) == terms


def test_terms_keep_their_text_and_column() -> None:
    query = parse('case:2026-0113   "查封 仓库" -tag:x', SH)
    assert [(t.source, t.column) for t in query.terms] == [
        ("case:2026-0113", 1),
        ('"查封 仓库"', 18),
        ("-tag:x", 26),
    ]


ERRORS = [
    ("officer:1023 recorded:2026-13-01", "recorded:2026-13-01: not a date (term 2 at column 14)"),
    ("recorded:2026-02-30", "recorded:2026-02-30: not a date (term 1 at column 1)"),
    ("recorded:yesterday", "recorded:yesterday: not a date (term 1 at column 1)"),
    (
        "recorded:2026-05-01,2026-13-01",
        "recorded:2026-05-01,2026-13-01: 2026-13-01: not a date (term 1 at column 1)",
    ),
    ("recorded:..", "recorded:..: a range needs at least one end (term 1 at column 1)"),
    (
        "a ofiicer:1023",
        "ofiicer:1023: unknown field 'ofiicer' (fields: case, officer, cert, device, station, department, category, kind, status, recorded, ingested, duration, size, id, sha256, tag, linked, described, text) (term 2 at column 3)",
    ),
    (
        "kind:movie",
        "kind:movie: not a kind (video, audio, photo, document, other) (term 1 at column 1)",
    ),
    (
        "status:lost",
        "status:lost: not a status (archived, quarantined, disposed) (term 1 at column 1)",
    ),
    ("duration:5x", "duration:5x: not a duration (like 90, 90s, 5m, 1h30m) (term 1 at column 1)"),
    ("size:10XB", "size:10XB: not a size (like 2048, 500K, 10MB, 1.5GB) (term 1 at column 1)"),
    ("id:1.5", "id:1.5: not a whole number (term 1 at column 1)"),
    ("sha256:xyz", "sha256:xyz: not a SHA-256 prefix (hex digits) (term 1 at column 1)"),
    ("linked:maybe", "linked:maybe: not yes or no (term 1 at column 1)"),
    ("case:", "case:: a value is empty (term 1 at column 1)"),
    ("case:a,,b", "case:a,,b: a value is empty (term 1 at column 1)"),
    ('x "查封 仓库', '"查封 仓库: a quote is not closed (term 2 at column 3)'),
    ("x -", "-: nothing after '-' (term 2 at column 3)"),
    ('"a\nb"', '"a\nb": a text value cannot span lines (term 1 at column 1)'),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_bad_queries_name_the_term(text: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse(text, SH)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "sort"),
    [
        ("recorded", Sort(SortKey.RECORDED)),
        ("-size", Sort(SortKey.SIZE, True)),
        ("ID", Sort(SortKey.ID)),
    ],
)
def test_sort_keys(text: str, sort: Sort) -> None:
    assert Sort.parse(text) == sort


def test_unknown_sort_key_lists_the_keys() -> None:
    with pytest.raises(
        ValueError, match="cannot sort by 'name' \\(by recorded, ingested, duration, size, id"
    ):
        Sort.parse("name")
