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
        try:
            return self.by_id[category_id]
        except KeyError:
            known = ", ".join(sorted(self.by_id))
            raise ConfigError(f"unknown category {category_id!r}; known: {known}") from None

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
