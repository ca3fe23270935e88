"""The command groups of the `evidence` CLI, one module per group (file name = group name),
plus the modules of the top-level commands (init and demo, ingest and watch, custody,
search, web, serve).

Each module has ``register(root: typer.Typer) -> None``, which adds its group (or its
top-level commands) to the root app. The order below is the order of ``evidence --help``.
"""

from __future__ import annotations

from types import ModuleType

from interfaces.commands import (
    access,
    cases,
    categories,
    compliance,
    custody,
    devices,
    dock,
    hold,
    ingest,
    init,
    keys,
    media,
    officers,
    quarantine,
    reports,
    retention,
    search,
    serve,
    server,
    stations,
    status,
    users,
    web,
)

COMMAND_MODULES: list[ModuleType] = [
    init,
    ingest,
    status,
    stations,
    dock,
    devices,
    officers,
    media,
    search,
    cases,
    categories,
    compliance,
    reports,
    access,
    retention,
    hold,
    quarantine,
    custody,
    keys,
    users,
    web,
    serve,
    server,
]
