"""(Being built: issue 18.)"""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    pass
