"""The JSON API under ``/api/v1/``: the same use cases as the pages and the CLI, the same
JSON as ``--json`` (``plain()`` of the use case's dataclass)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from interfaces.web.deps import SignedDep
from interfaces.web.pages import LimitParam, QueryParam, SortParam, run_search
from pipeline.models import plain
from pipeline.search import run as search_run

router = APIRouter(prefix="/api/v1")


@router.get("/me")
def me(signed: SignedDep) -> dict[str, Any]:
    """The signed-in user and their session."""
    return {"user": plain(signed.user), "session": plain(signed.session)}


@router.get("/search")
def search(
    request: Request,
    signed: SignedDep,
    q: QueryParam = "",
    sort: SortParam = str(search_run.NEWEST_FIRST),
    limit: LimitParam = 50,
) -> Any:
    """Media items the query ``q`` selects: exactly what `evidence search --json` prints."""
    return plain(run_search(request, signed, q, sort, limit))
