"""The Prefect automations `evidence deploy` ships: operators hear of what needs a person.

- ``evidence: a run failed`` — an ingest run (a file hit a system error: ``FilesFailed``) or a
  fixity run (``ProblemsFound``) ended Failed, or one crashed.
- ``evidence: station silent`` — no sweep of a station for ``SILENT_HOURS`` (its watcher, or
  its host, is down): proactive, on the ``evidence.station.swept`` event every sweep emits
  (flows/ingest.py), one alarm per station.

Each sends a notification through the notification block named ``evidence-operators`` (any
kind Prefect has: e-mail, Slack, a webhook, …) when one exists; without it the automation
still fires and shows in the UI's event feed. Create the block, then run `evidence deploy`
again. Deploying again replaces the automations of these names.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.events.actions import DoNothing, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from flows.fixity import PROBLEMS_FOUND
from flows.runs import FILES_FAILED, INGEST_FLOWS

NOTIFY_BLOCK = "evidence-operators"
SILENT_HOURS = 2.0
FAILED_RUN = "evidence: a run failed"
SILENT_STATION = "evidence: station silent"


def automations(notify_block: UUID | None, silent_hours: float = SILENT_HOURS) -> list[Any]:
    """The automations, their action a notification through ``notify_block`` (else none)."""

    def action(subject: str, body: str) -> Any:
        if notify_block is None:
            return DoNothing()
        return SendNotification(block_document_id=notify_block, subject=subject, body=body)

    failed = EventTrigger(
        expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
        match_related={
            "prefect.resource.role": "flow",
            "prefect.resource.name": [*INGEST_FLOWS, "fixity-check"],
        },
        posture=Posture.Reactive,
        threshold=1,
        within=timedelta(0),
    )
    silent = EventTrigger(
        expect={"evidence.station.swept"},
        match={"prefect.resource.id": "evidence.station.*"},
        for_each={"prefect.resource.id"},
        posture=Posture.Proactive,
        threshold=1,
        within=timedelta(hours=silent_hours),
    )
    return [
        AutomationCore(
            name=FAILED_RUN,
            description=f"An ingest run ({FILES_FAILED}: a file hit a system error) or a fixity "
            f"run ({PROBLEMS_FOUND}) ended Failed, or crashed: its log names the file or item.",
            trigger=failed,
            actions=[
                action(
                    "evidence: {{ flow.name }} {{ flow_run.name }} {{ flow_run.state.name }}",
                    "{{ flow_run.name }}: {{ flow_run.state.message }}",
                )
            ],
        ),
        AutomationCore(
            name=SILENT_STATION,
            description=f"No sweep of a station for {silent_hours:g} h: is its watcher running?",
            trigger=silent,
            actions=[
                action(
                    "evidence: a station is silent",
                    f"No sweep of a station for {silent_hours:g} h; `evidence status` shows "
                    "each station's last sweep.",
                )
            ],
        ),
    ]


def deploy_automations(client: Any, silent_hours: float = SILENT_HOURS) -> list[str]:
    """Create (or replace) the automations on the server ``client`` talks to; their names."""
    blocks = [b for b in client.read_block_documents() if b.name == NOTIFY_BLOCK]
    notify = blocks[0].id if blocks else None
    names = []
    for automation in automations(notify, silent_hours):
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
        client.create_automation(automation)
        names.append(automation.name)
    return names
