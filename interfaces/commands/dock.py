"""`evidence dock push`: the dock agent on a station PC (docs/station-api.md).

It runs where there is no EVIDENCE_HOME and no catalog: it reads settings (the ignore
patterns, the stability wait) and never opens an instance.
"""

from __future__ import annotations

import enum
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.filesize import decimal
from rich.progress import Progress, TaskID
from rich.text import Text

from docks import push, transfer, tus
from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.errors import ConfigError, EvidenceError

log = logging.getLogger(__name__)

app = typer.Typer(help="The dock agent: a station PC pushes its dump folder.", no_args_is_help=True)

STATE_STYLE = {
    "released": "green",
    "received": "blue",
    "waiting": "blue",
    "sending": "blue",
    "held": "yellow",
    "failed": "bold red",
    "refused": "magenta",
    "vanished": "bold magenta",
}


class Release(enum.StrEnum):
    move = "move"
    delete = "delete"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dock")
    app.command("push")(dock_push)


def dock_push(
    folder: Annotated[
        Path, typer.Argument(metavar="DIR", help="The dump folder: one sub-folder per recorder.")
    ],
    server: Annotated[str, typer.Option("--server", help="The archive server's URL.")],
    token_file: Annotated[
        Path, typer.Option("--token-file", help="The station's token (evidence stations token).")
    ],
    station: Annotated[str, typer.Option("--station", help="This station's id, e.g. DOCK-07.")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep running: rescan, upload, keep alive.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="--watch: seconds between scans.")
    ] = 10.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Files uploaded at once.")
    ] = 4,
    limit_rate: Annotated[
        str | None,
        typer.Option("--limit-rate", help="Bandwidth cap for the whole agent: 500K, 20M, 1G."),
    ] = None,
    release: Annotated[
        Release, typer.Option("--release", help="A verified file: move to .ingested/, or delete.")
    ] = Release.move,
    state_file: Annotated[
        Path | None, typer.Option("--state-file", help="Default: DIR/.evidence-push.json.")
    ] = None,
    wait_s: Annotated[
        float, typer.Option("--wait", min=0, help="Seconds to wait for the server's verification.")
    ] = 600.0,
    cacert: Annotated[
        Path | None, typer.Option("--cacert", help="CA file for the server's certificate.")
    ] = None,
    stable_s: Annotated[
        float | None,
        typer.Option(
            "--stable-s", min=0, help="Unchanged this long = complete (default: watch.stable_s)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Upload the station's complete recordings to the archive server, resumably; free each
    local file only once the server has verified its stored copy.

    Files still being written wait; files already in the archive are freed without being sent.
    Exit 0 when every file was released or waits (on the server or still being written),
    1 when a file is held or failed (the reason is printed), 2 for bad usage or a refused token.

    Example: evidence dock push --server https://archive.example/ --token-file
    /etc/evidence/dock-07.token --station DOCK-07 --watch /srv/dock
    """
    settings = common.settings()
    token = _token(token_file)
    try:
        rate = transfer.parse_rate(limit_rate) if limit_rate else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--limit-rate") from None
    options = push.push_options(
        station,
        folder,
        settings.ingest.ignore,
        settings.watch.stable_s if stable_s is None else stable_s,
        state_file=state_file,
        encodings=tuple(settings.ingest.legacy_encodings),
        release=release.value,
        concurrency=concurrency,
        wait_s=wait_s,
        interval_s=interval,
        chunk_bytes=settings.dock.chunk_bytes,
        writer_check=settings.watch.writer_check,
    )
    limiter = transfer.TokenBucket(rate) if rate else None
    client = tus.DockClient(server, station, token, cacert=cacert, limiter=limiter)
    summary = _run(client, options, watch=watch, quiet=json_out)
    if json_out:
        output.print_json(_plain(summary))
    else:
        _print_summary(summary)
    raise typer.Exit(0 if summary.ok else 1)


def _token(path: Path) -> str:
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"令牌文件不可读 token file {path} cannot be read: {exc}") from None
    if not token or any(c.isspace() for c in token):
        raise ConfigError(f"令牌文件无效 token file {path} holds no token (one line, no spaces)")
    return token


def _run(
    client: tus.DockClient, options: push.PushOptions, *, watch: bool, quiet: bool
) -> push.PushSummary:
    stop = threading.Event()
    if watch:  # systemd stops a unit with SIGTERM: end as on Ctrl-C, the state saved
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    terminal = output.err_console.is_terminal and not quiet
    try:
        if terminal:
            with output.ingest_progress(disable=False) as bar:
                progress: push.PushProgress = _Bars(bar)
                return push.Agent(client, options, progress=progress).run(watch=watch, stop=stop)
        progress = push.PushProgress() if quiet else _Lines()
        return push.Agent(client, options, progress=progress).run(watch=watch, stop=stop)
    except tus.Unreachable as exc:
        # Nothing was sent, nothing freed: a network fault, not a usage error (exit 1).
        output.err_console.print(f"[bold red]error[/] ({exc.code}): ", end="")
        output.err_console.print(output.text(exc), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except EvidenceError:
        raise
    except Exception as exc:  # never a traceback: say what stopped, the state file is saved
        log.exception("dock push")
        raise EvidenceError(
            f"推送中断 dock push stopped: {type(exc).__name__}: {exc}; the state is saved, "
            "uploads resume from the server's offset on the next run"
        ) from None


def _outcome_line(outcome: push.FileOutcome) -> Text:
    reason = f" — {outcome.reason}" if outcome.reason else ""
    styled = (f"{outcome.state:<9}", STATE_STYLE.get(outcome.state, ""))
    return output.line(styled, " ", outcome.path, reason)


class _Lines(push.PushProgress):
    """Plain lines for a log or a pipe: a file's start and its end."""

    def note(self, message: str) -> None:
        output.err_console.print(output.text(message))

    def started(self, path: str, size: int) -> None:
        output.console.print(output.line(("sending  ", "blue"), " ", path, f" ({decimal(size)})"))

    def ended(self, outcome: push.FileOutcome) -> None:
        output.console.print(_outcome_line(outcome))


class _Bars(push.PushProgress):
    """A terminal: a bar per file being sent, in bytes; a line per file as it ends."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def note(self, message: str) -> None:
        self.bar.console.print(output.text(message))

    def started(self, path: str, size: int) -> None:
        with self.lock:
            if path not in self.tasks:
                self.tasks[path] = self.bar.add_task(output.shown(path), total=size or None)

    def offset(self, path: str, offset: int) -> None:
        task = self.tasks.get(path)
        if task is not None:
            self.bar.update(task, completed=offset)

    def sent(self, path: str, n: int) -> None:
        task = self.tasks.get(path)
        if task is not None:
            self.bar.advance(task, n)

    def ended(self, outcome: push.FileOutcome) -> None:
        with self.lock:
            task = self.tasks.pop(outcome.path, None)
        if task is not None:
            self.bar.remove_task(task)
        self.bar.console.print(_outcome_line(outcome))


def _plain(summary: push.PushSummary) -> dict[str, Any]:
    data: dict[str, Any] = output.to_jsonable(summary)
    return data


def _print_summary(s: push.PushSummary) -> None:
    output.console.print(
        output.text(
            f"{output.plural(s.uploaded, 'file')} uploaded ({decimal(s.bytes_sent)} sent, "
            f"{decimal(s.bytes_resent)} re-sent), {s.skipped_present} already on the server, "
            f"{s.released} released, {s.held} held, {s.failed} failed, {s.waiting} waiting"
        )
    )
    for f in s.files:
        if f.state in ("held", "failed"):
            output.console.print(_outcome_line(f))
