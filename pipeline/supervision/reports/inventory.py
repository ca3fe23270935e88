"""The case-file inventory (卷内目录), printable: the case's header (number, title, category,
department, officers, the action's start and end, its state, the filing deadline, sealed or
not) and every record linked to it — recordings, photos and text records — by time, each with
its type, time, officer, written description (文字说明) and SHA-256.

Printing it is reading the case file (``permissions.can_view_case``, a REFUSED event
otherwise) and shows what a listing withholds: an item's description and a text record's
type and signature are printed only for the items the reader may view as ``media show``
would show them — their roles reach it (``can_view``) and the access policy asks no approval
or a grant covers it (``approvals.enforce``) — and withheld for the others. The VIEWED event
naming the case, the items, the fields shown, those withheld, the grants used, the reader
and the reason is committed before the PDF exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.accounts import usecases as accounts
from pipeline.accounts.permissions import can_view
from pipeline.approvals import enforce
from pipeline.approvals.policy import Action, policy_of
from pipeline.cases import usecases as cases_usecases
from pipeline.cases.categories import load_categories
from pipeline.catalog import media as media_db
from pipeline.custody import access
from pipeline.custody.access import WITHHELD, Field
from pipeline.errors import ConfigError
from pipeline.instance import Instance
from pipeline.models import Link, LinkMethod, MediaItem, MediaKind, RecordType, Signature
from pipeline.supervision.reports import Report, pdf
from pipeline.supervision.reports.reader import Names, Reader, names

#: The columns of the records, and their shares of the page's width.
COLUMNS = (
    ("序号 no.", 0.45),
    ("编号 id", 0.5),
    ("类型 type", 0.9),
    ("时间 time", 1.35),
    ("执法人员 officer", 1.1),
    ("文字说明 description", 2.15),
    ("文件 file · SHA-256 · 关联 link", 2.1),
)


#: The access of the policy (config/access-policy.toml) printing a record's metadata is.
VIEW = Action.VIEW_PROXY

#: Characters of a description the table prints; a longer one is printed whole below it
#: (a table's row cannot go on over the next page).
INLINE = 300


def _long(item: MediaItem) -> bool:
    return bool(item.description) and len(item.description or "") > INLINE


@dataclass(frozen=True)
class Entry:
    """One record of the inventory, as printed."""

    item: MediaItem
    shown: bool  # its description and text-record fields may be printed to this reader
    link: str  # how it joined the case: by rule, or by whom and why
    grant: int | None = None  # the access grant that lets it be shown, where one is needed


def inventory_report(
    instance: Instance, reader: Reader, number: str, *, reason: str | None, to: str
) -> Report:
    """The inventory of case ``number`` as a PDF, for ``reader``, with ``reason`` (at least
    two characters); ``to`` is where it goes, as its VIEWED event says."""
    now = instance.clock()
    if reader.user is not None:
        detail = accounts.case_file(instance, reader.user, number).detail  # REFUSED if not
    else:
        detail = cases_usecases.case_detail(instance, number)
    case = detail.case
    why = accounts.reason_given(f"case {case.number}", reason)
    pages = pdf.pages_for(instance.settings, f"卷内目录 Case-file inventory {case.number}", now)
    entries = _entries(instance, reader, detail.links, now)
    revealed = {
        f
        for e in entries
        if e.shown
        for f, has in (
            (Field.DESCRIPTION, bool(e.item.description)),
            (Field.TEXT_RECORD, e.item.record_type is not None or e.item.signature is not None),
        )
        if has
    }
    event = access.reveal(
        instance.catalog,
        actor=reader.login,
        reason=why,
        subject=case.number,
        media_ids=[e.item.id for e in entries],
        fields=revealed,
        now=now,
        report="inventory",
        format="pdf",
        to=to,
        case=case.number,
        withheld=[e.item.id for e in entries if not e.shown],
        **_grants(entries),
    )
    who = names(instance)
    zone = instance.settings.zone
    _header(pages, instance, detail, who, zone, reader, why)
    pages.heading(f"卷内材料 Records（{len(entries)} 件）")
    pages.table(
        [name for name, _ in COLUMNS],
        [_row(n, e, who, zone) for n, e in enumerate(entries, 1)],
        [share for _, share in COLUMNS],
    )
    long = [(n, e) for n, e in enumerate(entries, 1) if e.shown and _long(e.item)]
    if long:
        pages.heading("文字说明全文 Descriptions in full")
        for n, e in long:
            pages.text(f"{n}. 记录 #{e.item.id}：{e.item.description}")
    if any(not e.shown for e in entries):
        pages.text(
            f"{WITHHELD}：您的角色与部门不及、或须经审批而尚未获批准的记录，其文字说明与笔录字段"
            "不予打印 (withheld: the description and text-record fields of records outside "
            "your roles and department, or whose viewing the access policy asks approval for "
            "and no grant covers)"
        )
    pages.text(
        f"本目录的制作已记入保管链（第 {event.seq} 号事件） this inventory is recorded in the "
        f"custody log as event seq {event.seq}, with its reader and reason"
    )
    data, count = pages.render()
    return Report(f"inventory-{case.number}.pdf", "application/pdf", data, count, event.seq)


def _entries(
    instance: Instance, reader: Reader, links: Sequence[Link], now: datetime
) -> list[Entry]:
    """The records linked now, by time, each shown or withheld for ``reader``."""
    policy = policy_of(instance.settings)
    with instance.catalog.read() as conn:
        found = []
        for link in links:
            item = media_db.get(conn, link.media_id)
            grant, shown = None, True
            if reader.user is not None:
                # The record's metadata is viewed as `media show` views it: the roles must
                # reach it, or a grant must, and the access policy's approval must be had.
                permit = enforce.permits(conn, policy, reader.user, item, [VIEW], now)[VIEW]
                grant = permit.grant
                shown = not permit.needed and (
                    can_view(reader.user, permit.scope) or grant is not None
                )
            how = f"{link.method.label_zh} {link.rule}"
            if link.method is not LinkMethod.RULE:
                how = f"{link.method.label_zh} {link.actor}: {link.rule}"
            found.append(Entry(item, shown, how, grant if shown else None))
    # By time: the recording's start, else (a scanned document) when it was ingested.
    return sorted(found, key=lambda e: (e.item.recorded_start or e.item.ingested_at, e.item.id))


def _grants(entries: Sequence[Entry]) -> dict[str, dict[str, int]]:
    """The grants the inventory used (the event's ``grants``: media id → grant), if any."""
    used = {str(e.item.id): e.grant for e in entries if e.grant is not None}
    return {"grants": used} if used else {}


def _when(item: MediaItem, zone: ZoneInfo) -> str:
    def local(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"

    if item.recorded_start is None:
        return f"入库 ingested {local(item.ingested_at)}"
    if item.recorded_end is None:
        return local(item.recorded_start)
    end = item.recorded_end.astimezone(zone)
    same_day = end.date() == item.recorded_start.astimezone(zone).date()
    until = f"{end:%H:%M:%S}" if same_day else local(item.recorded_end)
    return f"{local(item.recorded_start)} – {until}"


def _type(entry: Entry) -> str:
    item = entry.item
    kind = MediaKind(item.kind)
    if kind is not MediaKind.DOCUMENT or not (item.record_type or item.signature):
        return f"{kind.label_zh} {kind.value}"
    if not entry.shown:
        return f"{kind.label_zh} {kind.value}（{WITHHELD}）"
    parts = [RecordType(item.record_type).label_zh if item.record_type else kind.label_zh]
    if item.signature:
        parts.append(Signature(item.signature).label_zh)
    return "，".join(parts)


def _row(n: int, entry: Entry, who: Names, zone: ZoneInfo) -> list[str]:
    item = entry.item
    if not entry.shown:
        description = WITHHELD if item.description else ""
    elif item.description and _long(item):
        description = f"{item.description[:INLINE]}…（全文见附录 in full below, {n}）"
    else:
        description = item.description or "（无文字说明 none）"
    return [
        str(n),
        str(item.id),
        _type(entry),
        _when(item, zone),
        who.officer(item.officer_id) or "未归属 unattributed",
        description,
        f"{item.original_name}\n{item.sha256}\n{entry.link}",
    ]


def _header(
    pages: pdf.Pages,
    instance: Instance,
    detail: cases_usecases.CaseDetail,
    who: Names,
    zone: ZoneInfo,
    reader: Reader,
    why: str,
) -> None:
    case = detail.case

    def local(moment: datetime | None) -> str:
        return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}" if moment else "（未填 not set）"

    try:
        category = load_categories(instance.settings).get(case.category)
        kind = f"{category.name_zh} {category.name_en}（{case.category}）"
    except ConfigError:
        kind = case.category
    if case.archived_at is not None:
        sealed = f"已归档封存 sealed {local(case.archived_at)} · SHA-256 {case.archive_key or ''}"
    else:
        sealed = "未归档 not sealed"
    due = "（未办结 not concluded）"
    if case.due is not None:
        due = f"{case.due}" + ("（暂定 provisional）" if case.due_provisional else "")
    pages.title(f"卷内目录 Case-file inventory：{case.number}")
    pages.fields(
        [
            ("案件编号 case number", case.number),
            ("案由 title", case.title),
            ("类别 category", kind),
            ("办案部门 department", case.department or "—"),
            ("执法人员 officers", "、".join(who.officer(o) for o in case.officers) or "—"),
            ("执法开始 action start", local(case.action_start)),
            ("执法终结 action end", local(case.action_end)),
            ("办理状态 status", f"{case.status.label_zh} {case.status.value}"),
            ("归档期限 due", f"{due} · {detail.state.label_zh} {detail.state.value}"),
            ("归档 sealed", sealed),
            ("时间 times", f"本地时间 local time, {zone.key}"),
            ("打印人 printed by", who.actor(reader.login)),
            ("事由 reason", why),
        ],
        label_share=0.22,
    )
    if detail.problems:
        pages.heading("待补正 What the rule still misses")
        for p in detail.problems:
            pages.text(p, color="#b00020")
