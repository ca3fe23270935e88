"""The scheduled flows of one instance, served from one process (``evidence serve``)."""

from __future__ import annotations

from typing import Any

from prefect import serve

from flows import compliance, fixity, retention
from pipeline.settings import Settings


def scheduled(settings: Settings) -> list[Any]:
    """compliance-sweep (daily), fixity-check (a daily sample, a monthly full pass), the
    custody checkpoints and retention-sweep (daily), as Prefect runner deployments."""
    return [
        *compliance.deployments(settings),
        *fixity.deployments(settings),
        *retention.deployments(settings),
    ]


def serve_scheduled(deployments: list[Any]) -> None:
    """Serve them until interrupted (KeyboardInterrupt comes out to the caller)."""
    serve(*deployments, print_starting_message=False)
