"""A report's JSON as tables: one per section, for a workbook's sheets and a PDF's tables.

Generic over the sections, so that what a report gains (the dashboard's ``figures``) appears
without a change here:

- the top level's plain values (``today``) make the summary table;
- a mapping of names to records (``departments``: name → tally) is a table with a row per
  name, its first column the name;
- a list of records (``cases``) is a table with a row per record;
- a mapping of plain values is a table of key and value;
- anything nested deeper is split: each part of it a table of its own (``figures.links``).

A record's values are cells: numbers stay numbers, a nested mapping of plain values spreads
into columns named ``outer.inner``, a list of plain values is one cell of lines. The values
are the JSON's, unchanged; only their headers are translated (zh-CN, then the JSON key).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Headers in zh-CN for the keys reports hold; a key not here is shown as it is.
LABELS_ZH = {
    "today": "统计日期",
    "department": "部门",
    "departments": "部门",
    "officer": "执法人员",
    "officers": "执法人员",
    "device": "设备",
    "devices": "设备",
    "cases": "案件",
    "figures": "统计指标",
    "name": "名称",
    "number": "案件编号",
    "state": "状态",
    "problems": "问题",
    "cases_concluded": "已办结",
    "archived_on_time": "按时归档",
    "archived_late": "逾期归档",
    "overdue_now": "当前逾期",
    "due_soon": "即将到期",
    "coverage_failures": "覆盖不全",
    "uncovered_minutes": "未覆盖分钟",
    "without_description": "无文字说明",
    "unsigned": "未签字未注明",
    "unlinked_media": "未关联记录",
    "recordings": "录音录像",
    "hours": "小时",
    "on_time_rate": "按时归档率",
    "link_rate": "关联率",
    "upload_timeliness": "上传及时率",
    "timely_uploads": "及时上传",
    "late_uploads": "逾期上传",
    "linked": "已关联",
    "value": "值",
    "key": "项目",
    "summary": "概要",
    "from": "起",
    "until": "止",
    "generated_at": "生成时间",
}

#: The first column's header of a table of named records, by section.
KEY_COLUMN = {"departments": "department", "officers": "officer", "devices": "device"}

#: Keys whose values are shares of a whole (0 to 1): shown as percentages.
RATE_SUFFIXES = ("rate", "ratio", "share", "timeliness")


def label(key: str) -> str:
    """``已办结 cases_concluded``: the zh-CN header, then the key the JSON has."""
    last = key.rsplit(".", 1)[-1]
    zh = LABELS_ZH.get(key) or LABELS_ZH.get(last)
    return f"{zh} {key}" if zh else key


@dataclass(frozen=True)
class Column:
    key: str  # the JSON's key (``outer.inner`` for a nested one)
    label: str
    percent: bool = False  # its numbers are shares: shown as percentages


@dataclass(frozen=True)
class Section:
    """One table: ``path`` is where its data is in the JSON (``figures.links``)."""

    path: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    share_rows: frozenset[int] = frozenset()  # of a key-value table: rows holding a share

    def percent(self, row: int, column: int) -> bool:
        """Whether the cell holds a share (0 to 1) that is shown as a percentage."""
        return self.columns[column].percent or (column > 0 and row in self.share_rows)


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _cell(value: Any) -> Any:
    """A JSON value as one cell: a plain value itself, a list of plain values as lines."""
    if _plain(value):
        return value
    if isinstance(value, list) and all(_plain(v) for v in value):
        return "\n".join("" if v is None else str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _is_record(value: Any) -> bool:
    """A mapping whose values are cells: plain, lists of plain values, or one more level of
    plain values (spread into ``outer.inner`` columns)."""
    if not isinstance(value, Mapping):
        return False
    for v in value.values():
        if isinstance(v, Mapping):
            if not all(_plain(x) for x in v.values()):
                return False
        elif not (_plain(v) or (isinstance(v, list) and all(_plain(x) for x in v))):
            return False
    return True


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, Mapping):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[str(k)] = v
    return out


def _columns(keys: Iterable[str], rows: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    return tuple(Column(k, label(k), _is_share(k, [r.get(k) for r in rows])) for k in keys)


def _is_share(key: str, values: Sequence[Any]) -> bool:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return (
        key.rsplit(".", 1)[-1].endswith(RATE_SUFFIXES)
        and bool(numbers)
        and all(0 <= v <= 1 for v in numbers)
    )


def _union(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in records for k in r))


def _pairs(path: str, items: Sequence[tuple[str, Any]]) -> Section:
    return Section(
        path,
        label(path),
        (Column("key", label("key")), Column("value", label("value"))),
        tuple((label(k), _cell(v)) for k, v in items),
        frozenset(i for i, (k, v) in enumerate(items) if _is_share(k, [v])),
    )


def _named(path: str, records: Mapping[str, Mapping[str, Any]]) -> Section:
    flat = {name: _flat(r) for name, r in records.items()}
    keys = _union(flat.values())
    first = KEY_COLUMN.get(path.rsplit(".", 1)[-1], "name")
    columns = (Column(first, label(first)), *_columns(keys, list(flat.values())))
    rows = tuple((name, *(_cell(r.get(k)) for k in keys)) for name, r in flat.items())
    return Section(path, label(path), columns, rows)


def _listed(path: str, records: Sequence[Any]) -> Section:
    flat = [_flat(r) if isinstance(r, Mapping) else {"value": r} for r in records]
    keys = _union(flat)
    rows = tuple(tuple(_cell(r.get(k)) for k in keys) for r in flat)
    return Section(path, label(path), _columns(keys, flat), rows)


def section(path: str, value: Any) -> list[Section]:
    """The tables of the part ``value`` of a report found at ``path``."""
    if isinstance(value, list):
        if all(_plain(v) or _is_record(v) for v in value):
            return [_listed(path, value)]
        return [t for i, v in enumerate(value, 1) for t in section(f"{path}.{i}", v)]
    if not isinstance(value, Mapping):
        return [_pairs(path, [(path, value)])]
    if value and all(_is_record(v) for v in value.values()):
        return [_named(path, value)]
    plain = [(str(k), v) for k, v in value.items() if _plain(v)]
    found = [_pairs(path, plain)] if plain or not value else []
    for k, v in value.items():
        if not _plain(v):
            found += section(f"{path}.{k}", v)
    return found


def sections(report: Mapping[str, Any], summary: Sequence[tuple[str, Any]] = ()) -> list[Section]:
    """Every table of ``report`` (its JSON), the summary first: ``summary`` (what was asked:
    department, period) and the report's own plain values."""
    plain = [*summary, *((str(k), v) for k, v in report.items() if _plain(v))]
    found = [_pairs("summary", plain)]
    for k, v in report.items():
        if not _plain(v):
            found += section(str(k), v)
    return found
