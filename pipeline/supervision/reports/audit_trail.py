"""The audit trail of an item, a person or a case (监督日志), as CSV and PDF, court-ready:
who (the login and the person), what (the event), when (local time, the zone named), why
(the reason of each viewing and export), and the custody chain's verification.

The events are those ``evidence audit`` lists for the same filter, for a reader who may read
them (``permissions.can_audit``, and of those what ``audit_reach`` gives them): the text of
descriptions and text records stays withheld, as on the audit page. Making the report is an
access: a VIEWED event naming the items whose history it shows, the report, its format, the
reader and the reason, committed before its bytes exist; it is the report's last line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from pipeline.accounts import usecases as accounts
from pipeline.accounts.permissions import audit_reach, can_audit, can_view_case
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.custody import access
from pipeline.custody import log as custody
from pipeline.custody import usecases as custody_usecases
from pipeline.custody.access import DESCRIBED_DETAILS, WITHHELD, AuditedEvent
from pipeline.errors import AccessRefused, NotFound, PermissionDenied
from pipeline.instance import Instance
from pipeline.models import EventKind
from pipeline.supervision.reports import Report, pdf
from pipeline.supervision.reports.chain import ChainStatus, chain_status
from pipeline.supervision.reports.reader import Names, Reader, names

Format = Literal["pdf", "csv"]

TITLE = "监督日志 Audit trail"

#: The most events one report holds, the newest; a trail cut there says so on its first page.
LIMIT = 100_000

#: What each kind of event is, in zh-CN (a kind added later is shown by its value alone).
KIND_ZH = {
    EventKind.INGESTED: "入库",
    EventKind.VERIFIED: "存储校验",
    EventKind.SIGHTED: "再次上传",
    EventKind.PROXY_MADE: "生成代理",
    EventKind.THUMBNAIL_MADE: "生成缩略图",
    EventKind.QUARANTINED: "隔离",
    EventKind.QUARANTINE_RELEASED: "解除隔离",
    EventKind.RELEASED: "释放源文件",
    EventKind.STATION_ADDED: "登记采集站",
    EventKind.REGISTRY_CHANGED: "登记变更",
    EventKind.ALERT: "告警",
    EventKind.CASE_CHANGED: "案件变更",
    EventKind.LINKED: "关联",
    EventKind.UNLINKED: "取消关联",
    EventKind.DESCRIBED: "文字说明",
    EventKind.TAGGED: "标签",
    EventKind.VIEWED: "调阅",
    EventKind.EXPORTED: "导出",
    EventKind.SEALED: "归档",
    EventKind.FIXITY_CHECKED: "固定性校验",
    EventKind.FIXITY_FAILED: "固定性校验失败",
    EventKind.USER_CHANGED: "账户变更",
    EventKind.SIGNED_IN: "登录",
    EventKind.SIGN_IN_FAILED: "登录失败",
    EventKind.SIGNED_OUT: "退出",
    EventKind.REFUSED: "拒绝",
    EventKind.STATION_CHANGED: "采集站变更",
    EventKind.UPLOAD_RECEIVED: "接收上传",
    EventKind.ACCESS_REQUESTED: "申请调阅",
    EventKind.ACCESS_GRANTED: "批准调阅",
    EventKind.ACCESS_DENIED: "驳回调阅",
}

#: What the report says of the text it withholds.
WITHHELD_NOTE = (
    f"文字说明与笔录字段的内容显示为 {WITHHELD} (the text of descriptions and text records is "
    "withheld: the change is listed, not its text)"
)

#: The columns of the events, in the CSV and the PDF, and their shares of the PDF's width.
COLUMNS = (
    ("序号 seq", 0.7),
    ("时间 time", 1.3),
    ("操作人 who", 1.3),
    ("事件 what", 1.2),
    ("对象 item / subject", 1.9),
    ("事由 why", 1.6),
    ("详情 details", 3.2),
    ("哈希 event hash", 1.6),
)

#: Characters of an event's details the PDF prints (an ingest's carries the whole catalog
#: row); the CSV holds them whole.
PDF_DETAILS = 360

DETAILS_NOTE = (
    f"超过 {PDF_DETAILS} 字的截断（…），全文见 CSV 报表 (cut beyond {PDF_DETAILS} characters; "
    "the CSV report holds them whole)"
)

#: A cell a spreadsheet would run as a formula (CSV injection): written with an apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Trail:
    """Whose trail: exactly one of an item, a case, a person."""

    media: str | int | None = None  # an id (int), or an id or SHA-256 prefix typed
    case: str | None = None
    user: str | None = None  # the actor: a login (or a system's name, an officer id)

    def check(self) -> None:
        given = [x for x in (self.media, self.case, self.user) if x not in (None, "")]
        if len(given) != 1:
            raise AccessRefused(
                "audit report",
                "give exactly one of an item, a case or a person (--media, --case, --user)",
            )


def kind_label(kind: EventKind) -> str:
    zh = KIND_ZH.get(kind)
    return f"{zh} {kind.value}" if zh else kind.value


def reason_and_details(event: AuditedEvent) -> tuple[str, str]:
    """The event's reason, and the rest of its details as JSON, the withheld text marked."""
    details = dict(event.details)
    if event.withheld:
        details = {k: WITHHELD if k in DESCRIBED_DETAILS else v for k, v in details.items()}
    reason = details.pop("reason", None)
    rest = json.dumps(details, ensure_ascii=False, sort_keys=True) if details else ""
    return ("" if reason is None else str(reason)), rest


def audit_report(
    instance: Instance,
    reader: Reader,
    trail: Trail,
    *,
    fmt: Format,
    reason: str | None,
    to: str,
) -> Report:
    """The audit trail ``trail`` as ``fmt``, for ``reader``, with ``reason`` (at least two
    characters); ``to`` is where the report goes (a path, "web download"), as its event
    says. Refused (a REFUSED event, PermissionDenied) to a reader who may not read the audit,
    the item or the case."""
    trail.check()
    now = instance.clock()
    subject, title, media_id = _whose(instance, reader, trail)
    why = accounts.reason_given(subject, reason)
    # No font, no report: found before anything is recorded.
    pages = pdf.pages_for(instance.settings, TITLE, now, wide=True) if fmt == "pdf" else None
    scope = audit_reach(reader.user) if reader.user is not None else None
    found = custody_usecases.audit(
        instance,
        media_key=None if media_id is None else str(_sha256(instance, media_id)),
        actor=trail.user,
        case=trail.case,
        limit=LIMIT,
        scope=scope,
    )
    shown = {e.media_id for e in found if e.media_id is not None}
    own = access.reveal(
        instance.catalog,
        actor=reader.login,
        reason=why,
        subject=subject,
        media_ids=shown | ({media_id} if media_id is not None else set()),
        fields=(),
        now=now,
        report="audit-trail",
        format=fmt,
        to=to,
        trail=_asked(trail, media_id),
        events=len(found),
    )
    events = found
    if _names(trail, own, media_id):
        events = (*found, access.audited(own, revealed=False))
    chain = chain_status(instance, now)
    who = names(instance)
    zone = instance.settings.zone
    cut = len(found) >= LIMIT
    filename = _filename(trail, media_id, fmt)
    if fmt == "csv":
        data = _csv(events, zone, who, title, reader, why, now, chain, cut)
        return Report(filename, "text/csv; charset=utf-8", data, None, own.seq)
    assert pages is not None
    data, count = _pdf(pages, events, zone, who, title, reader, why, chain, cut)
    return Report(filename, "application/pdf", data, count, own.seq)


def _whose(instance: Instance, reader: Reader, trail: Trail) -> tuple[str, str, int | None]:
    """The event's subject, the report's heading, and the item's id; refusals recorded."""
    user = reader.user
    if user is not None and not can_audit(user):
        _refuse(instance, reader, trail)
    if trail.media not in (None, ""):
        assert trail.media is not None
        with instance.catalog.read() as conn:
            item = media_db.get(conn, trail.media)
        if user is not None:
            accounts.require_view(instance, user, item.id)  # REFUSED, PermissionDenied
        return f"media {item.id}", f"记录 media #{item.id}（{item.original_name}）", item.id
    if trail.case:
        with instance.catalog.read() as conn:
            case = case_rows.get(conn, trail.case)
        if case is None:
            raise NotFound("case", trail.case)
        if user is not None and not can_view_case(user, case):
            accounts.case_file(instance, user, case.number)  # REFUSED, PermissionDenied
        return case.number, f"案件 case {case.number}（{case.title}）", None
    assert trail.user is not None
    return f"user {trail.user}", f"人员 person {trail.user}", None


def _refuse(instance: Instance, reader: Reader, trail: Trail) -> None:
    assert reader.user is not None
    user = reader.user
    with instance.catalog.begin() as conn:
        custody.append(
            conn,
            EventKind.REFUSED,
            user.login,
            subject="audit report",
            details={
                "action": "audit-report",
                "roles": [r.value for r in user.roles],
                "department": user.department,
                "trail": {k: str(v) for k, v in vars(trail).items() if v not in (None, "")},
            },
            now=instance.clock(),
        )
    accounts_denied = ", ".join(f"{r.value} {r.label_zh}" for r in user.roles) or "none"
    raise PermissionDenied(
        "audit", f"您的角色无权查阅监督日志 (not allowed to roles: {accounts_denied})"
    )


def _asked(trail: Trail, media_id: int | None) -> dict[str, str | int]:
    asked = {"media": media_id, "case": trail.case, "user": trail.user}
    return {k: v for k, v in asked.items() if v is not None}


def _sha256(instance: Instance, media_id: int) -> str:
    with instance.catalog.read() as conn:
        return media_db.get(conn, media_id).sha256


def _names(trail: Trail, event: custody.CustodyEvent, media_id: int | None) -> bool:
    """Whether the report's own event belongs to the trail it shows."""
    if media_id is not None:
        return True  # its listing names the item
    if trail.case:
        return True  # its subject is the case
    return event.actor == trail.user


def _filename(trail: Trail, media_id: int | None, fmt: Format) -> str:
    whose = (
        f"media-{media_id}"
        if media_id is not None
        else f"case-{trail.case}"
        if trail.case
        else f"user-{trail.user}"
    )
    return f"audit-trail-{whose}.{fmt}"


def _header(zone: ZoneInfo | None) -> list[str]:
    """The columns' names; the CSV's time names its zone (the PDF's first page says it)."""
    return [
        f"{name}（{zone.key}）" if name == "时间 time" and zone else name for name, _ in COLUMNS
    ]


def _local(event: custody.CustodyEvent, zone: ZoneInfo) -> str:
    return f"{event.at.astimezone(zone):%Y-%m-%d %H:%M:%S}"


def _row(event: AuditedEvent, zone: ZoneInfo, who: Names) -> list[str]:
    reason, rest = reason_and_details(event)
    item = f"#{event.media_id}" if event.media_id is not None else ""
    return [
        str(event.seq),
        _local(event, zone),
        who.actor(event.actor),
        kind_label(event.kind),
        f"{item} {event.subject}".strip(),
        reason,
        rest,
        event.hash,
    ]


def _about(
    title: str, reader: Reader, why: str, who: Names, count: int, cut: bool, zone: ZoneInfo
) -> list[tuple[str, str]]:
    events = f"{count}"
    if cut:
        events += f"（仅最新 {LIMIT} 条 only the newest {LIMIT}）"
    return [
        ("对象 trail of", title),
        ("制作人 made by", who.actor(reader.login)),
        ("事由 reason", why),
        ("事件 events", events),
        ("时间 times", f"本地时间 local time, {zone.key}"),
        ("已隐去 withheld", WITHHELD_NOTE),
    ]


def _cut(row: list[str]) -> list[str]:
    """A row as the PDF prints it: details beyond :data:`PDF_DETAILS` characters cut."""
    details = row[6]
    if len(details) > PDF_DETAILS:
        row = [*row[:6], details[: PDF_DETAILS - 1] + "…", *row[7:]]
    return row


def _csv(
    events: Sequence[AuditedEvent],
    zone: ZoneInfo,
    who: Names,
    title: str,
    reader: Reader,
    why: str,
    now: datetime,
    chain: ChainStatus,
    cut: bool,
) -> bytes:
    """The events as CSV (UTF-8 with a BOM, for spreadsheets), then a blank line and what
    the report is: who made it, why, when, and the chain's verification."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(zone))
    for e in events:
        writer.writerow([_cell(v) for v in _row(e, zone, who)])
    writer.writerow([])
    made = f"{now.astimezone(zone):%Y-%m-%d %H:%M:%S} {zone.key}（UTC{now.astimezone(zone):%z}）"
    about = _about(title, reader, why, who, len(events), cut, zone)
    for k, v in [*about, ("生成时间 generated", made)]:
        writer.writerow([_cell(k), _cell(v)])
    for line in chain.lines(zone, [e.seq for e in events]):
        writer.writerow([_cell("链校验 chain verification"), _cell(line)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _pdf(
    pages: pdf.Pages,
    events: Sequence[AuditedEvent],
    zone: ZoneInfo,
    who: Names,
    title: str,
    reader: Reader,
    why: str,
    chain: ChainStatus,
    cut: bool,
) -> tuple[bytes, int]:
    pages.title(f"监督日志 Audit trail：{title}")
    about = _about(title, reader, why, who, len(events), cut, zone)
    about.append(("详情 details", DETAILS_NOTE))
    pages.fields(about, label_share=0.15)
    pages.heading("链校验 Chain verification")
    for n, line in enumerate(chain.lines(zone, [e.seq for e in events])):
        pages.text(line, color=None if chain.ok or n else "#b00020")
    pages.heading("事件 Events")
    pages.table(
        _header(None),
        [_cut(_row(e, zone, who)) for e in events],
        [share for _, share in COLUMNS],
    )
    return pages.render()
