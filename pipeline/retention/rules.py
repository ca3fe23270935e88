"""The retention rules (config/retention.toml): retention classes and what names them.

A class is a period: days, calendar months, ``permanent``, or ``case`` (as long as the case
file: permanent while the record is linked to a case of that category). The rules name the
class of footage linked to no case (``unlinked``), of an important-file mark (``marked``), of
an accidental or blank recording a person calls invalid (``invalid``), per kind of recording
(``[kinds]``) and per enforcement category (``[categories]``, else the category's
``retention`` in config/categories.toml, whose ``[retention]`` days, 0 = permanent, are
classes too). How a record's retention follows from them is :mod:`pipeline.retention.derive`.

The rules are data: read from the file, checked (unknown keys, classes, kinds, categories
and bad patterns are refused, naming the file) and cached until the file changes, like the
access policy (:func:`pipeline.approvals.policy.policy_of`).
"""

from __future__ import annotations

import calendar
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pipeline.cases.categories import DEFAULT_FILE as CATEGORIES_FILE
from pipeline.cases.categories import load_categories
from pipeline.errors import ConfigError
from pipeline.models import MediaKind
from pipeline.settings import CONFIG_DIR, Settings

DEFAULT_FILE = CONFIG_DIR / "retention.toml"


@dataclass(frozen=True)
class Period:
    """How long a class keeps a record: ``days`` or ``months`` (calendar months, in the
    rules' zone) from its start; or for good (``permanent``, or ``case`` while linked)."""

    days: int = 0
    months: int = 0
    permanent: bool = False
    case: bool = False

    @property
    def forever(self) -> bool:
        return self.permanent or self.case

    def until(self, start: datetime, zone: ZoneInfo) -> datetime | None:
        """When a record that starts at ``start`` may go (None: never)."""
        if self.forever:
            return None
        local = start.astimezone(zone)
        if self.months:
            local = add_months(local, self.months)
        return (local + timedelta(days=self.days)).astimezone(start.tzinfo)

    def said_zh(self) -> str:
        if self.case:
            return "随案卷永久保存"
        if self.permanent:
            return "永久"
        return f"{self.months} 个月" if self.months else f"{self.days} 天"

    def said_en(self) -> str:
        if self.case:
            return "as long as the case file"
        if self.permanent:
            return "permanent"
        if self.months:
            return f"{self.months} month{'s' if self.months != 1 else ''}"
        return f"{self.days} day{'s' if self.days != 1 else ''}"


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` that many calendar months later; the last day of a shorter month when the
    day does not exist there (08-31 + 6 months = 02-28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class RetentionClass:
    id: str
    name_zh: str
    name_en: str
    period: Period

    def said(self) -> str:
        """``未关联案件的记录 6 个月 (unlinked footage, 6 months)``."""
        return f"{self.name_zh} {self.period.said_zh()} ({self.name_en}, {self.period.said_en()})"


@dataclass(frozen=True)
class RetentionRules:
    """The rules in force: classes by id, the classes the rules name, the mark patterns, the
    zone months count in, and where they were read from."""

    classes: dict[str, RetentionClass]
    unlinked: str
    marked: str
    invalid: str
    kinds: dict[str, str] = field(default_factory=dict)  # MediaKind value -> class id
    categories: dict[str, str] = field(default_factory=dict)  # category id -> class id
    category_names: dict[str, str] = field(default_factory=dict)  # category id -> name_zh
    filename_patterns: tuple[re.Pattern[str], ...] = ()
    metadata_fields: tuple[str, ...] = ()
    metadata_words: tuple[re.Pattern[str], ...] = ()
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    permanent_lock_years: int = 100
    floor_days: int = 184  # store.s3.retention_days: every lock's floor, from ingest
    source: str = ""

    def of(self, class_id: str) -> RetentionClass:
        found = self.classes.get(class_id)
        if found is None:
            known = ", ".join(sorted(self.classes))
            raise ConfigError(f"unknown retention class {class_id!r}; known: {known}")
        return found

    def own_class(self, kind: str) -> RetentionClass:
        """A record's own class: by its kind, else the class of unlinked footage."""
        return self.of(self.kinds.get(kind, self.unlinked))

    def category_class(self, category_id: str) -> RetentionClass:
        """The class of a case category; an unknown category (a case of a category removed
        from the file since) keeps its records as unlinked footage is kept."""
        return self.of(self.categories.get(category_id, self.unlinked))

    def assignable(self) -> list[RetentionClass]:
        """The classes a person may assign: every one but ``case`` ones."""
        return [c for c in self.classes.values() if not c.period.case]


def rules_of(settings: Settings) -> RetentionRules:
    """The rules the settings name (``retention.rules_file``, else the shipped file), read
    again when it or the categories file changes; else the ones read are kept."""
    path = Path(settings.retention.rules_file or DEFAULT_FILE).expanduser()
    categories = Path(settings.cases.categories_file or CATEGORIES_FILE)
    try:
        stat, named = path.stat(), categories.stat()
    except OSError as exc:
        raise ConfigError(
            f"{exc.filename}: cannot read the retention rules: {exc.strerror}"
        ) from exc
    key = (
        str(path),
        stat.st_mtime_ns,
        stat.st_size,
        str(categories),
        named.st_mtime_ns,
        settings.devices.timezone,
        settings.retention.permanent_lock_years,
        settings.store.s3.retention_days,
    )
    found = _READ.get(key)
    if found is None:
        found = _read(path, settings)
        _READ.clear()  # one set of rules is in force: the one the settings name now
        _READ[key] = found
    return found


_READ: dict[tuple[Any, ...], RetentionRules] = {}

_KEYS = {"unlinked", "marked", "invalid", "class", "kinds", "categories", "marks"}
_CLASS_KEYS = {"name_zh", "name_en", "days", "months", "permanent", "case"}
_MARK_KEYS = {"filename_patterns", "metadata_fields", "metadata_words"}


def _read(path: Path, settings: Settings) -> RetentionRules:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the retention rules: {exc}") from exc
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {sorted(unknown)}")
    found = load_categories(settings)
    # categories.toml's [retention]: days, 0 = permanent; named by their ids.
    classes = {
        name: RetentionClass(
            name, name, name, Period(permanent=True) if days <= 0 else Period(days)
        )
        for name, days in found.retention_days.items()
    }
    raw = _table(path, "class", data.get("class", {}))
    for name, entry in raw.items():
        classes[name] = _class(path, name, entry)
    at = str(path)
    named = {
        k: _class_id(path, k, data.get(k, k), classes) for k in ("unlinked", "marked", "invalid")
    }
    for role, class_id in named.items():
        if classes[class_id].period.case:
            raise ConfigError(f"{at}: {role} = {class_id!r}: a `case` class is for categories only")
    kinds = {
        str(k): _class_id(path, f"kinds.{k}", v, classes)
        for k, v in _table(path, "kinds", data.get("kinds", {})).items()
    }
    known_kinds = {k.value for k in MediaKind}
    if set(kinds) - known_kinds:
        raise ConfigError(
            f"{at}: [kinds]: unknown kinds {sorted(set(kinds) - known_kinds)}; "
            f"known: {', '.join(sorted(known_kinds))}"
        )
    for kind, class_id in kinds.items():
        if classes[class_id].period.case:
            raise ConfigError(f"{at}: kinds.{kind}: a `case` class is for categories only")
    overrides = _table(path, "categories", data.get("categories", {}))
    if set(overrides) - set(found.by_id):
        raise ConfigError(
            f"{at}: [categories]: unknown categories {sorted(set(overrides) - set(found.by_id))}; "
            f"known: {', '.join(found.by_id)}"
        )
    categories = {c.id: c.retention for c in found.by_id.values()}
    categories.update({str(k): str(v) for k, v in overrides.items()})
    for cat, class_id in categories.items():
        _class_id(path, f"categories.{cat}", class_id, classes)
    marks = _table(path, "marks", data.get("marks", {}))
    if set(marks) - _MARK_KEYS:
        raise ConfigError(f"{at}: [marks]: unknown keys {sorted(set(marks) - _MARK_KEYS)}")
    return RetentionRules(
        classes=classes,
        unlinked=named["unlinked"],
        marked=named["marked"],
        invalid=named["invalid"],
        kinds=kinds,
        categories=categories,
        category_names={c.id: c.name_zh for c in found.by_id.values()},
        filename_patterns=tuple(
            _regex(path, p) for p in _strings(path, "filename_patterns", marks)
        ),
        metadata_fields=tuple(_strings(path, "metadata_fields", marks)),
        metadata_words=tuple(_word(w) for w in _strings(path, "metadata_words", marks)),
        zone=settings.zone,
        permanent_lock_years=settings.retention.permanent_lock_years,
        floor_days=settings.store.s3.retention_days,
        source=os.fspath(path),
    )


def _table(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {key} must be a table ([{key}])")
    return value


def _class(path: Path, name: str, entry: Any) -> RetentionClass:
    at = f"{path}: class {name!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{at}: not a table")
    if set(entry) - _CLASS_KEYS:
        raise ConfigError(f"{at}: unknown key(s) {sorted(set(entry) - _CLASS_KEYS)}")
    given = [k for k in ("days", "months", "permanent", "case") if k in entry]
    if len(given) != 1:
        raise ConfigError(f"{at}: give exactly one of days, months, permanent, case")
    (key,) = given
    value = entry[key]
    if key in ("permanent", "case"):
        if value is not True:
            raise ConfigError(f"{at}: {key} = true, or leave it out")
        period = Period(permanent=key == "permanent", case=key == "case")
    else:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100 * 366:
            raise ConfigError(f"{at}: {key} is a whole number from 1")
        period = Period(days=value) if key == "days" else Period(months=value)
    return RetentionClass(
        name, str(entry.get("name_zh", name)), str(entry.get("name_en", name)), period
    )


def _class_id(path: Path, key: str, value: Any, classes: dict[str, RetentionClass]) -> str:
    if not isinstance(value, str) or value not in classes:
        raise ConfigError(
            f"{path}: {key} = {value!r}: not a retention class; known: {', '.join(sorted(classes))}"
        )
    return value


def _strings(path: Path, key: str, table: dict[str, Any]) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{path}: marks.{key} is a list of strings")
    return value


def _regex(path: Path, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{path}: marks.filename_patterns: {pattern!r}: {exc}") from exc


def _word(word: str) -> re.Pattern[str]:
    """A word of a metadata field, as a word: letters and digits may not touch it."""
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(word)}(?![0-9A-Za-z])", re.IGNORECASE)
