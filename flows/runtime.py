"""How a command reaches Prefect without paying for a new server each time.

Measured here: a Prefect 3.9 server takes ~15 s to start, and a process with no server
configured starts an ephemeral one every time (10–18 s). So the first command that needs
Prefect starts one local server in the background (its database under EVIDENCE_HOME/prefect)
and every later command, ``evidence watch`` included, reuses it; operators open its UI. A
shared server (``prefect.api_url``) replaces it on many machines.

This module must not import Prefect: Prefect reads its settings from the environment when it
is first imported, so the environment is set here first.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PrefectUnavailable
from pipeline.settings import Settings

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ServerInfo:
    url: str  # the API URL, ".../api"
    pid: int | None  # None for a shared server we did not start
    started: bool  # True when this call started it

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Variables every Prefect process of this instance runs with."""
    return {
        "PREFECT_HOME": str(settings.prefect_home),
        # Offline machines: analytics only produce "database is locked" tracebacks here.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _state_file(settings: Settings) -> Path:
    return settings.prefect_home / "server.json"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def running_server(settings: Settings) -> ServerInfo | None:
    """The local server a previous command started, if it still answers."""
    path = _state_file(settings)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not healthy(state["url"]):
        return None
    if state.get("database_url", "") != settings.prefect.database_url:
        # Reusing it would keep the runs in the other database without a word.
        raise PrefectUnavailable(
            "the local Prefect server runs on another database than prefect.database_url; "
            "restart it: evidence server stop && evidence server start"
        )
    return ServerInfo(state["url"], state.get("pid"), started=False)


def use_prefect(settings: Settings, *, start: bool = True) -> ServerInfo:
    """Point this process's Prefect at a server: the configured one, the running local one,
    or (``start``) a local one started now. Call before importing anything from Prefect."""
    os.environ.update(prefect_environment(settings))
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    if settings.prefect.api_url:
        url = settings.prefect.api_url.rstrip("/")
        if not healthy(url):
            raise PrefectUnavailable(f"Prefect server {url} does not answer")
        info = ServerInfo(url, None, started=False)
    else:
        found = running_server(settings)
        if found is None and not start:
            raise PrefectUnavailable(
                "no local Prefect server runs; start one: evidence server start"
            )
        info = found or start_server(settings)
    os.environ["PREFECT_API_URL"] = info.url
    return info


def server_environment(settings: Settings) -> dict[str, str]:
    """The environment of the local server: this process's, with the instance's Prefect
    variables and its database."""
    env = {**os.environ, **prefect_environment(settings)}
    env.pop("PREFECT_API_URL", None)
    if settings.prefect.database_url:
        # On SQLite, two flow runs writing at once make the server answer 503 and the client
        # retry after 2 s; PostgreSQL takes concurrent runs (benchmark 5, BENCHMARKS.md).
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = settings.prefect.database_url
    return env


def start_server(settings: Settings) -> ServerInfo:
    """Start a local Prefect server in the background and wait until it answers."""
    port = settings.prefect.port if _port_free(settings.prefect.port) else _free_port()
    url = f"http://127.0.0.1:{port}/api"
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "prefect-server.log"
    env = server_environment(settings)
    command = [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("ab") as log:
        # A new session: the server outlives this command and ignores its Ctrl-C.
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(url, timeout=1.0):
        if proc.poll() is not None:
            raise PrefectUnavailable(
                f"the Prefect server exited with code {proc.returncode}; see {log_path}"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            raise PrefectUnavailable(
                f"the Prefect server did not answer within {START_TIMEOUT_S:g} s; see {log_path}"
            )
        time.sleep(0.25)
    state = {
        "url": url,
        "pid": proc.pid,
        "port": port,
        "database_url": settings.prefect.database_url,
    }
    _state_file(settings).write_text(json.dumps(state))
    return ServerInfo(url, proc.pid, started=True)


def stop_server(settings: Settings) -> bool:
    """Stop the local server this instance started; False when none was running."""
    path = _state_file(settings)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    pid = state.get("pid")
    stopped = False
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)  # the server and the workers it spawned
            stopped = True
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return stopped


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
