"""The dock agent (`evidence dock push`): a station PC pushes its dump folder to the archive.

One pass: scan the dump folder with the watcher's completeness rules (docks.scan), hash each
complete file (SHA-256, streamed; the digest cached by path, size and mtime in the state file,
so a restart hashes nothing again), ask the server which digests it already holds verified
(``have``), upload the missing ones resumably on a few threads (docks.push_upload over
docks.tus and docks.transfer), then ask the status of each upload until the server says
``verified``. Only then, or when ``have`` said present, is the local file released: moved to
``.ingested/`` or deleted (invariant 2 of the architecture, held on the station too; see
docks.push_files). ``held`` and ``failed`` files stay where they are, with the server's reason.

This module holds the agent's vocabulary (what a run reports, what it is told) and the Agent:
its loop, its talk with the server, each pass over the dump folder and the server's word on
each upload. The state file that makes a killed agent resume is docks.push_state; what the
server is told about the station and its recorders, docks.push_metadata.

The agent never opens a catalog: a station PC has no EVIDENCE_HOME.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Literal, TypeVar

from docks import tus
from docks.push_files import hash_file, is_cached, release_file, suppressed_dock
from docks.push_metadata import RECORDER_FILE, station_info
from docks.push_state import (
    FAILED,
    HELD,
    RECEIVED,
    STATE_NAME,
    UPLOADING,
    Entry,
    StateFile,
    sha256_of,
)
from docks.push_upload import upload_file
from docks.scan import scan_station
from docks.transfer import Backoff
from pipeline import names
from pipeline.errors import EvidenceError, SourceError
from pipeline.ingest import dockfs
from pipeline.models import Station

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# ------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class FileOutcome:
    """One file's end in this run. ``state``: released, received (waiting on the server),
    waiting (still being written here), sending (interrupted; resumes), held, failed,
    refused (a link or special file, never read), vanished."""

    path: str
    sha256: str | None
    state: str
    reason: str | None = None


WAITING_STATES = ("received", "waiting", "sending")


@dataclass(frozen=True)
class PushSummary:
    uploaded: int
    skipped_present: int
    released: int
    held: int
    failed: int
    waiting: int
    bytes_sent: int
    bytes_resent: int
    files: tuple[FileOutcome, ...]

    @property
    def ok(self) -> bool:
        """Everything was released or legitimately waits (being written, on the server)."""
        return self.held == 0 and self.failed == 0


@dataclass(frozen=True)
class PushOptions:
    station: str
    root: Path
    ignore: tuple[str, ...]
    stable_s: float
    state_file: Path | None = None
    encodings: tuple[str, ...] = names.DEFAULT_ENCODINGS
    release: Literal["move", "delete"] = "move"
    concurrency: int = 4
    wait_s: float = 600.0
    interval_s: float = 10.0
    poll_s: float = 2.0
    chunk_bytes: int = 8 << 20
    writer_check: bool = True
    software_version: str = "unknown"

    @property
    def state_path(self) -> Path:
        return self.state_file or self.root / STATE_NAME


class PushProgress:
    """What the agent tells as it goes (the CLI draws it); every method may be called from
    an upload thread."""

    def note(self, message: str) -> None: ...
    def started(self, path: str, size: int) -> None: ...
    def offset(self, path: str, offset: int) -> None: ...
    def sent(self, path: str, n: int) -> None: ...
    def ended(self, outcome: FileOutcome) -> None: ...


@dataclass
class _Counts:
    uploaded: int = 0
    present: int = 0
    released: int = 0
    sent: int = 0
    resent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **values: int) -> None:
        with self.lock:
            for key, value in values.items():
                setattr(self, key, getattr(self, key) + value)


# ------------------------------------------------------------------------------ agent


class Agent:
    """Pushes one station's dump folder to one server. ``run()`` once, or ``run(watch=True)``
    until ``stop`` is set; either returns the summary of every file it dealt with."""

    def __init__(
        self,
        client: tus.DockClient,
        options: PushOptions,
        *,
        progress: PushProgress | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.options = client, options
        self.progress = progress or PushProgress()
        # The default waits end early when the agent is told to stop (Ctrl-C, SIGTERM).
        self.backoff = backoff or Backoff(sleep=self._sleep)
        self.clock = clock
        self.root = options.root
        self.station = Station(id=options.station, root=options.root)
        self.state = StateFile(options.state_path, options.station, client.origin, clock).load()
        self.outcomes: dict[str, FileOutcome] = {}
        self.in_flight: dict[str, Future[None]] = {}
        self.awaiting: set[str] = set()  # uploads complete, status not yet final
        self.counts = _Counts()
        self.chunk_bytes = options.chunk_bytes
        self.workers = options.concurrency
        self.max_upload_bytes: int | None = None
        self.keepalive_s = 60.0
        self._stop = threading.Event()
        self._fatal: BaseException | None = None
        self._lock = threading.Lock()

    # ---- the loop

    def _sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def run(self, *, watch: bool = False, stop: threading.Event | None = None) -> PushSummary:
        """One-shot: scan, upload, wait up to ``wait_s`` for the server's confirmations.
        ``watch``: rescan every ``interval_s`` until ``stop`` is set. Raises AuthRefused (the
        token), and in one-shot mode Unreachable when the server never answered."""
        if stop is not None:
            self._stop = stop
        if self.state.note:
            self.progress.note(self.state.note)
        pool: ThreadPoolExecutor | None = None
        try:
            self._register(forever=watch)
            pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dock-push")
            next_scan = next_poll = self.clock()
            deadline: float | None = None
            next_keepalive = self.clock() + self.keepalive_s
            while not self._stop.is_set():
                now = self.clock()
                if now >= next_scan:
                    self._pass(pool, watch)
                    next_scan = now + self.options.interval_s if watch else float("inf")
                self._collect()
                if self.awaiting and self.clock() >= next_poll:
                    self._poll()
                    next_poll = self.clock() + self.options.poll_s
                if self.clock() >= next_keepalive:
                    self._keepalive()
                    next_keepalive = self.clock() + self.keepalive_s
                if not watch and not self.in_flight:
                    if not self.awaiting:
                        break
                    deadline = deadline if deadline is not None else now + self.options.wait_s
                    if self.clock() >= deadline:
                        break
                self._pause()
        except KeyboardInterrupt:
            self.progress.note("stopping: uploads resume from the server's offset next time")
        finally:
            self._stop.set()
            if pool is not None:
                pool.shutdown(wait=True)
            self._collect()
            self.state.save(force=True)
            self.client.close()
        if self._fatal is not None:
            raise self._fatal
        return self.summary()

    def _pass(self, pool: ThreadPoolExecutor, watch: bool) -> None:
        if not watch:
            self._sweep(pool)
            return
        with self._lock:  # said once; a long watch keeps no line per released file
            for rel in [k for k, o in self.outcomes.items() if o.state in ("released", "vanished")]:
                del self.outcomes[rel]
        try:
            self._sweep(pool)
        except tus.AuthRefused:
            raise
        except tus.DockError as exc:  # the server down for a while: the next pass tries again
            self.progress.note(f"{exc}; next scan in {self.options.interval_s:g} s")

    def _pause(self) -> None:
        if self.in_flight:
            wait(list(self.in_flight.values()), self.options.poll_s, FIRST_COMPLETED)
        else:
            self._stop.wait(self.options.poll_s)

    def _collect(self) -> None:
        for rel, future in list(self.in_flight.items()):
            if future.done():
                del self.in_flight[rel]
        if self._fatal is not None:
            self._stop.set()

    def summary(self) -> PushSummary:
        files = tuple(self.outcomes[k] for k in sorted(self.outcomes))

        def count(*states: str) -> int:
            return sum(1 for f in files if f.state in states)

        return PushSummary(
            uploaded=self.counts.uploaded,
            skipped_present=self.counts.present,
            released=self.counts.released,
            held=count("held"),
            failed=count("failed"),
            waiting=count(*WAITING_STATES),
            bytes_sent=self.counts.sent,
            bytes_resent=self.counts.resent,
            files=files,
        )

    def end(self, rel: str, sha256: str | None, state: str, reason: str | None = None) -> None:
        outcome = FileOutcome(self.shown(rel), sha256, state, reason)
        with self._lock:
            changed = self.outcomes.get(rel) != outcome
            self.outcomes[rel] = outcome
        if changed:  # --watch: a file held for days is said once, not every pass
            self.progress.ended(outcome)
            if state in ("held", "failed"):
                log.warning("%s: %s %s", outcome.path, state, reason)

    def shown(self, rel: str) -> str:
        return names.readable(rel, self.options.encodings)

    # ---- for the upload threads (docks.push_upload) and the release (docks.push_files)

    def stopping(self) -> bool:
        """Told to stop (Ctrl-C, SIGTERM, a refused token): an upload ends where it is."""
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()

    def fatal(self, exc: tus.AuthRefused) -> None:
        """A refused token: the agent stops once the loop sees it, and run() raises it."""
        self._fatal = exc

    def awaits(self, rel: str) -> None:
        """``rel``'s upload is complete: its status is asked until the server's word is final."""
        with self._lock:
            self.awaiting.add(rel)

    # ---- talking to the server

    def _register(self, *, forever: bool) -> None:
        failures = 0
        while True:
            try:
                answer = self.client.register(self._station_info())
                break
            except tus.Unreachable as exc:
                failures += 1
                if not forever and failures > self.backoff.attempts:
                    raise
                self.progress.note(f"{exc}; retrying")
                self.backoff.wait(failures)
                if self._stop.is_set():
                    raise
        chunk = answer.get("chunk_bytes")
        if isinstance(chunk, int) and 1 << 16 <= chunk <= 1 << 30:
            self.chunk_bytes = chunk
        most = answer.get("max_concurrent_uploads")
        if isinstance(most, int) and most >= 1:
            self.workers = max(1, min(self.workers, most))
        limit = answer.get("max_upload_bytes")
        self.max_upload_bytes = limit if isinstance(limit, int) and limit > 0 else None
        every = answer.get("keepalive_s")
        if isinstance(every, int | float) and every > 0:
            self.keepalive_s = float(every)
        self._check_clock()

    def _check_clock(self) -> None:
        """mtime and docked_at are the station's clock: say so when it is off."""
        try:
            epoch_ms = self.client.server_time().get("epoch_ms")
        except tus.AuthRefused:
            raise
        except tus.DockError:
            return
        if isinstance(epoch_ms, int | float):
            offset = time.time() - epoch_ms / 1000
            if abs(offset) > 60:
                self.progress.note(
                    f"采集站时钟偏差 this station's clock is {offset:+.0f} s off the server's"
                )

    def _keepalive(self) -> None:
        try:
            self.client.keepalive(self._station_info())
        except tus.AuthRefused as exc:
            self._fatal = exc
        except tus.DockError as exc:
            self.progress.note(f"keepalive: {exc}")

    def _station_info(self) -> dict[str, Any]:
        return station_info(
            self.root,
            self.state,
            ignore=self.options.ignore,
            encodings=self.options.encodings,
            software_version=self.options.software_version,
        )

    # ---- one pass

    def _own(self, rel: PurePath) -> bool:
        """The agent's state file and the USB reader's recorder.json are not evidence."""
        path = self.root / rel
        if path in (self.state.path, self.state.tmp):
            return True
        return len(rel.parts) == 2 and rel.name == RECORDER_FILE

    def _sweep(self, pool: ThreadPoolExecutor) -> None:
        scan = scan_station(
            self.station,
            self.options.ignore,
            self.options.stable_s,
            encodings=self.options.encodings,
            writer_check=self.options.writer_check,
        )
        with self._lock:
            busy = set(self.in_flight) | self.awaiting
        for report in scan.refused:
            self.end(report.path, None, "refused", report.reason)
        seen: set[str] = set()
        for source in scan.waiting:
            rel = str(source.path.relative_to(self.root))
            seen.add(rel)
            if rel not in busy and not self._own(PurePath(rel)):
                reason = scan.waiting_reason(source, self.options.stable_s)
                self.end(rel, None, "waiting", reason)
        ready = []
        for source in scan.ready:
            rel = str(source.path.relative_to(self.root))
            seen.add(rel)
            if rel not in busy and not self._own(PurePath(rel)):
                ready.append((rel, source))
        self._forget(seen | busy)
        if not ready:
            return
        unhashed = [s for rel, s in ready if not is_cached(self.state, rel, s)]
        if unhashed:
            total = sum(s.size for s in unhashed)
            self.progress.note(f"hashing {len(unhashed)} file(s), {total} bytes")
        with ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="dock-hash") as hp:
            hashed = [
                (rel, source, entry)
                for (rel, source), entry in zip(
                    ready, hp.map(lambda r: hash_file(self, *r), ready), strict=True
                )
                if entry is not None
            ]
        self.state.save(force=True)  # a restart, even after SIGKILL, hashes none of them again
        if not hashed:
            return
        have = self._retrying(lambda: self.client.have(sorted({e.sha256 for _, _, e in hashed})))
        present = set(have.present)
        for rel, source, entry in hashed:
            if entry.sha256 in present:
                self.counts.add(present=1)
                release_file(self, rel, entry, "present")
            elif entry.state in (HELD, FAILED):
                self.end(rel, entry.sha256, entry.state, entry.reason)
            elif entry.state == RECEIVED and entry.upload:
                self.awaits(rel)
                self.end(rel, entry.sha256, "received", "等待服务器核验 waiting for the server")
            elif self.max_upload_bytes is not None and entry.size > self.max_upload_bytes:
                self.end(rel, entry.sha256, "held", f"超过服务器上限 larger than the "
                          f"server's max_upload_bytes ({self.max_upload_bytes})")  # fmt: skip
            else:
                self.in_flight[rel] = pool.submit(upload_file, self, rel, source)

    def _forget(self, seen: set[str]) -> None:
        """Files gone from the dump folder (released by hand, deleted) leave the state; an
        upload of theirs still open is cancelled (the server holds its part file)."""
        with self.state.lock:
            gone = {k: e for k, e in self.state.files.items() if k not in seen}
        for rel, entry in gone.items():
            try:
                dockfs.lstat_in_dock(self.root, self.root / rel)
                continue  # still there (a folder unreadable for a moment): kept
            except FileNotFoundError:
                pass
            except (OSError, SourceError):
                continue
            if entry.upload and entry.state == UPLOADING:
                with suppressed_dock():
                    self.client.terminate(entry.upload, subject=self.shown(rel))
            self.state.drop(rel)

    def _retrying(self, call: Callable[[], _T]) -> _T:
        failures = 0
        while True:
            try:
                return call()
            except tus.Unreachable:
                failures += 1
                if failures > self.backoff.attempts or self._stop.is_set():
                    raise
                self.backoff.wait(failures)

    # ---- the server's word on each complete upload

    def _poll(self) -> None:
        """Ask the status of every complete upload; release what is verified."""
        with self._lock:
            waiting = sorted(self.awaiting)
        by_rel = {rel: e for rel in waiting if (e := self.state.get(rel)) and e.upload}
        urls = [e.upload for e in by_rel.values() if e.upload]
        try:
            try:
                statuses = self.client.status(urls)
            except tus.DockError as exc:
                if exc.status != 404:
                    raise
                # One upload the server no longer knows fails the whole batch: ask each.
                statuses = [s for url in urls if (s := self._one_status(url))]
        except tus.AuthRefused as exc:
            self._fatal = exc
            return
        except tus.DockError as exc:
            self.progress.note(f"status: {exc}")
            return
        by_id = {str(s.get("upload")): s for s in statuses}
        for rel in waiting:
            entry = by_rel.get(rel)
            status = by_id.get(tus.upload_id(entry.upload)) if entry and entry.upload else None
            if entry is None or status is None:
                self._settled(rel)
                if entry is not None:  # unknown to the server: a new upload next pass
                    self.state.put(rel, Entry(entry.size, entry.mtime_ns, entry.sha256, entry.ino))
                gone = "服务器不再知道此上传 the server no longer knows this upload"
                self.end(rel, sha256_of(entry), "failed", gone)
                continue
            self._judge(rel, entry, status)

    def _one_status(self, url: str) -> dict[str, Any] | None:
        try:
            return self.client.upload_status(url)
        except tus.UploadGone:
            return None

    def _judge(self, rel: str, entry: Entry, status: dict[str, Any]) -> None:
        state, reason = status.get("state"), status.get("reason")
        reason = str(reason) if reason else None
        if state == "verified":
            self._settled(rel)
            if status.get("sha256") == entry.sha256:
                release_file(self, rel, entry, "verified", reason)
                return
            # Never free a file on the word about another digest.
            other = status.get("sha256")
            odd = f"服务器核验的摘要不同 the server verified {other}, not {entry.sha256}"
            self.state.put(rel, dataclasses.replace(entry, state=FAILED, reason=odd))
            self.end(rel, entry.sha256, "failed", odd)
        elif state in ("held", "failed"):
            self._settled(rel)
            self.state.put(rel, dataclasses.replace(entry, state=str(state), reason=reason))
            self.end(rel, entry.sha256, str(state), reason)
        elif state == "terminated":
            self._settled(rel)
            self.state.put(rel, Entry(entry.size, entry.mtime_ns, entry.sha256, entry.ino))
            self.end(rel, entry.sha256, "failed", "上传已取消 the upload was terminated")
        else:  # receiving (its last chunk being checked), received: ingest to come
            self.end(rel, entry.sha256, "received", "等待服务器核验 waiting for the server")

    def _settled(self, rel: str) -> None:
        with self._lock:
            self.awaiting.discard(rel)


def push_options(
    station: str, root: Path, ignore: Iterable[str], stable_s: float, **more: Any
) -> PushOptions:
    """Options with the dump folder checked: it must be a folder (the agent creates none)."""
    if not root.is_dir():
        raise EvidenceError(f"采集站目录不存在 dump folder {root} is not a folder")
    state_file = more.pop("state_file", None)
    if state_file is not None:
        state_file = Path(state_file).resolve()
        if not state_file.parent.is_dir():
            raise EvidenceError(f"状态文件目录不存在 no folder for the state file {state_file}")
    return PushOptions(
        station, root.resolve(), tuple(ignore), stable_s, state_file=state_file, **more
    )
