"""Command groups of the `evidence` CLI, one module per capability.

Each module has ``register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None`` that
adds its commands to the root app, or to an existing group (``groups["media"]`` …). List the
module in COMMAND_MODULES below.
"""

from __future__ import annotations

from types import ModuleType

from interfaces.commands import access, cases, custody, registry, search, serve

COMMAND_MODULES: list[ModuleType] = [registry, custody, access, cases, serve, search]
