"""The local Prefect server is Prefect's own, configured through the instance's profile: its
UI calls this instance's API, whatever port the server had to take."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flows.runtime import read_profile, running_server, start_server, stop_server
from tests.conftest import make_settings


def _call(url: str, body: dict[str, Any] | None = None) -> Any:
    """One API call; a 503 is retried, as Prefect's own client does (a SQLite server answers
    it while another write holds the database)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    for attempt in range(40):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == 39:
                raise
            time.sleep(0.5)  # the server's own advice: retry after a moment


def test_the_ui_of_a_server_on_another_port_shows_this_instances_runs(tmp_path: Path) -> None:
    with socket.socket() as taken:
        # The configured port is taken (another instance, another program): the server
        # starts on a free one, and its UI must call that one.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        configured = taken.getsockname()[1]
        settings = make_settings(tmp_path / "home", prefect={"port": configured})
        server = start_server(settings)
        try:
            assert server.started and f":{configured}/" not in server.url
            ui = _call(f"{server.ui_url}/ui-settings")
            assert ui["api_url"] == server.url
            # The profile names it for every `prefect` command run with this PREFECT_HOME.
            profile = read_profile(settings)
            assert profile["PREFECT_API_URL"] == profile["PREFECT_SERVER_UI_API_URL"] == server.url
            assert (settings.prefect_home / "server.pid").read_text() == str(server.pid)

            flow = _call(f"{server.url}/flows/", {"name": "intake-station"})
            run = {"flow_id": flow["id"], "name": "intake DOCK-01 1 file 09:21"}
            made = _call(f"{server.url}/flow_runs/", run)
            listed = _call(f"{ui['api_url']}/flow_runs/filter", {})
            assert [r["name"] for r in listed] == ["intake DOCK-01 1 file 09:21"]
            assert listed[0]["id"] == made["id"]

            # The next command reuses it.
            again = running_server(settings)
            assert again is not None and again.url == server.url and not again.started
        finally:
            assert stop_server(settings)
    assert running_server(settings) is None
    assert not (settings.prefect_home / "server.pid").exists()


def test_deploy_ships_the_automations_and_replaces_them_when_run_again(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client

    from flows.automations import FAILED_RUN, SILENT_HOURS, SILENT_STATION, deploy_automations

    with get_client(sync_client=True) as client:
        assert deploy_automations(client) == [FAILED_RUN, SILENT_STATION]
        assert deploy_automations(client) == [FAILED_RUN, SILENT_STATION]
        (failed,) = client.read_automations_by_name(FAILED_RUN)
        (silent,) = client.read_automations_by_name(SILENT_STATION)
    assert failed.trigger.expect == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert "ingest-station" in str(failed.trigger.match_related)
    assert silent.trigger.posture.value == "Proactive"
    assert silent.trigger.expect == {"evidence.station.swept"}
    assert silent.trigger.for_each == {"prefect.resource.id"}
    assert silent.trigger.within.total_seconds() == SILENT_HOURS * 3600
    # No notification block named evidence-operators on this server: the alarms still fire.
    assert [a.type for a in failed.actions] == ["do-nothing"]
