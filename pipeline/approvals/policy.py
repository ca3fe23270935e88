"""The access policy (config/access-policy.toml): which accesses need approval first.

The rule, in one sentence: **an access needs approval when any rule of the policy matches
it, and only then.** An access is a user doing one :class:`Action` to one media item; a rule
matches when every condition it states holds (a condition left out holds always):

- ``actions``: the action is one of these;
- ``where``: ``own`` — the item is of the user's department tree or their own recording —
  or ``other`` (another department: 其他部门);
- ``sealed``: the item is a record of a sealed case file (已归档案卷);
- ``categories``: the item is linked to a case of one of these categories;
- ``roles`` / ``except_roles``: the user holds one of these roles / holds none of those.

The policy is data: the rules are read from the file, checked (unknown keys, actions,
roles, categories are refused, naming the file and the rule) and matched here by a pure
function (:func:`requiring`). What the roles reach is not the policy's business
(``pipeline.accounts.permissions``); ``pipeline.approvals.enforce`` puts the two together.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pipeline.accounts.users import UserRole
from pipeline.cases.categories import DEFAULT_FILE as CATEGORIES_FILE
from pipeline.cases.categories import load_categories
from pipeline.errors import ConfigError
from pipeline.models import Labelled
from pipeline.settings import CONFIG_DIR, Settings

DEFAULT_FILE = CONFIG_DIR / "access-policy.toml"

_E = TypeVar("_E", bound=Labelled)


class Action(Labelled):
    """What a user does to a media item that the policy may ask approval for."""

    VIEW_PROXY = "view-proxy", "调阅（代理文件、缩略图、元数据）"
    VIEW_ORIGINAL = "view-original", "在页面中查看原件"
    DOWNLOAD_ORIGINAL = "download-original", "复制原始文件"
    EXPORT = "export", "导出移送材料"


class Where(Labelled):
    OWN = "own", "本部门"
    OTHER = "other", "其他部门"


@dataclass(frozen=True)
class Facts:
    """What the policy knows of one access: the action, the user's roles, whether the item
    is of their own department (tree, or their own recording), whether it is a record of a
    sealed case, and the categories of the cases it is linked to."""

    action: Action
    roles: frozenset[UserRole]
    own: bool
    sealed: bool
    categories: frozenset[str]


@dataclass(frozen=True)
class Rule:
    """One [[rule]] of the policy: when it matches, the access needs approval."""

    id: str
    name_zh: str
    actions: frozenset[Action] = frozenset(Action)
    where: Where | None = None
    sealed: bool | None = None
    categories: frozenset[str] | None = None
    roles: frozenset[UserRole] | None = None
    except_roles: frozenset[UserRole] = frozenset()

    def matches(self, facts: Facts) -> bool:
        if facts.action not in self.actions:
            return False
        if self.where is not None and (self.where is Where.OWN) != facts.own:
            return False
        if self.sealed is not None and self.sealed != facts.sealed:
            return False
        if self.categories is not None and self.categories.isdisjoint(facts.categories):
            return False
        if self.roles is not None and self.roles.isdisjoint(facts.roles):
            return False
        return self.except_roles.isdisjoint(facts.roles)


@dataclass(frozen=True)
class Policy:
    """The rules, in the order of the file, and where they were read from."""

    rules: tuple[Rule, ...]
    source: str = ""


#: A policy that asks approval for nothing: the behaviour before approvals existed.
NO_APPROVALS = Policy(())


def requiring(policy: Policy, facts: Facts) -> tuple[Rule, ...]:
    """The rules that ask approval for the access ``facts`` describes (empty: none needed)."""
    return tuple(rule for rule in policy.rules if rule.matches(facts))


def policy_of(settings: Settings) -> Policy:
    """The policy the settings name (``approvals.policy_file``, else the shipped file).
    Read again when it (or the categories file its rules name ids of) changes, so an edited
    policy applies without a restart; else the one read is kept (every viewing asks)."""
    path = Path(settings.approvals.policy_file or DEFAULT_FILE).expanduser()
    categories = Path(settings.cases.categories_file or CATEGORIES_FILE)
    try:
        stat, named = path.stat(), categories.stat()
    except OSError as exc:
        raise ConfigError(f"{exc.filename}: cannot read the access policy: {exc.strerror}") from exc
    key = (str(path), stat.st_mtime_ns, stat.st_size, str(categories), named.st_mtime_ns)
    found = _READ.get(key)
    if found is None:
        found = _read(path, frozenset(load_categories(settings).by_id))
        _READ.clear()  # one policy is in force: the one the settings name now
        _READ[key] = found
    return found


_READ: dict[tuple[str, int, int, str, int], Policy] = {}


_KEYS = {"id", "name_zh", "actions", "where", "sealed", "categories", "roles", "except_roles"}


def _read(path: Path, categories: frozenset[str]) -> Policy:
    """The rules of the file at ``path``, checked; ``categories``: the category ids known."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the access policy: {exc}") from exc
    unknown = set(data) - {"rule"}
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {sorted(unknown)}; only [[rule]]")
    raw = data.get("rule", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: rule must be an array of tables ([[rule]])")
    rules = [_rule(path, i, entry, categories) for i, entry in enumerate(raw, start=1)]
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(f"{path}: rule id {rule.id!r} is given twice")
        seen.add(rule.id)
    return Policy(tuple(rules), os.fspath(path))


def _rule(path: Path, number: int, entry: Any, categories: frozenset[str]) -> Rule:
    at = f"{path}: rule #{number}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{at}: not a table")
    if set(entry) - _KEYS:
        raise ConfigError(f"{at}: unknown key(s) {sorted(set(entry) - _KEYS)}")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise ConfigError(f"{at}: has no id")
    at = f"{path}: rule {rule_id!r}"
    sealed = entry.get("sealed")
    if sealed is not None and not isinstance(sealed, bool):
        raise ConfigError(f"{at}: sealed is true or false")
    named = entry.get("categories")
    found = None if named is None else frozenset(_strings(at, "categories", named))
    if found is not None and found - categories:
        raise ConfigError(
            f"{at}: unknown categories {sorted(found - categories)}; "
            f"known: {', '.join(sorted(categories))}"
        )
    place, roles = entry.get("where"), entry.get("roles")
    return Rule(
        id=rule_id.strip(),
        name_zh=str(entry.get("name_zh", rule_id)),
        actions=frozenset(_values(at, "actions", Action, entry.get("actions", list(Action)))),
        where=None if place is None else _values(at, "where", Where, [place])[0],
        sealed=sealed,
        categories=found,
        roles=None if roles is None else frozenset(_values(at, "roles", UserRole, roles)),
        except_roles=frozenset(
            _values(at, "except_roles", UserRole, entry.get("except_roles", []))
        ),
    )


def _strings(at: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{at}: {key} is a list of strings")
    return value


def _values(at: str, key: str, kind: type[_E], value: Any) -> list[_E]:
    found = []
    for text in _strings(at, key, value):
        try:
            found.append(kind(text))
        except ValueError:
            known = ", ".join(m.value for m in kind)
            raise ConfigError(f"{at}: {key}: unknown {text!r}; known: {known}") from None
    return found
