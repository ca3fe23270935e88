"""The handle every use case takes: one instance of the archive, opened once per command,
request or flow run.

An interface (the CLI, the web application, the station API, a flow) builds the settings at
its entry point, opens the instance, and calls use-case functions with it; the use case owns
its transaction (``instance.catalog.read()`` for lookups, ``begin()`` for changes) and returns
a frozen dataclass that ``plain()`` turns into the JSON of ``--json`` and ``/api/v1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property

from pipeline.catalog import Catalog, open_catalog
from pipeline.settings import Settings
from pipeline.storage.local import ArchiveStore, open_store


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Instance:
    """Settings, catalog, store, clock, and who acts (None: nobody named yet)."""

    settings: Settings
    catalog: Catalog
    clock: Callable[[], datetime] = _utc_now
    actor: str | None = None
    _store: ArchiveStore | None = field(default=None, repr=False, compare=False)

    @cached_property
    def store(self) -> ArchiveStore:
        """Opened on first use: an S3 store starts a client and checks its lock, which a
        lookup that reads only the catalog should not pay for."""
        return self._store if self._store is not None else open_store(self.settings)

    def acting(self, actor: str | None) -> Instance:
        """The same instance, with ``actor`` acting (the settings' ``actor`` if None)."""
        return replace(self, actor=actor or self.settings.actor)

    def close(self) -> None:
        self.catalog.dispose()


def open_instance(
    settings: Settings,
    *,
    actor: str | None = None,
    clock: Callable[[], datetime] | None = None,
    store: ArchiveStore | None = None,
) -> Instance:
    """The instance the settings describe: the catalog (migrated), the store on first use."""
    return Instance(
        settings=settings,
        catalog=open_catalog(settings.catalog_url),
        clock=clock or _utc_now,
        actor=actor,
        _store=store,
    )
