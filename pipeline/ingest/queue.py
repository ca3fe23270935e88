"""What is waiting to be ingested, station by station: the queue view of ``evidence status``
and of the watcher's ``ingest-queue`` artifact, and the sweep heartbeat it reads.

A sweep that finds nothing to take makes no flow run (1,440 empty runs a day per station
would bury the ones that matter); it leaves a heartbeat instead: one small JSON file per
station in EVIDENCE_HOME/sweeps/, rewritten whole (write and rename) at every sweep, with the
time of the last sweep, of the last one that went without a system error and of the last one
that had files, and the idle sweeps since then. The file is the sweeping host's: on many
hosts the Prefect event ``evidence.station.swept`` carries the same heartbeat to the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pipeline.catalog import jobs as jobs_db
from pipeline.models import JobState, SourceFile

HEARTBEAT_DIR = "sweeps"


@dataclass(frozen=True)
class Heartbeat:
    """The sweeps of one station, as the sweeping host last recorded them."""

    station_id: str
    last_sweep: datetime | None = None
    last_ok_sweep: datetime | None = None  # the last sweep without a system error
    last_files: datetime | None = None  # the last sweep that had files to take
    idle_sweeps: int = 0  # sweeps with nothing to take since ``last_files``
    waiting: int = 0  # files the last sweep found still being written

    def after(self, at: datetime, *, files: int, waiting: int, ok: bool) -> Heartbeat:
        """This heartbeat after one more sweep at ``at``."""
        return replace(
            self,
            last_sweep=at,
            last_ok_sweep=at if ok else self.last_ok_sweep,
            last_files=at if files else self.last_files,
            idle_sweeps=0 if files else self.idle_sweeps + 1,
            waiting=waiting,
        )


def _heartbeat_path(home: Path, station_id: str) -> Path:
    # Station ids are identifiers (pipeline.registry.stations), safe as file names; the hex
    # form keeps any other one inside the folder.
    safe = station_id if station_id.replace("-", "").replace("_", "").isalnum() else None
    return home / HEARTBEAT_DIR / f"{safe or station_id.encode().hex()}.json"


def read_heartbeat(home: Path, station_id: str) -> Heartbeat:
    try:
        data = json.loads(_heartbeat_path(home, station_id).read_text())
    except (OSError, ValueError):
        return Heartbeat(station_id)

    def moment(key: str) -> datetime | None:
        return datetime.fromisoformat(data[key]) if data.get(key) else None

    return Heartbeat(
        station_id,
        last_sweep=moment("last_sweep"),
        last_ok_sweep=moment("last_ok_sweep"),
        last_files=moment("last_files"),
        idle_sweeps=int(data.get("idle_sweeps", 0)),
        waiting=int(data.get("waiting", 0)),
    )


def record_sweep(
    home: Path, station_id: str, at: datetime, *, files: int, waiting: int, ok: bool
) -> Heartbeat:
    """Note one sweep of the station (``files``: how many it had to take)."""
    beat = read_heartbeat(home, station_id).after(at, files=files, waiting=waiting, ok=ok)
    path = _heartbeat_path(home, station_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(
        json.dumps(
            {
                "station_id": station_id,
                "last_sweep": beat.last_sweep.isoformat() if beat.last_sweep else None,
                "last_ok_sweep": beat.last_ok_sweep.isoformat() if beat.last_ok_sweep else None,
                "last_files": beat.last_files.isoformat() if beat.last_files else None,
                "idle_sweeps": beat.idle_sweeps,
                "waiting": beat.waiting,
            }
        )
    )
    temporary.replace(path)
    return beat


# ------------------------------------------------------------------------------- the view


@dataclass(frozen=True)
class FailedJob:
    job_id: int
    path: str
    state: JobState
    attempts: int
    reason: str


@dataclass(frozen=True)
class StationQueue:
    """What waits at one station."""

    station_id: str
    settling: int  # files on the dock still being written (or not yet settled)
    settling_bytes: int
    jobs: dict[str, int]  # unfinished jobs by state (pending, stored, catalogued, derived)
    failed: tuple[FailedJob, ...]  # unfinished jobs whose last attempt hit a system error
    derive_backlog: int  # catalogued, proxies and release still to come
    derive_hours: float  # hours of footage in that backlog
    oldest_waiting: str | None  # the file waiting longest (a job, else a settling file)
    oldest_since: datetime | None
    last_sweep: datetime | None
    last_ok_sweep: datetime | None
    idle_sweeps: int
    # A push station (station API): whether it is online, and its uploads on this server.
    pushes: bool = False
    online: bool | None = None
    last_seen: datetime | None = None  # its last register or keepalive
    uploading: int = 0  # uploads still receiving
    uploaded: int = 0  # whole and checked, not yet verified in the archive

    @property
    def waiting_jobs(self) -> int:
        return sum(self.jobs.values())


@dataclass(frozen=True)
class QueueView:
    at: datetime
    stations: tuple[StationQueue, ...]

    @property
    def total_waiting(self) -> int:
        return sum(s.waiting_jobs + s.settling for s in self.stations)


def assemble(
    at: datetime,
    station_ids: Iterable[str],
    counts: Iterable[jobs_db.StateCount],
    failing: Iterable[jobs_db.Job],
    backlog: Iterable[jobs_db.Backlog],
    oldest: Iterable[jobs_db.Waiting],
    settling: Mapping[str, list[SourceFile]],
    beats: Mapping[str, Heartbeat],
) -> QueueView:
    """The view from what the catalog, the docks and the heartbeats say."""
    by_station: dict[str, dict[str, int]] = {}
    for c in counts:
        by_station.setdefault(c.station_id, {})[c.state.value] = c.count
    failed: dict[str, list[FailedJob]] = {}
    for j in failing:
        failed.setdefault(j.station_id, []).append(
            FailedJob(j.id, j.source_path, j.state, j.attempts, j.last_error or "")
        )
    backlogs = {b.station_id: b for b in backlog}
    first = {w.station_id: w for w in oldest}
    stations = []
    for sid in station_ids:
        files = settling.get(sid, [])
        beat = beats.get(sid, Heartbeat(sid))
        waited = first.get(sid)
        path, since = (waited.source_path, waited.since) if waited else (None, None)
        if path is None and files:
            eldest = min(files, key=lambda f: f.mtime_ns)
            path = eldest.shown
            since = datetime.fromtimestamp(eldest.mtime_ns / 1e9, tz=at.tzinfo)
        b = backlogs.get(sid)
        stations.append(
            StationQueue(
                station_id=sid,
                settling=len(files),
                settling_bytes=sum(f.size for f in files),
                jobs=by_station.get(sid, {}),
                failed=tuple(failed.get(sid, [])),
                derive_backlog=b.count if b else 0,
                derive_hours=b.footage_s / 3600 if b else 0.0,
                oldest_waiting=path,
                oldest_since=since,
                last_sweep=beat.last_sweep,
                last_ok_sweep=beat.last_ok_sweep,
                idle_sweeps=beat.idle_sweeps,
            )
        )
    return QueueView(at, tuple(stations))
