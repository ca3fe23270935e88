"""Enforcement categories and retention classes, read from config/categories.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.models import Category
from pipeline.settings import CONFIG_DIR, Settings

DEFAULT_FILE = CONFIG_DIR / "categories.toml"


@dataclass(frozen=True)
class Categories:
    by_id: dict[str, Category]
    retention_days: dict[str, int]  # class -> days; 0 = permanent

    def get(self, category_id: str) -> Category:
        """The category ``category_id`` names: its id (``seizure``), its zh-CN name
        (``查封扣押``) or English name, or a part of exactly one zh-CN name (``查封``)."""
        found = self.by_id.get(category_id) or self._by_name(category_id.strip())
        if found is not None:
            return found
        known = ", ".join(f"{c.id} {c.name_zh}" for c in self.by_id.values())
        raise ConfigError(f"unknown category {category_id!r}; known: {known}")

    def _by_name(self, text: str) -> Category | None:
        if not text:
            return None
        folded = text.casefold()
        for c in self.by_id.values():
            if folded in (c.id.casefold(), c.name_zh.casefold(), c.name_en.casefold()):
                return c
        partial = [c for c in self.by_id.values() if text in c.name_zh]
        return partial[0] if len(partial) == 1 else None

    def listing(self) -> list[Category]:
        """Every category, in the order of the file."""
        return list(self.by_id.values())

    def retention_of(self, category_id: str) -> int:
        return self.retention_days[self.get(category_id).retention]


def load_categories(settings: Settings) -> Categories:
    path = Path(settings.cases.categories_file) if settings.cases.categories_file else DEFAULT_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read categories: {exc}") from exc
    retention = {str(k): int(v) for k, v in data.get("retention", {}).items()}
    found: dict[str, Category] = {}
    for i, raw in enumerate(data.get("category", []), start=1):
        try:
            cat = Category(
                id=str(raw["id"]),
                name_zh=str(raw["name_zh"]),
                name_en=str(raw["name_en"]),
                mandatory_av=bool(raw.get("mandatory_av", False)),
                retention=str(raw.get("retention", "standard")),
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: category #{i} has no {exc.args[0]}") from None
        if cat.retention not in retention:
            raise ConfigError(
                f"{path}: category {cat.id}: unknown retention class {cat.retention!r}"
            )
        found[cat.id] = cat
    if not found:
        raise ConfigError(f"{path}: defines no [[category]]")
    return Categories(found, retention)
