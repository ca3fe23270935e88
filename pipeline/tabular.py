"""Reading record files people write: YAML sections of mappings, or one CSV table, with the
line of every record, so that every problem can be reported as ``file:line: message``.

The files come from spreadsheets, other systems and people, so they are bounded before they
are trusted: their size, how deep YAML nests, how long a cell is; a key given twice, a section
given twice and control characters are refused rather than one of them silently winning.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from pipeline.errors import EvidenceError

Record = tuple[str, int, dict[str, Any]]  # section, line, fields
ErrorFactory = Callable[[str], EvidenceError]

#: A registry or a case list of a county is a few megabytes at most.
MAX_FILE_BYTES = 64 << 20
#: Records are mappings in lists in sections: a few levels; more is not a record file, and
#: PyYAML composes nesting by recursion (a file of "[[[[…" ends in RecursionError).
MAX_DEPTH = 8
#: Characters of one cell; the longest text a record holds is a written description.
MAX_CELL = 65_536
#: Dates a record may carry: the recorders' era, with room for retention deadlines; far
#: dates are typing mistakes or attacks (9999-12-31 + 15 days overflows).
FIRST_YEAR, LAST_YEAR = 1970, 2200


def read_records(
    path: Path, required: Mapping[str, tuple[str, ...]], error: ErrorFactory
) -> Iterator[Record]:
    """Records of a .yaml/.yml file (top-level sections named in ``required``) or of a .csv
    file (its section told by which ``required`` columns its header has). ``error`` makes the
    caller's error from a message."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise error(f"{path}: give a .yaml, .yml or .csv file")
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise error(f"{path}: larger than {MAX_FILE_BYTES >> 20} MiB: not a record file")
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets write a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from exc
    records = (
        _csv_records(path, text, required, error)
        if suffix == ".csv"
        else _yaml_records(path, text, tuple(required), error)
    )
    for section, line, data in records:
        problem = _cell_problem(data)
        if problem:
            raise error(f"{path}:{line}: {section}: {problem}")
        yield section, line, data


# ------------------------------------------------------------------------------------ YAML


class _TooDeep(yaml.YAMLError):
    def __init__(self, line: int) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing (before it can recurse too far)
    and a key given twice in one mapping (YAML forbids it; PyYAML keeps the last)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the constructor below says so
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_int(node)
    except ValueError:
        # More digits than Python converts (4300): kept as text, for the field that reads it
        # to refuse by name.
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def _yaml_records(
    path: Path, text: str, sections: tuple[str, ...], error: ErrorFactory
) -> Iterator[Record]:
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return
        if not isinstance(root, yaml.MappingNode):
            raise error(f"{path}:{root.start_mark.line + 1}: expected sections {sections}")
        seen: dict[Any, int] = {}
        for key_node, section_node in root.value:
            section = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if section not in sections:
                raise error(f"{path}:{line}: unknown section {section!r}; use {sections}")
            if section in seen:
                first = seen[section]
                raise error(f"{path}:{line}: section {section} is given twice (first at {first})")
            seen[section] = line
            if not isinstance(section_node, yaml.SequenceNode):
                raise error(f"{path}:{line}: {section} must be a list")
            for item in section_node.value:
                item_line = item.start_mark.line + 1
                if not isinstance(item, yaml.MappingNode):
                    raise error(f"{path}:{item_line}: each {section} entry must be a mapping")
                try:
                    data = loader.construct_mapping(item, deep=True)
                except (ValueError, OverflowError) as exc:
                    # PyYAML's own conversions: an integer of 5000 digits, a date past 9999.
                    raise error(f"{path}:{item_line}: {section}: {exc}") from exc
                if not all(isinstance(k, str) for k in data):
                    raise error(f"{path}:{item_line}: {section}: field names must be text")
                yield section, item_line, data
    except _TooDeep as exc:
        raise error(f"{path}:{exc.line}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    finally:
        loader.dispose()


# ------------------------------------------------------------------------------------- CSV


def _csv_records(
    path: Path, text: str, required: Mapping[str, tuple[str, ...]], error: ErrorFactory
) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = tuple(h.strip() for h in reader.fieldnames or ())
    except csv.Error as exc:
        raise error(f"{path}:1: header: {exc}") from exc
    section = next((s for s, cols in required.items() if set(cols) <= set(header)), None)
    if section is None:
        raise error(
            f"{path}:1: header {', '.join(header) or '(empty)'} matches no table; expected e.g. "
            + "; ".join(f"{s}: {','.join(c)}" for s, c in required.items())
        )
    while True:
        try:
            data = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module's own bound on a cell (128 Ki characters); say which column.
            line = reader.reader.line_num  # DictReader's own counts only the rows it gave
            column = _column_at(text, line, csv.field_size_limit())
            field = header[column] if column is not None and column < len(header) else "a cell"
            if "field larger" in str(exc):
                raise error(
                    f"{path}:{line}: {section}: {field}: a cell holds more than {MAX_CELL} "
                    "characters"
                ) from exc
            raise error(f"{path}:{line}: {section}: {field}: {exc}") from exc
        if None in data:
            raise error(f"{path}:{reader.line_num}: more cells than header columns")
        yield (
            section,
            reader.line_num,
            {k.strip(): v for k, v in data.items() if v not in ("", None)},
        )


def _column_at(text: str, line: int, limit: int) -> int | None:
    """The column of the cell on ``line`` that is longer than ``limit`` (None: not found)."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    column, length, quoted = 0, 0, False
    for char in text[start:]:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            column, length = column + 1, 0
            continue
        elif char == "\n" and not quoted:
            return None
        length += 1
        if length > limit:
            return column
    return None


# ----------------------------------------------------------------------------------- cells


def _cell_problem(data: Mapping[str, Any]) -> str | None:
    """A field whose text is too long or holds control characters, nested values included."""
    for key, value in data.items():
        for text in _texts(value):
            if len(text) > MAX_CELL:
                return f"{key}: a cell holds more than {MAX_CELL} characters"
            bad = next((c for c in text if _is_control(c)), None)
            if bad is not None:
                return f"{key}: control character U+{ord(bad):04X} in {text[:40]!r}"
    return None


def _texts(value: Any) -> Iterator[str]:
    """Every string in a value, each list or mapping visited once (YAML aliases can repeat
    one a billion times over, and can make it hold itself)."""
    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, list | dict) and id(v) not in seen:
            seen.add(id(v))
            stack.extend([*v.keys(), *v.values()] if isinstance(v, dict) else v)


def _is_control(char: str) -> bool:
    """C0 and C1 controls (a NUL, terminal escapes), except tab and line breaks, which a
    written description may hold."""
    code = ord(char)
    return (code < 0x20 and char not in "\t\n\r") or 0x7F <= code <= 0x9F


def text_value(data: Mapping[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{key} must be text, not {value}")
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
    if not FIRST_YEAR <= moment.year < LAST_YEAR:
        raise ValueError(f"{key} {value!s}: a date must lie between {FIRST_YEAR} and {LAST_YEAR}")
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
