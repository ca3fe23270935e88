"""The use cases of custody: viewing evidence under access supervision (调阅监督), tag
changes, the audit trail, court packages, verifying the archive, and setting an instance up.

Each takes the :class:`~pipeline.instance.Instance` first, owns its transactions (lookups
through ``instance.catalog.read()``, changes through ``begin()``) and returns a frozen
dataclass that ``plain()`` turns into the JSON of ``--json``. A supervised viewing or an
export names its person for that act (``actor``): the instance's default actor never stands
in for who looked at evidence, or why.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from pipeline.accounts.permissions import AuditReach
from pipeline.approvals import enforce
from pipeline.approvals.policy import Action, policy_of
from pipeline.catalog import open_catalog
from pipeline.custody import access, checkpoints, fixity, witness
from pipeline.custody import keys as keys_module
from pipeline.custody import log as custody
from pipeline.custody.access import View
from pipeline.custody.export import ExportResult, export_bag
from pipeline.custody.keys import create_instance_key
from pipeline.custody.verify_bag import Problem
from pipeline.errors import InstanceKeyError
from pipeline.instance import Instance
from pipeline.models import EventKind, MediaItem, RecordType, Signature
from pipeline.search import tags
from pipeline.search.query import LinkedCase
from pipeline.search.run import views as search_views
from pipeline.settings import DEFAULT_TOML, Settings, origin_of
from pipeline.storage import modes
from pipeline.storage.local import open_store

# --------------------------------------------------------------------- supervised viewing


@dataclass(frozen=True)
class Derived:
    """The store keys of an item's derivatives (None: it has none)."""

    proxy: str | None
    thumbnail: str | None


@dataclass(frozen=True)
class MediaDetail:
    """One media item as ``media show`` shows it; its custody history ends with the VIEWED
    event of this very viewing."""

    item: MediaItem
    derived: Derived
    custody: tuple[custody.CustodyEvent, ...]
    officer_name: str | None = None
    tags: tuple[str, ...] = ()
    cases: tuple[LinkedCase, ...] = ()  # active links


@dataclass(frozen=True)
class Opened:
    """A viewing of the proxy or of a copy of the original: where it is, and its event."""

    media_id: int
    view: View
    path: Path | None  # the proxy, or the downloaded copy
    event: int  # the seq of the VIEWED event (a copy of the original: EXPORTED)


@dataclass(frozen=True)
class OpenedMetadata(Opened):
    """A viewing of the metadata: the item itself."""

    item: MediaItem


@dataclass(frozen=True)
class ItemContext:
    """What the catalog says around an item: its officer's name, its tags, the cases it is
    linked to (active links), and for a text record its type and signature status."""

    officer_name: str | None
    tags: tuple[str, ...]
    cases: tuple[LinkedCase, ...]
    record_type: RecordType | None = None
    signature: Signature | None = None


def item_context(instance: Instance, item: MediaItem) -> ItemContext:
    """The context of ``item``; it records no viewing: call it only for an item whose
    viewing is recorded."""
    with instance.catalog.read() as conn:
        (view,) = search_views(conn, [item.id])
    return ItemContext(
        view.officer_name,
        view.tags,
        view.cases,
        RecordType(item.record_type) if item.record_type else None,
        Signature(item.signature) if item.signature else None,
    )


def media_detail(
    instance: Instance, key: str, *, actor: str | None, reason: str | None
) -> MediaDetail:
    """The item ``key`` (id or SHA-256 prefix) with its derivatives and custody history.
    Who and why are required (AccessRefused); the VIEWED event is committed before anything
    is returned."""
    seen = access.open_media(
        instance.catalog,
        None,  # the metadata is in the catalog: no store to open
        key,
        actor=actor,
        reason=reason,
        view=View.METADATA,
        now=instance.clock(),
        policy=policy_of(instance.settings),
    )
    item = seen.item
    with instance.catalog.read() as conn:
        history = tuple(custody.events(conn, media_id=item.id))
    around = item_context(instance, item)
    return MediaDetail(
        item,
        Derived(item.proxy_key, item.thumbnail_key),
        history,
        officer_name=around.officer_name,
        tags=around.tags,
        cases=around.cases,
    )


def view_media(
    instance: Instance,
    key: str,
    *,
    actor: str | None,
    reason: str | None,
    view: View = View.PROXY,
    out: Path | None = None,
    recorded_to: str | None = None,
    extra_details: Mapping[str, Any] | None = None,
) -> Opened:
    """View the item ``key``: the proxy's path, a copy of the original written to ``out``
    (checked against its SHA-256 as it is copied), or the metadata; recorded with who and why
    before the path or the copy exists, as a VIEWED event (a copy: EXPORTED, naming
    ``recorded_to`` or ``out`` as where it went). A user of the catalog acting needs a grant
    where the access policy asks approval (ApprovalRequired); the event names it."""
    seen = access.open_media(
        instance.catalog,
        None if view is View.METADATA else instance.store,
        key,
        actor=actor,
        reason=reason,
        view=view,
        download_to=out,
        block_size=instance.settings.ingest.block_size,
        now=instance.clock(),
        recorded_to=recorded_to,
        policy=policy_of(instance.settings),
        extra_details=extra_details,
    )
    if view is View.METADATA:
        return OpenedMetadata(seen.item.id, view, seen.path, seen.event.seq, seen.item)
    return Opened(seen.item.id, view, seen.path, seen.event.seq)


# ------------------------------------------------------------------------------- tags


def tag_media(
    instance: Instance, key: str, add: Iterable[str], remove: Iterable[str]
) -> tags.TagChange:
    """Add and remove free tags of the item ``key``, the instance's actor acting; one TAGGED
    custody event when anything changed (TagError for a tag that cannot be one)."""
    with instance.catalog.begin() as conn:
        return tags.change(conn, key, add, remove, _actor(instance), instance.clock())


# ------------------------------------------------------------------------------ history


def audit(
    instance: Instance,
    *,
    media_key: str | None = None,
    actor: str | None = None,
    case: str | None = None,
    kinds: Sequence[EventKind] = (),
    limit: int = 1000,
    reveal: bool = False,
    viewer: str | None = None,
    reason: str | None = None,
    scope: AuditReach | None = None,
) -> tuple[access.AuditedEvent, ...]:
    """The custody events that match every filter given (one item's, one person's, one
    case's and its records', of these kinds), the newest ``limit``, oldest first; only those
    ``scope`` holds when given (a signed-in user's). The text of descriptions and text-record
    fields is withheld unless ``reveal``, which needs who (``viewer``) and why
    (AccessRefused) and is one VIEWED event committed first."""
    found = access.audit(
        instance.catalog,
        media_key=media_key,
        actor=actor,
        case=case,
        kinds=tuple(kinds),
        limit=limit,
        reveal=reveal,
        viewer=viewer,
        reason=reason,
        now=instance.clock(),
        scope=scope,
    )
    return tuple(found)


# ----------------------------------------------------------------------- court packages


def export_package(
    instance: Instance,
    out: Path,
    *,
    media_keys: Sequence[str] = (),
    case: str | None = None,
    actor: str | None,
    reason: str | None,
    with_proxies: bool = False,
) -> ExportResult:
    """Write a court package to ``out``: a signed BagIt bag of the given items and of the
    records linked to ``case``, with their custody history and a standalone verifier. The
    export is recorded with who and why (both required). A user of the catalog needs a
    grant for each item the access policy asks approval for (ApprovalRequired names every
    item lacking one, before anything is copied); each EXPORTED event names its grant."""
    policy, now = policy_of(instance.settings), instance.clock()

    def approve(items: Sequence[MediaItem]) -> dict[int, int]:
        who, _ = access.purpose("export", actor, reason)
        return enforce.require(instance.catalog, policy, who, items, Action.EXPORT, now)

    return export_bag(
        instance.catalog,
        instance.store,
        checkpoints.checkpointer(instance.settings),
        media_keys=media_keys,
        out=out,
        actor=actor,
        reason=reason,
        case=case,
        with_proxies=with_proxies,
        block_size=instance.settings.ingest.block_size,
        now=now,
        approve=approve,
    )


# ------------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verification:
    """What ``evidence verify`` found, every problem with its code (docs/problems.md)."""

    ok: bool
    originals: int  # re-hashed
    events: int  # recomputed
    checkpoints: int  # signed checkpoints checked
    head_seq: int | None
    seconds: float
    run: str  # the id this run's fixity events carry
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]  # W- codes: a set-up that weakens the checks, not damage
    witnesses: tuple[str, ...]  # the checkpoint witnesses off this instance's disk, read
    rows: int  # catalog rows replayed from the custody events that set them
    sealed: int  # sealed case bags re-hashed and verified with the pinned keys


def verify(
    instance: Instance,
    *,
    media_keys: Sequence[str] = (),
    sample: int | None = None,
    record: bool = True,
) -> Verification:
    """Re-hash the given originals (ids or SHA-256 prefixes), a random ``sample`` of them,
    or every one; recompute the custody chain and check the signed checkpoints against the
    pinned keys and the witnesses; replay the catalog from the log; verify the sealed case
    bags (a ``sample`` of them too; none when items are given) and the files' modes. Each
    original checked gets a fixity event, the instance's actor acting, unless not ``record``."""
    originals = fixity.select_originals(instance.catalog, sample=sample, media_keys=media_keys)
    report = fixity.run(
        instance.catalog,
        instance.store,
        instance.settings,
        originals,
        actor=_actor(instance),
        workers=instance.settings.custody.fixity_workers,
        record_events=record,
        now=instance.clock(),
        sealed_sample=sample,
        sealed=not media_keys,  # given items: their originals, not every case's bag
    )
    return Verification(
        ok=report.ok,
        originals=report.originals,
        events=report.events,
        checkpoints=report.checkpoints,
        head_seq=report.head_seq,
        seconds=round(report.seconds, 3),
        run=report.run,
        problems=tuple(report.problems),
        warnings=tuple(report.warnings),
        witnesses=tuple(report.witnesses),
        rows=report.rows,
        sealed=report.sealed,
    )


# ------------------------------------------------------------------------- trust anchors


@dataclass(frozen=True)
class PinStatus:
    key_id: str
    replaces: str
    found: bool  # its public half is in EVIDENCE_HOME/keys
    signing: bool  # it is the instance key that signs now


@dataclass(frozen=True)
class TrustStatus:
    """What verify will trust, and what weakens it (``evidence keys status``)."""

    instance_key: str | None  # the id of the key that signs here (None: no key)
    pins: tuple[PinStatus, ...]
    pinned_from: str  # where the pins were read (a file, a variable, or the default)
    witnesses: tuple[str, ...]  # the external ones
    problems: tuple[Problem, ...]
    warnings: tuple[Problem, ...]


def trust_status(settings: Settings) -> TrustStatus:
    """The pinned keys and the witnesses, checked as verify checks them."""
    trust = keys_module.pinned_trust(settings)
    try:
        signing: str | None = keys_module.describe(settings.home).key_id
    except InstanceKeyError:
        signing = None
    pins = tuple(
        PinStatus(p.id, p.replaces, p.id in trust.keys, p.id == signing)
        for p in settings.custody.pinned_keys
    )
    warnings = keys_module.pin_warnings(settings)
    if signing is not None and signing not in trust.keys:
        warnings.append(
            Problem(
                "W-KEY-NOT-PINNED",
                f"key {signing[:16]}…",
                "the instance signs with a key that is not pinned: its checkpoints will not "
                "verify (pin it, or `evidence keys rotate` was not followed by a new pin)",
            )
        )
    witnesses = witness.configured(settings)
    warnings += witness.local_only(witnesses)
    external = tuple(w.name for w in witnesses if w.external)
    return TrustStatus(
        signing, pins, _pins_origin(), external, trust.problems,
        tuple(warnings),
    )  # fmt: skip


def _pins_origin() -> str:
    origin = origin_of("custody", "pinned_keys")
    return "not set (none pinned)" if str(DEFAULT_TOML) in origin else origin


def rotate_key(settings: Settings) -> keys_module.Rotated:
    """Replace the signing key: the old key signs the hand-over, the old public half stays for
    older checkpoints. The new id must then be pinned with ``replaces`` by the administrator."""
    return keys_module.rotate(settings.home)


def sign_checkpoints(
    instance: Instance, *, force: bool = False
) -> tuple[checkpoints.Checkpoint, ...]:
    """Sign the checkpoints that are due now (``force``: the head too) and bring every
    witness up to date; what ``evidence serve`` does every T minutes."""
    signer = checkpoints.checkpointer(instance.settings)
    return tuple(signer.sign_due(instance.catalog, now=instance.clock(), force=force))


def accept_witness_loss(
    instance: Instance, *, actor: str | None, reason: str | None
) -> dict[str, int]:
    """After restoring the catalog from a backup, the witnesses hold checkpoints it lost and
    signing stops. A person accepts the loss (who and why required, recorded as an ALERT per
    witness): signing goes on; the lost stretch stays reported by verify."""
    who, why = access.purpose("accept a loss of checkpoints", actor, reason)
    signer = checkpoints.checkpointer(instance.settings)
    return checkpoints.accept_loss(instance.catalog, signer, who, why, instance.clock())


# -------------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class Initialized:
    home: Path
    catalog: str  # its URL, without the password
    archive: str  # the folder, or the bucket and where it is
    key_id: str  # the signing key's id (SHA-256 of the raw public key)
    key: Path  # the signing key's file
    made_private: int = 0  # paths whose mode was narrowed (an older home, files let open)


def initialize(settings: Settings) -> Initialized:
    """Create the data folders, the catalog (migrated), the archive (an S3 bucket with Object
    Lock is self-tested) and the instance's signing key; a second run keeps what exists.
    Everything is made the instance's alone (``pipeline.storage.modes``: the home 0700, the
    catalog 0600, originals 0400), fixing the modes of an older home.
    Takes the settings: there is no instance to open before this has run."""
    # Created private whatever umask the caller runs with (the CLI's is 077 already).
    previous = os.umask(modes.UMASK)
    try:
        for folder in (settings.home, settings.log_dir, settings.prefect_home):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        open_catalog(settings.catalog_url).dispose()
        open_store(settings)
        signing = create_instance_key(settings.home)  # signs custody checkpoints
    finally:
        os.umask(previous)
    narrowed = modes.make_private(settings)
    s3 = settings.store.s3
    archive = (
        str(settings.archive_dir)
        if settings.store.kind == "local"
        else f"s3://{s3.bucket} at {s3.endpoint_url or 'AWS ' + s3.region}"
    )
    return Initialized(
        home=settings.home,
        catalog=make_url(settings.catalog_url).render_as_string(hide_password=True),
        archive=archive,
        key_id=signing.key_id,
        key=signing.path,
        made_private=narrowed,
    )


def _actor(instance: Instance) -> str:
    return instance.actor or instance.settings.actor
