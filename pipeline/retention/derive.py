"""A record's retention, derived from the rules (:mod:`pipeline.retention.rules`) and what the
catalog knows of it: the longest of every rule that applies wins, and every reason is kept.

The rules that apply to a record, each a period counted from the end of its recording
(``recorded_end``; else ``recorded_start``; else when it was ingested):

1. its own class: by its kind (``[kinds]``), else the class of unlinked footage;
2. each case it is linked to: the class of the case's category; ``case`` or ``permanent``
   make it permanent while the link stands (an unlinked record falls back to the others);
3. an important-file mark (重点文件): the marked class;
4. a class a person assigned: it counts like the others (the longest wins) — except the
   ``invalid`` class (无效数据), which replaces the own class, and only when no other rule
   (a link, a mark, a hold) applies: a linked, marked or held record is never shortened;
5. a legal hold: the record is ``held`` and never disposable, whatever its dates.

Pure: :func:`derived` takes the facts and the rules and returns the :class:`Retention`; the
catalog reads are in :func:`retention_of` / :func:`retentions_of`, batched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import ColumnElement, Connection, exists, false, func, or_, select

from pipeline.catalog import retention as rows
from pipeline.catalog.schema import cases, links, media, retention_hold_items, retention_holds
from pipeline.errors import NotFound
from pipeline.models import MediaStatus
from pipeline.retention.rules import RetentionClass, RetentionRules

#: Months are not all as long: the candidates' SQL pre-filter lets this much more through.
SLACK = timedelta(days=4)


@dataclass(frozen=True)
class Retention:
    """How long one record is kept, and why (zh-CN first, English in brackets)."""

    media_id: int
    until: datetime | None  # UTC; None: permanent
    reasons: tuple[str, ...]  # the rule that sets ``until`` first
    held: bool  # an active legal hold covers it: never disposable
    holds: tuple[int, ...] = ()  # the ids of the holds covering it

    def disposable(self, now: datetime) -> bool:
        return not self.held and self.until is not None and self.until <= now

    @property
    def permanent(self) -> bool:
        return self.until is None

    def said(self, zone: tzinfo) -> str:
        """One line for people: ``保存至 2027-06-01（本地时间）因为：… (kept until 2027-06-01,
        local time, because: …)``, or ``永久保存：…``; and whether a hold holds it."""
        why = "；".join(self.reasons)
        if self.until is None:
            line = f"永久保存：{why} (kept permanently)"
        else:
            day = self.until.astimezone(zone).date().isoformat()
            line = f"保存至 {day}（本地时间）因为：{why} (kept until {day}, local time)"
        if self.held:
            line += " · 法律保全中，不得处置 (on legal hold: never disposed of)"
        return line


@dataclass(frozen=True)
class _Rule:
    until: datetime | None
    reason: str


def derived(facts: rows.Facts, rules: RetentionRules, now: datetime | None = None) -> Retention:
    """The retention of the record ``facts`` describe. ``now`` decides whether a hold with a
    lapse date still holds (None: every unreleased hold holds)."""
    start, zone = facts.start, rules.zone
    others: list[_Rule] = []
    for number, category in facts.cases:
        cls = rules.category_class(category)
        name = rules.category_names.get(category, category)
        if cls.period.forever:
            reason = f"永久：案件 {number}（{name}）的证据 (permanent: evidence in case {number})"
        else:
            reason = (
                f"案件 {number}（{name}）的证据 {cls.period.said_zh()} "
                f"(evidence in case {number}, {cls.period.said_en()})"
            )
        others.append(_Rule(cls.period.until(start, zone), reason))
    if facts.mark is not None:
        cls = rules.of(rules.marked)
        how = {"filename": "文件名", "metadata": "元数据", "person": "人工"}.get(
            facts.mark.source, facts.mark.source
        )
        others.append(
            _Rule(cls.period.until(start, zone), f"{cls.said()}：{how}标记 {facts.mark.matched}")
        )
    holds = tuple(h for h in facts.holds if h.holds_at(now))
    assigned = facts.assigned
    invalid = assigned is not None and assigned.class_id == rules.invalid
    notes: list[str] = []
    if assigned is not None and not invalid:
        cls_ = rules.classes.get(assigned.class_id)
        if cls_ is not None:
            others.append(_assigned_rule(cls_, assigned, start, rules))
        else:  # a class taken out of the rules since: it keeps nothing longer
            notes.append(
                f"指定的保存类别 {assigned.class_id} 已不在规则中 "
                f"(the class {assigned.class_id} assigned is no longer in the rules)"
            )
    own = rules.own_class(facts.kind)
    if invalid and assigned is not None and not others and not holds:
        base = _assigned_rule(rules.of(rules.invalid), assigned, start, rules)
    else:
        base = _Rule(own.period.until(start, zone), own.said())
    every = sorted([base, *others], key=_length, reverse=True)
    reasons = [r.reason for r in every] + notes
    if invalid and (others or holds):
        reasons.append(
            "不因“无效数据”缩短：已关联案件、已标记或已保全 "
            "(not shortened as invalid: it is linked, marked or held)"
        )
    reasons += [f"法律保全 #{h.id}：{h.reason}（{h.placed_by}）(legal hold #{h.id})" for h in holds]
    return Retention(
        facts.media_id, every[0].until, tuple(reasons), bool(holds), tuple(h.id for h in holds)
    )


def _assigned_rule(
    cls: RetentionClass, assigned: rows.Assigned, start: datetime, rules: RetentionRules
) -> _Rule:
    return _Rule(
        cls.period.until(start, rules.zone),
        f"{cls.said()}：{assigned.assigned_by} 指定，{assigned.reason}",
    )


def _length(rule: _Rule) -> tuple[bool, float]:
    """Longest first: permanent beats every date."""
    return (rule.until is None, rule.until.timestamp() if rule.until else 0.0)


def retention_of(
    conn: Connection, rules: RetentionRules, media_id: int, *, now: datetime | None = None
) -> Retention:
    """The retention of the item ``media_id`` (NotFound)."""
    found = retentions_of(conn, rules, [media_id], now=now)
    if media_id not in found:
        raise NotFound("media item", str(media_id))
    return found[media_id]


def retentions_of(
    conn: Connection,
    rules: RetentionRules,
    media_ids: Sequence[int],
    *,
    now: datetime | None = None,
) -> dict[int, Retention]:
    """The retention of each item of ``media_ids`` the catalog has, in a few queries per
    chunk of items (never one per item)."""
    return {m: derived(f, rules, now) for m, f in rows.facts(conn, media_ids).items()}


def candidates(
    conn: Connection,
    rules: RetentionRules,
    now: datetime,
    *,
    limit: int | None = None,
) -> list[Retention]:
    """Archived items whose retention has passed at ``now`` and that no hold covers, the
    oldest recording first.

    A SQL pre-filter keeps what cannot be due out: an item whose start is later than ``now``
    less the shortest period any rule gives (the invalid class's, or the own classes'), an
    item linked to a case of a permanent category, one an unreleased hold covers; the rest
    are derived in chunks (a few queries each), in the order of their start."""
    shortest = min(
        (c.period.until(now, rules.zone) for c in _shortest_classes(rules)),
        key=lambda u: u or now,
        default=now,
    )
    # until(start) <= now  ⇔  start <= now - period; ``shortest`` is now + the shortest
    # period, so the latest start that can be due is now - (shortest - now), give or take
    # the days by which calendar months differ (SLACK keeps the filter on the safe side).
    latest = now - ((shortest or now) - now) + SLACK
    start = func.coalesce(media.c.recorded_end, media.c.recorded_start, media.c.ingested_at)
    found: list[Retention] = []
    query = (
        select(media.c.id)
        .where(
            media.c.status == MediaStatus.ARCHIVED.value,
            start <= latest,
            ~_kept_for_good(rules),
            ~_held(now),
        )
        .order_by(start, media.c.id)
    )
    ids = list(conn.execute(query).scalars())
    for chunk in rows.chunks(ids):
        derived_ = retentions_of(conn, rules, chunk, now=now)
        for media_id in chunk:
            r = derived_.get(media_id)
            if r is not None and r.disposable(now):
                found.append(r)
                if limit is not None and len(found) >= limit:
                    return found
    return found


def _shortest_classes(rules: RetentionRules) -> list[RetentionClass]:
    """The classes that can set a record's retention on their own (its own class, or the
    invalid class): a rule that only lengthens cannot make a record due sooner."""
    own = {rules.unlinked, rules.invalid, *rules.kinds.values()}
    return [rules.of(c) for c in own if not rules.of(c).period.forever]


def _kept_for_good(rules: RetentionRules) -> ColumnElement[bool]:
    """SQL: the item is linked to a case whose category keeps its records for good."""
    forever = [c for c, k in rules.categories.items() if rules.of(k).period.forever]
    linked = (
        select(links.c.id)
        .join(cases, cases.c.number == links.c.case_number)
        .where(
            links.c.media_id == media.c.id,
            links.c.removed_at.is_(None),
            cases.c.category.in_(forever),
        )
    )
    return exists(linked) if forever else false()


def _held(now: datetime) -> ColumnElement[bool]:
    """SQL: an unreleased hold the item is a member of holds at ``now`` (a case hold over a
    record linked a moment ago, not yet a member, is left to the derivation)."""
    member = (
        select(retention_hold_items.c.hold_id)
        .join(retention_holds, retention_holds.c.id == retention_hold_items.c.hold_id)
        .where(
            retention_hold_items.c.media_id == media.c.id,
            retention_holds.c.released_at.is_(None),
            or_(retention_holds.c.until.is_(None), retention_holds.c.until > now),
        )
    )
    return exists(member)
