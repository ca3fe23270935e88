"""The station's local files as the dock agent touches them: hashed, read, released.

Each complete file is hashed (SHA-256, streamed in fixed blocks; the digest cached by path,
size and mtime in the state file, so a restart hashes nothing again) and read chunk by chunk
for its upload. Only once the server says ``verified``, or ``have`` said present, is the local
file released: moved to ``.ingested/`` or deleted (invariant 2 of the architecture, held on the
station too), and only if it is still the file that was hashed and no process is writing it.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

from docks import tus
from docks.push_state import UPLOADING, Entry, StateFile
from pipeline.errors import SourceError
from pipeline.ingest import dockfs
from pipeline.ingest.steps import INGESTED_DIR
from pipeline.ingest.writers import open_for_writing
from pipeline.models import SourceFile

if TYPE_CHECKING:
    from docks.push import Agent

_HASH_BLOCK = 1 << 20


# ------------------------------------------------------------------------------ hashing


def is_cached(state: StateFile, rel: str, source: SourceFile) -> bool:
    entry = state.get(rel)
    return entry is not None and (entry.size, entry.mtime_ns) == (source.size, source.mtime_ns)


def hash_file(agent: Agent, rel: str, source: SourceFile) -> Entry | None:
    """The file's entry, hashed now unless the state holds its digest for this size and
    mtime; None (and an outcome) when it cannot be read or changes while read."""
    old = agent.state.get(rel)
    if old is not None and is_cached(agent.state, rel, source):
        return old
    if old is not None and old.upload and old.state == UPLOADING:
        # Other bytes under the same name: the old upload can never complete.
        with suppressed_dock():
            agent.client.terminate(old.upload, subject=agent.shown(rel))
    try:
        handle, found = dockfs.open_in_dock(agent.root, source.path, agent.shown(rel))
        with handle:
            sha256 = file_sha256(handle.fileno())
            after = os.fstat(handle.fileno())
    except SourceError as exc:
        agent.end(rel, None, "vanished" if dockfs.vanished(exc) else "failed", str(exc))
        return None
    if (found.size, found.mtime_ns) != (after.st_size, after.st_mtime_ns) or (
        found.size,
        found.mtime_ns,
    ) != (source.size, source.mtime_ns):
        agent.end(rel, None, "waiting", "仍在写入 changed while being hashed")
        return None
    entry = Entry(found.size, found.mtime_ns, sha256, ino=found.ino)
    agent.state.put(rel, entry, now=False)
    return entry


def file_sha256(fd: int) -> str:
    """SHA-256 of an open file from its first byte, in fixed blocks (memory stays flat)."""
    digest = hashlib.sha256()
    offset = 0
    while block := os.pread(fd, _HASH_BLOCK, offset):
        digest.update(block)
        offset += len(block)
    return digest.hexdigest()


def read_at(fd: int, offset: int, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        block = os.pread(fd, n, offset)
        if not block:
            break
        parts.append(block)
        offset += len(block)
        n -= len(block)
    return b"".join(parts)


class suppressed_dock:
    """Best effort (cancelling an upload nobody needs): a refusal or an outage is no fault
    of the file's; a refused token still stops the agent."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return isinstance(exc, tus.DockError) and not isinstance(exc, tus.AuthRefused)


# ------------------------------------------------------------------------------ release


def release_file(agent: Agent, rel: str, entry: Entry, why: str, note: str | None = None) -> None:
    """Free the local file, which the server holds verified under ``entry.sha256``: only
    if it is still the file that was hashed, and no process is writing it."""
    root, options = agent.root, agent.options
    path = root / rel
    try:
        st = dockfs.lstat_in_dock(root, path)
    except FileNotFoundError:
        agent.state.drop(rel)
        agent.end(rel, entry.sha256, "vanished", "释放前已不在 gone before its release")
        return
    except (OSError, SourceError) as exc:
        agent.end(rel, entry.sha256, "failed", f"cannot release: {exc}")
        return
    if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns) or (
        entry.ino is not None and st.st_ino != entry.ino
    ):
        agent.state.drop(rel)  # other bytes now: hashed and pushed as a new file
        agent.end(rel, None, "waiting", "已变更 changed after it was hashed: pushed again")
        return
    if options.writer_check and (st.st_dev, st.st_ino) in open_for_writing([root]):
        agent.end(rel, entry.sha256, "waiting", "仍在写入 still open for writing")
        return
    try:
        if options.release == "delete":
            dockfs.unlink_in_dock(root, path)
            where = "deleted"
        else:
            target = root / INGESTED_DIR / rel
            moved = dockfs.move_in_dock(root, path, target)
            where = f"→ {agent.shown(str(moved))}"
    except (OSError, SourceError) as exc:
        why_not = getattr(exc, "strerror", None) or exc
        mode = options.release
        agent.end(rel, entry.sha256, "failed", f"无法释放 cannot release ({mode}): {why_not}")
        return
    agent.state.drop(rel)
    agent.counts.add(released=1)
    said = "已在服务器 already on the server" if why == "present" else "已核验 verified"
    reason = f"{said}; {where}" + (f"; {note}" if note else "")
    agent.end(rel, entry.sha256, "released", reason)
