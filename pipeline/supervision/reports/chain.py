"""The custody chain's verification, as a report prints it.

A report of custody events is worth what the chain under it is: before it is printed, the
head is signed (as an export ends on a signature; skipped when this host holds no key), then
the whole log is recomputed and held against its head, the signed checkpoints (pinned keys
only) and the witnesses — ``evidence verify``'s check of the log, without re-hashing the
originals. The report says which signed checkpoint covers its events, or that some come
after the newest one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pipeline.custody import checkpoints, fixity
from pipeline.custody.checkpoints import Checkpoint
from pipeline.custody.verify_bag import Problem
from pipeline.errors import EvidenceError
from pipeline.instance import Instance


@dataclass(frozen=True)
class ChainStatus:
    """What the check of the log found, and the newest signed checkpoint."""

    events: int  # recomputed: the whole log
    head_seq: int | None
    checkpoint: Checkpoint | None
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    unsigned: str | None = None  # why the head could not be signed now (no key here, …)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self, zone: ZoneInfo, shown: Iterable[int]) -> list[str]:
        """The verdict in words, zh-CN first, for events ``shown`` (their seqs)."""
        seqs = sorted(shown)
        cp = self.checkpoint
        if not self.ok:
            out = [
                f"链校验未通过 chain NOT verified: {len(self.problems)} 个问题 problems "
                f"({self.events} events recomputed)"
            ]
            out += [f"{p.code} {p.subject}: {p.message}" for p in self.problems]
        elif cp is None:
            out = [
                f"链校验通过 chain verified: {self.events} events recomputed and linked, "
                "but no checkpoint is signed yet: the log is only hash-chained"
            ]
        else:
            at = cp.at.astimezone(zone)
            out = [
                f"链校验通过 chain verified: {self.events} events, checkpoint #{cp.seq} "
                f"signed by key {cp.key_id} at {at:%Y-%m-%d %H:%M:%S} {zone.key} "
                f"(seq 1–{self.head_seq} recomputed and linked; signatures checked with "
                "the pinned keys only)"
            ]
            after = [s for s in seqs if s > cp.seq]
            if after:
                out.append(
                    f"本报告 {len(after)} 条事件在该检查点之后 {len(after)} event(s) of this "
                    f"report come after checkpoint #{cp.seq}: hash-chained to it, not yet "
                    "signed"
                )
            elif seqs:
                out.append(
                    "本报告全部事件均在签名范围内 every event of this report is under it: "
                    f"seq {seqs[0]}–{seqs[-1]} ≤ #{cp.seq}"
                )
        if self.unsigned:
            out.append(f"未能签署检查点 the head was not signed now: {self.unsigned}")
        out += [f"注意 warning {w.code} {w.subject}: {w.message}" for w in self.warnings]
        return out


def chain_status(instance: Instance, now: datetime) -> ChainStatus:
    """Sign the head (if this host holds the key), then check the whole log."""
    unsigned = None
    try:
        checkpoints.checkpointer(instance.settings).sign_due(instance.catalog, now=now, force=True)
    except EvidenceError as exc:  # no key on this host, a broken chain, a witness ahead
        unsigned = str(exc)
    log = fixity.check_log(instance.catalog, instance.settings, now=now)
    with instance.catalog.read() as conn:
        newest = checkpoints.latest(conn)
    return ChainStatus(log.events, log.head_seq, newest, log.problems, log.warnings, unsigned)
