"""Reading record files people write: YAML sections of mappings, or one CSV table, with the
line of every record, so that every problem can be reported as ``file:line: message``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from pipeline.errors import EvidenceError

Record = tuple[str, int, dict[str, Any]]  # section, line, fields


def read_records(
    path: Path, required: Mapping[str, tuple[str, ...]], error: type[EvidenceError]
) -> Iterator[Record]:
    """Records of a .yaml/.yml file (top-level sections named in ``required``) or of a .csv
    file (its section told by which ``required`` columns its header has)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets write a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    if path.suffix.lower() in (".yaml", ".yml"):
        return _yaml_records(path, text, tuple(required), error)
    if path.suffix.lower() == ".csv":
        return _csv_records(path, text, required, error)
    raise error(f"{path}: give a .yaml, .yml or .csv file")


def _yaml_records(
    path: Path, text: str, sections: tuple[str, ...], error: type[EvidenceError]
) -> Iterator[Record]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            raise error(f"{path}:{root.start_mark.line + 1}: expected sections {sections}")
        for key_node, section_node in root.value:
            section = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if section not in sections:
                raise error(f"{path}:{line}: unknown section {section!r}; use {sections}")
            if not isinstance(section_node, yaml.SequenceNode):
                raise error(f"{path}:{line}: {section} must be a list")
            for item in section_node.value:
                item_line = item.start_mark.line + 1
                if not isinstance(item, yaml.MappingNode):
                    raise error(f"{path}:{item_line}: each {section} entry must be a mapping")
                yield section, item_line, loader.construct_mapping(item, deep=True)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()


def _csv_records(
    path: Path, text: str, required: Mapping[str, tuple[str, ...]], error: type[EvidenceError]
) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(h.strip() for h in reader.fieldnames or ())
    section = next((s for s, cols in required.items() if set(cols) <= set(header)), None)
    if section is None:
        raise error(
            f"{path}:1: header {', '.join(header) or '(empty)'} matches no table; expected e.g. "
            + "; ".join(f"{s}: {','.join(c)}" for s, c in required.items())
        )
    for data in reader:
        if None in data:
            raise error(f"{path}:{reader.line_num}: more cells than header columns")
        yield (
            section,
            reader.line_num,
            {k.strip(): v for k, v in data.items() if v not in ("", None)},
        )


def text_value(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | int | float):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    return str(value).strip()


def time_value(value: Any, key: str, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"{key} {value!r} is not a date-time like 2026-05-01T08:00") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
