"""Command groups of the `evidence` CLI, one module per capability.

Each module has ``register(app: typer.Typer) -> None`` that adds its commands or sub-apps.
"""

from __future__ import annotations

from types import ModuleType

COMMAND_MODULES: list[ModuleType] = []
