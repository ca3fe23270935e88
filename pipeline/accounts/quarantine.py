"""Quarantine for a signed-in user: the entries with their codes and reasons, and releasing
them (archivists and administrators, ``permissions.can_release_quarantine``) with a reason.

The release is :func:`pipeline.ingest.quarantine.release_entries`, the use case of
``evidence quarantine release``, with the user acting: its QUARANTINE_RELEASED event names
them and the reason. Anyone else asking is refused with a REFUSED event.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.accounts.permissions import can_read_quarantine, can_release_quarantine, require
from pipeline.accounts.usecases import reason_given
from pipeline.accounts.users import User
from pipeline.custody import log as custody
from pipeline.errors import PermissionDenied
from pipeline.ingest import quarantine
from pipeline.instance import Instance
from pipeline.models import EventKind, QuarantineEntry


@dataclass(frozen=True)
class QuarantinePage:
    """The open entries (``include_resolved``: released ones too), and whether the user may
    release them."""

    entries: tuple[QuarantineEntry, ...]
    may_release: bool


def quarantine_page(
    instance: Instance, user: User, *, include_resolved: bool = False
) -> QuarantinePage:
    """What ``evidence quarantine list`` lists, for who may read it
    (``permissions.can_read_quarantine``; PermissionDenied otherwise): the entries name
    files, stations and codes, not what the files show."""
    require(user, can_read_quarantine, "quarantine")
    entries = quarantine.list_entries(instance, include_resolved=include_resolved)
    return QuarantinePage(tuple(entries), can_release_quarantine(user))


def release(
    instance: Instance, user: User, entry_ids: list[int], reason: str | None
) -> list[quarantine.Released | quarantine.Kept]:
    """Release the entries as ``user`` with ``reason`` (at least two characters,
    AccessRefused): refused with a REFUSED event for a user whose roles may not."""
    subject = "quarantine " + ",".join(str(i) for i in entry_ids)
    if not can_release_quarantine(user):
        with instance.catalog.begin() as conn:
            custody.append(
                conn,
                EventKind.REFUSED,
                user.login,
                subject=subject,
                details={
                    "action": "release-quarantine",
                    "entries": entry_ids,
                    "roles": [r.value for r in user.roles],
                },
                now=instance.clock(),
            )
        raise PermissionDenied(subject, "无权放行隔离文件 (only archivists and administrators)")
    why = reason_given(subject, reason)
    return quarantine.release_entries(instance.acting(user.login), entry_ids, reason=why)
