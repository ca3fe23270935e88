"""The dock agent's state file (``.evidence-push.json`` in the dump folder, by default).

The state file (JSON, written atomically) keeps, per file, its digest and its upload's URL: an
agent killed at any point (SIGKILL included) resumes the same uploads from the server's HEAD
offset. It is a cache, never the truth: lost, the agent hashes again and the server answers
the open upload of the same digest and path again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STATE_NAME = ".evidence-push.json"
STATE_VERSION = 1
#: How often offsets in flight are written to the state file (transitions: at once).
_SAVE_EVERY_S = 2.0

#: The states a file has in the state file.
HASHED, UPLOADING, RECEIVED, HELD, FAILED = "hashed", "uploading", "received", "held", "failed"


@dataclass(frozen=True)
class Entry:
    """What the agent knows of one local file: its identity when hashed, its digest, its
    upload (URL, last offset the server stated, furthest byte ever sent) and its state."""

    size: int
    mtime_ns: int
    sha256: str
    ino: int | None = None
    upload: str | None = None
    offset: int = 0
    sent: int = 0
    state: str = HASHED
    reason: str | None = None


class StateFile:
    """The agent's state: ``files`` maps a path relative to the dump folder to its Entry.
    Thread-safe; written as tmp + fsync + rename (+ fsync of the folder), so a crash leaves
    the old state or the new one, never half of one. Saved at most every 2 s (and at the end
    of a pass): it is a cache of digests and upload URLs, and losing its last seconds costs
    nothing but a question to the server (creating an upload the station already has open
    answers that upload, and a file is freed only on the server's word). Saving at every
    step cost the 500 × 2 MB benchmark most of its time."""

    def __init__(self, path: Path, station: str, server: str, clock: Callable[[], float]) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self.station, self.server = station, server
        self.files: dict[str, Entry] = {}
        self.lock = threading.RLock()
        self._clock = clock
        self._saved_at = -1e18
        self._dirty = False
        self.note: str | None = None  # what loading found worth saying

    def load(self) -> StateFile:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            files = data["files"]
            entries = {str(k): Entry(**v) for k, v in files.items()}
        except FileNotFoundError:
            return self
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # A damaged state costs a re-hash, never the files: set it aside and start anew.
            aside = self.path.with_name(self.path.name + ".damaged")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            self.note = f"状态文件损坏 state file {self.path} unreadable ({exc}); moved to {aside}"
            return self
        if (data.get("station"), data.get("server")) != (self.station, self.server):
            # Another server's upload URLs mean nothing here; the digests still hold.
            entries = {k: Entry(e.size, e.mtime_ns, e.sha256, e.ino) for k, e in entries.items()}
        self.files = entries
        return self

    def get(self, rel: str) -> Entry | None:
        with self.lock:
            return self.files.get(rel)

    def put(self, rel: str, entry: Entry, *, now: bool = False) -> None:
        with self.lock:
            self.files[rel] = entry
            self._dirty = True
            self.save(force=now)

    def drop(self, rel: str) -> None:
        with self.lock:
            if self.files.pop(rel, None) is not None:
                self._dirty = True
                self.save()

    def save(self, *, force: bool = False) -> None:
        with self.lock:
            if not self._dirty or (not force and self._clock() - self._saved_at < _SAVE_EVERY_S):
                return
            data = {
                "version": STATE_VERSION,
                "station": self.station,
                "server": self.server,
                "files": {k: dataclasses.asdict(e) for k, e in sorted(self.files.items())},
            }
            # ensure_ascii: a name that is not UTF-8 holds surrogate escapes, kept as \\udcXX.
            text = json.dumps(data, indent=1)
            with open(self.tmp, "w", encoding="ascii") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
            _fsync_folder(self.path.parent)
            self._saved_at, self._dirty = self._clock(), False


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(entry: Entry | None) -> str | None:
    return entry.sha256 if entry is not None else None
