"""How a command reaches Prefect without paying for a new server each time.

Measured here: a Prefect 3.9 server takes ~15 s to start, and a process with no server
configured starts an ephemeral one every time (10–18 s). So the first command that needs
Prefect starts one local server in the background and every later command, ``evidence
watch`` included, reuses it; operators open its UI. A shared server (``prefect.api_url``)
replaces it on many machines.

The local server is Prefect's own ``prefect server start``, configured the way Prefect is:
through a profile, ``evidence``, in the instance's Prefect home (EVIDENCE_HOME/prefect/
profiles.toml). The profile names the API URL, the server's host and port, and the URL its UI
calls: a server started on another port than 4200 (4200 taken) still serves a UI that calls
4200 unless ``PREFECT_SERVER_UI_API_URL`` says otherwise, and then shows another server's runs,
or none. The server's pid goes where ``prefect server start --background`` puts it
(``server.pid``), so ``PREFECT_HOME=$EVIDENCE_HOME/prefect prefect server stop`` stops it too,
and any ``prefect`` command run with that PREFECT_HOME talks to this instance's server.
(``--background`` itself is not used: it pipes the server's output to a process that exits at
once, and the server's log is then lost.)

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
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PrefectUnavailable
from pipeline.settings import Settings

START_TIMEOUT_S = 120.0
PROFILE = "evidence"
#: Where ``prefect server start --background`` records its server (prefect.cli._server_utils).
PID_FILE = "server.pid"
HOST = "127.0.0.1"


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


def profile_settings(settings: Settings, port: int) -> dict[str, str]:
    """The Prefect settings of the instance's local server on ``port``: where the clients,
    the server and the UI served by it find the API."""
    api = f"http://{HOST}:{port}/api"
    values = {
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_API_HOST": HOST,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    if settings.prefect.database_url:
        # On SQLite, two flow runs writing at once make the server answer 503 and the client
        # retry after 2 s; PostgreSQL takes concurrent runs (benchmark 5, BENCHMARKS.md).
        values["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = settings.prefect.database_url
    return values


def _profiles_path(settings: Settings) -> Path:
    return settings.prefect_home / "profiles.toml"


def write_profile(settings: Settings, values: dict[str, str]) -> None:
    """The instance's Prefect profile, made active (the whole file: it is the instance's)."""
    # JSON strings are TOML basic strings for what these values hold (URLs, numbers).
    lines = [f'active = "{PROFILE}"', "", f"[profiles.{PROFILE}]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in sorted(values.items())]
    path = _profiles_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.replace(path)


def read_profile(settings: Settings) -> dict[str, str]:
    """The instance profile's settings; empty when there is none (or it is unreadable)."""
    try:
        profiles = tomllib.loads(_profiles_path(settings).read_text())
    except (OSError, ValueError):
        return {}
    values = profiles.get("profiles", {}).get(PROFILE, {})
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


#: Where this project kept its server's pid before it used Prefect's ``server.pid``: a
#: server started by an older version is still found, to be stopped.
LEGACY_STATE = "server.json"


def _server_pid(settings: Settings) -> int | None:
    try:
        return int((settings.prefect_home / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        pass
    try:
        return int(json.loads((settings.prefect_home / LEGACY_STATE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_server(settings: Settings) -> ServerInfo | None:
    """The local server a previous command started, if its process lives and it answers
    (a server of another instance that took the port since does not count)."""
    pid = _server_pid(settings)
    profile = read_profile(settings)
    url = profile.get("PREFECT_API_URL")
    if pid is None or url is None or not _alive(pid) or not healthy(url):
        return None
    if profile.get("PREFECT_SERVER_DATABASE_CONNECTION_URL", "") != settings.prefect.database_url:
        # Reusing it would keep the runs in the other database without a word.
        raise PrefectUnavailable(
            "the local Prefect server runs on another database than prefect.database_url; "
            "restart it: evidence server stop && evidence server start"
        )
    return ServerInfo(url, pid, started=False)


def use_prefect(settings: Settings, *, start: bool = True) -> ServerInfo:
    """Point this process's Prefect at a server: the configured one, the running local one,
    or (``start``) a local one started now. Call before importing anything from Prefect."""
    os.environ.update(prefect_environment(settings))
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    if settings.prefect.api_url:
        url = settings.prefect.api_url.rstrip("/")
        if not healthy(url):
            raise PrefectUnavailable(f"Prefect server {url} does not answer")
        # `prefect` commands run with this PREFECT_HOME reach the shared server too.
        write_profile(
            settings, {"PREFECT_API_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        )
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
    variables; the rest of its settings come from the profile, so a variable of this process
    that would override the profile (an API URL, a port) is left out."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (
            k.startswith("PREFECT_")
            and (k.startswith("PREFECT_SERVER_") or k in ("PREFECT_API_URL", "PREFECT_PROFILE"))
        )
    }
    env.update(prefect_environment(settings))
    return env


def start_server(settings: Settings) -> ServerInfo:
    """Start the instance's local Prefect server in the background (``prefect server start``,
    its settings in the profile) and wait until it answers."""
    port = settings.prefect.port if _port_free(settings.prefect.port) else _free_port()
    values = profile_settings(settings, port)
    write_profile(settings, values)
    url = values["PREFECT_API_URL"]
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / "prefect-server.log"
    pid_file = settings.prefect_home / PID_FILE
    with log_path.open("ab") as log:
        # A new session: the server outlives this command and ignores its Ctrl-C.
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=server_environment(settings),
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(url, timeout=1.0):
        if proc.poll() is not None:
            pid_file.unlink(missing_ok=True)
            raise PrefectUnavailable(
                f"the Prefect server exited with code {proc.returncode}; see {log_path}"
            )
        if time.monotonic() > deadline:
            proc.terminate()
            pid_file.unlink(missing_ok=True)
            raise PrefectUnavailable(
                f"the Prefect server did not answer within {START_TIMEOUT_S:g} s; see {log_path}"
            )
        time.sleep(0.25)
    return ServerInfo(url, proc.pid, started=True)


def stop_server(settings: Settings) -> bool:
    """Stop the local server this instance started, as ``prefect server stop`` does (SIGTERM
    to the pid in ``server.pid``), and wait until it is gone; False when none was running."""
    pid_file = settings.prefect_home / PID_FILE
    pid = _server_pid(settings)
    # This process's last flow-run logs go to the server while it is up, not to nowhere
    # ("Error logging to API" on stderr at exit, the server gone).
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    pid_file.unlink(missing_ok=True)
    (settings.prefect_home / LEGACY_STATE).unlink(missing_ok=True)
    if pid is None or not _alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
