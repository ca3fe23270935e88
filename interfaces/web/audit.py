"""The audit trail (监督日志): custody events per item, per person, per case, of some kinds;
the page, its CSV download and ``/api/v1/audit`` (the JSON of `evidence audit --json`).
The text of descriptions and text records stays withheld, as in the CLI without --reveal."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from interfaces.web.deps import InstanceDep, SignedDep, render
from interfaces.web.errors import BadRequest
from pipeline.accounts import usecases as accounts
from pipeline.custody.access import DESCRIBED_DETAILS, WITHHELD, AuditedEvent
from pipeline.instance import Instance
from pipeline.models import EventKind, plain

router = APIRouter()

MediaParam = Annotated[str, Query(max_length=20, description="a media item's id")]
ActorParam = Annotated[str, Query(max_length=200)]
CaseParam = Annotated[str, Query(max_length=64)]
KindParam = Annotated[list[EventKind] | None, Query()]
LimitParam = Annotated[int, Query(ge=1, le=10000)]

#: A cell a spreadsheet would run as a formula (CSV injection): the log holds what docks and
#: people wrote, so such a cell is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _trail(
    instance: Instance,
    signed: accounts.Signed,
    media: str,
    actor: str,
    case: str,
    kind: Sequence[EventKind] | None,
    limit: int,
) -> tuple[AuditedEvent, ...]:
    media_id = None
    if media.strip():
        if not media.strip().isdigit():
            raise BadRequest(f"media: {media!r} is not an item id")
        media_id = int(media)
    return accounts.audit_trail(
        instance,
        signed.user,
        media_id=media_id,
        actor=actor.strip() or None,
        case=case.strip() or None,
        kinds=tuple(kind or ()),
        limit=limit,
    )


def _details(event: AuditedEvent) -> tuple[str, str]:
    """The reason, and the rest of the details as JSON, the withheld text marked."""
    details = dict(event.details)
    if event.withheld:
        details = {k: WITHHELD if k in DESCRIBED_DETAILS else v for k, v in details.items()}
    reason = details.pop("reason", None)
    rest = json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""
    return ("" if reason is None else str(reason)), rest


@router.get("/audit", include_in_schema=False)
def audit_page(
    request: Request,
    instance: InstanceDep,
    signed: SignedDep,
    media: MediaParam = "",
    actor: ActorParam = "",
    case: CaseParam = "",
    kind: KindParam = None,
    limit: LimitParam = 200,
) -> Response:
    found = _trail(instance, signed, media, actor, case, kind, limit)
    query = {"media": media, "actor": actor, "case": case, "limit": limit}
    pairs = [*query.items(), *(("kind", k.value) for k in kind or ())]
    context = {
        "user": signed.user,
        "events": [(e, *_details(e)) for e in found],
        "filters": query,
        "kinds": list(EventKind),
        "chosen": set(kind or ()),
        "csv_url": "/audit.csv?" + urlencode(pairs),
    }
    return render(request, "audit.html", context)


@router.get("/audit.csv", include_in_schema=False)
def audit_csv(
    instance: InstanceDep,
    signed: SignedDep,
    media: MediaParam = "",
    actor: ActorParam = "",
    case: CaseParam = "",
    kind: KindParam = None,
    limit: LimitParam = 1000,
) -> Response:
    found = _trail(instance, signed, media, actor, case, kind, limit)
    return Response(
        audit_csv_text(found, instance.settings.zone),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


def audit_csv_text(events: Sequence[AuditedEvent], zone: ZoneInfo) -> str:
    """The events as CSV, times local with the zone in the header; UTF-8 with a BOM, which
    spreadsheets in zh-CN need to read it as UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "seq",
            f"time ({zone.key})",
            "kind",
            "actor",
            "media",
            "subject",
            "reason",
            "details",
            "hash",
        ]
    )
    for e in events:
        reason, rest = _details(e)
        row = [
            e.seq,
            e.at.astimezone(zone).isoformat(timespec="seconds"),
            e.kind.value,
            e.actor,
            "" if e.media_id is None else e.media_id,
            e.subject,
            reason,
            rest,
            e.hash,
        ]
        writer.writerow([_cell(v) for v in row])
    return "\ufeff" + out.getvalue()


def _cell(value: object) -> object:
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value


@router.get("/api/v1/audit")
def api_audit(
    instance: InstanceDep,
    signed: SignedDep,
    media: MediaParam = "",
    actor: ActorParam = "",
    case: CaseParam = "",
    kind: KindParam = None,
    limit: LimitParam = 1000,
) -> Any:
    """Custody events: exactly what `evidence audit --json` prints for the same filters."""
    return plain(_trail(instance, signed, media, actor, case, kind, limit))
