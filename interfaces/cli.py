"""The ``evidence`` command: the root app, its global options, and the command groups, one
module each in ``interfaces/commands/``. Commands parse, call the library, and turn domain
errors into clean messages and exit codes: 0 done, 1 some file hit a system error, 2 bad usage
or state.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from interfaces import output
from interfaces.commands import COMMAND_MODULES
from pipeline.errors import EvidenceError
from pipeline.storage.modes import UMASK

app = typer.Typer(
    help="Evidence ingestion and archiving for enforcement recording devices (执法全过程记录).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Data directory (default: $EVIDENCE_HOME).", show_default=False
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    if home is not None:
        os.environ["EVIDENCE_HOME"] = str(home)
    # Each file's outcome is printed as a line of its own; logs repeat it only when asked.
    handler = logging.StreamHandler()
    handler.setFormatter(output.InertFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, handlers=[handler])
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Entry point: domain errors become one clean line on stderr and exit code 2."""
    # Every file the instance makes (catalog, archive, logs, exports) is its user's alone:
    # a file others can read is a viewing that access supervision (调阅监督) never records.
    os.umask(UMASK)
    try:
        app()
    except EvidenceError as exc:
        # Unwrapped and without markup: the message names files and may hold brackets.
        output.err_console.print(f"[bold red]error[/] ({exc.code}): ", end="")
        output.err_console.print(output.text(exc), highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
