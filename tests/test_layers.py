"""The layers hold: each imports only what is below it, and interfaces own no transaction.

    interfaces/  (CLI; later the web and the station API)   may import flows, docks, pipeline
    flows/       Prefect orchestration                      may import docks, pipeline
    docks/       the dock-side runtime (watchdog)           may import pipeline
    pipeline/    the domain                                 imports none of the above

Read from the source with ``ast``, so an import inside a function counts as much as one at
the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

WEB = {"fastapi", "starlette", "uvicorn", "jinja2"}
FORBIDDEN = {
    "pipeline": {"prefect", "watchdog", "typer", "rich", "flows", "docks", "interfaces"} | WEB,
    "docks": {"prefect", "typer", "rich", "flows", "interfaces"} | WEB,
    "flows": {"typer", "rich", "interfaces"} | WEB,
    "interfaces": {"prefect", "sqlalchemy", "alembic"},
}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _sources(layer: str) -> list[Path]:
    return sorted(
        p for p in (REPO / layer).rglob("*.py") if "migrations" not in p.relative_to(REPO).parts
    )


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    offending = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for path in _sources(layer)
        for line, module in _imports(path)
        if module.split(".")[0] in FORBIDDEN[layer]
    ]
    assert offending == []


def test_interfaces_open_no_transaction() -> None:
    """Each command parses, calls one use case and prints: the use case owns its
    transaction (``catalog.read()`` or ``catalog.begin()``), never the interface."""
    offending = []
    for path in _sources("interfaces"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("begin", "read")
                and not node.args
            ):
                offending.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.func.attr}()")
    assert offending == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from prefect import flow\n    import sqlalchemy.orm\n")
    assert _imports(source) == [(2, "prefect"), (3, "sqlalchemy.orm")]
