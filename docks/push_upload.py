"""One file's upload by the dock agent, on a worker thread (docs/station-api.md).

A file the server lacks gets an upload (tus creation, its metadata naming the file and its
recorder), then is sent resumably from the server's offset (docks.transfer); its URL and
offsets go to the state file as they come, so a killed agent resumes the same upload. An upload
the server dropped is created anew; a whole-file digest mismatch hashes the file again and
sends it anew, once. A complete upload waits for the server's verification (docks.push polls).
Whatever goes wrong ends this file alone, with its reason; a refused token stops the agent.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from docks import tus
from docks.push_files import file_sha256, read_at, release_file
from docks.push_metadata import upload_metadata
from docks.push_state import FAILED, RECEIVED, UPLOADING, Entry, sha256_of
from docks.transfer import Transfer, send_file
from pipeline.errors import SourceError
from pipeline.ingest import dockfs
from pipeline.models import SourceFile

if TYPE_CHECKING:
    from docks.push import Agent

log = logging.getLogger("docks.push")  # the agent's one logger, as before the split


class _Stopped(Exception):
    """The agent is stopping (Ctrl-C, or a refused token): an upload ends where it is."""


def upload_file(agent: Agent, rel: str, source: SourceFile) -> None:
    """One file's upload; whatever goes wrong ends this file alone, with its reason,
    except a refused token, which stops the agent."""
    try:
        _upload(agent, rel, source)
    except _Stopped:
        entry = agent.state.get(rel)
        agent.end(rel, sha256_of(entry), "sending",
                  "已中断 interrupted: resumes from the server's offset")  # fmt: skip
    except tus.AuthRefused as exc:
        agent.fatal(exc)
        agent.stop()
    except tus.Unreachable as exc:
        entry = agent.state.get(rel)
        if agent.stopping():  # its retries cut short by the stop
            agent.end(rel, sha256_of(entry), "sending", "已中断 interrupted: resumes from the "
                      "server's offset")  # fmt: skip
            return
        agent.end(rel, sha256_of(entry), "failed",
                  f"未能上传 not sent, resumes next time: {exc}")  # fmt: skip
    except tus.DockError as exc:
        # Refused (its path, its size: 4xx): held here with the server's reason. The next
        # run asks again (a refusal costs one request; the server's limits may change).
        refused = exc.status is not None and 400 <= exc.status < 500
        agent.end(rel, sha256_of(agent.state.get(rel)), "held" if refused else "failed", str(exc))
    except SourceError as exc:
        agent.end(rel, None, "vanished" if dockfs.vanished(exc) else "failed", str(exc))
    except Exception as exc:  # a bug must not end the other files' uploads
        log.exception("uploading %s", agent.shown(rel))
        agent.end(rel, None, "failed", f"内部错误 internal error: {type(exc).__name__}: {exc}")


def _upload(agent: Agent, rel: str, source: SourceFile) -> None:
    shown = agent.shown(rel)
    entry = agent.state.get(rel)
    if entry is None:  # hashed by this pass: cannot be; say so rather than guess
        raise tus.DockError(f"{shown}: 状态丢失 no state entry")
    handle, found = dockfs.open_in_dock(agent.root, source.path, shown)
    with handle:
        if (found.size, found.mtime_ns) != (entry.size, entry.mtime_ns):
            agent.state.drop(rel)
            agent.end(rel, None, "waiting", "仍在写入 changed since it was hashed")
            return
        fd = handle.fileno()
        for attempt in range(2):  # a digest mismatch: hashed again, sent anew once
            known: int | None = None  # the offset, when no HEAD is needed to know it
            if entry.upload is None:
                created = _create(agent, rel, source, entry)
                if created is None:
                    return
                entry, known = created
            try:
                entry = _send(agent, rel, fd, entry, known)
            except tus.UploadGone:
                entry = dataclasses.replace(entry, upload=None, offset=0, sent=0)
                agent.state.put(rel, entry)
                continue
            except tus.DigestMismatch as exc:
                again = file_sha256(fd)
                if attempt == 1:  # read the same twice, refused twice: a person looks
                    reason = f"{exc} (hashed again here: {again})"
                    agent.state.put(rel, dataclasses.replace(entry, state=FAILED, reason=reason))
                    agent.end(rel, entry.sha256, "failed", reason)
                    return
                entry = dataclasses.replace(entry, sha256=again, upload=None, offset=0, sent=0)
                agent.state.put(rel, entry)
                continue
            if agent.stopping():
                raise _Stopped
            agent.state.put(rel, dataclasses.replace(entry, state=RECEIVED))
            agent.counts.add(uploaded=1)
            agent.awaits(rel)
            agent.end(rel, entry.sha256, "received", "等待服务器核验 waiting for the server")
            return
    raise tus.DockError(f"{shown}: 上传两次丢失 the server dropped its upload twice")


def _create(
    agent: Agent, rel: str, source: SourceFile, entry: Entry
) -> tuple[Entry, int | None] | None:
    metadata = upload_metadata(agent.root, rel, source, entry, agent.options.encodings)
    failures = 0
    while True:
        if agent.stopping():
            raise _Stopped
        try:
            url, offset = agent.client.create(entry.size, metadata, subject=agent.shown(rel))
            break
        except tus.TooManyUploads as exc:
            agent.backoff.sleep(exc.retry_after)  # the station's other uploads go first
        except tus.Unreachable:
            failures += 1
            if failures > agent.backoff.attempts:
                raise
            agent.backoff.wait(failures)
        except tus.AlreadyArchived:
            # Held already, by the archive's word; freed only on have's "present".
            if entry.sha256 in agent.client.have([entry.sha256]).present:
                agent.counts.add(present=1)
                release_file(agent, rel, entry, "present")
            else:
                agent.end(rel, entry.sha256, "received", "已归档 already archived, "
                          "not yet confirmed verified")  # fmt: skip
            return None
    entry = dataclasses.replace(entry, upload=url, state=UPLOADING, offset=offset or 0, sent=0)
    agent.state.put(rel, entry)
    return entry, offset


def _send(agent: Agent, rel: str, fd: int, entry: Entry, offset: int | None = None) -> Entry:
    assert entry.upload is not None
    shown = agent.shown(rel)
    transfer = Transfer(high=entry.sent)
    current = entry

    def on_offset(offset: int) -> None:
        nonlocal current
        current = dataclasses.replace(current, offset=offset, sent=transfer.high)
        agent.state.put(rel, current, now=False)
        agent.progress.offset(shown, offset)

    def on_sent(n: int) -> None:
        agent.progress.sent(shown, n)

    agent.progress.started(shown, entry.size)
    before_sent, before_resent = transfer.sent, transfer.resent
    try:
        send_file(
            agent.client,
            entry.upload,
            lambda offset, n: read_at(fd, offset, n),
            entry.size,
            offset=offset,
            chunk_bytes=agent.chunk_bytes,
            backoff=agent.backoff,
            transfer=transfer,
            on_sent=on_sent,
            on_offset=on_offset,
            stopped=agent.stopping,
            subject=shown,
        )
    finally:
        agent.counts.add(sent=transfer.sent - before_sent, resent=transfer.resent - before_resent)
        current = dataclasses.replace(current, sent=transfer.high)
        agent.state.put(rel, current)
    return current
