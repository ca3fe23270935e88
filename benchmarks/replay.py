"""7. Record replay: how fast ``pipeline.custody.replay.check_records`` holds the catalog's rows
to the custody log, and that its memory does not grow with the archive.

A synthetic SQLite catalog is built directly (executemany, not the ingest: what is measured is
the replay): media rows as the ingest writes them, and per item five hashed, chained events
as the ingest and an archivist append them — INGESTED (with its row), PROXY_MADE,
THUMBNAIL_MADE, RELEASED, VIEWED. The replay runs once on a small catalog and once on a large
one (1M events in the full run), each in a child process (``python -m benchmarks.replay
CATALOG_URL``) whose peak RSS is reset once the catalog is open, so the peak is the replay's.

    python -m benchmarks --only replay          # as part of the runner
    python -m benchmarks.replay --build DIR N   # build a catalog of N events in DIR, replay it
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.report import Figure, Result
from benchmarks.workbench import scratch
from pipeline.catalog import media as media_db
from pipeline.catalog import open_catalog
from pipeline.catalog.schema import custody_events, custody_head, media, stations
from pipeline.custody import log as custody
from pipeline.custody import replay
from pipeline.custody import verify_bag as rules
from pipeline.models import (
    EventKind,
    Flag,
    Identification,
    IdSource,
    MediaKind,
    MediaStatus,
    ProbeResult,
    SourceFile,
)

NUMBER, NAME = 7, "record replay: catalog rows against the custody log"
REPO = Path(__file__).resolve().parent.parent
EVENTS_PER_ITEM = 5
FULL = (10_000, 1_000_000)  # events: a small archive, a large one
QUICK = (1_000, 20_000)
BATCH = 10_000
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def run(work: Path, quick: bool) -> Result:
    figures: list[Figure] = []
    samples: dict[str, Any] = {}
    with scratch(work / "replay") as root:
        for events in QUICK if quick else FULL:
            url = f"sqlite:///{root / f'{events}.db'}"
            started = time.perf_counter()
            build(url, events // EVENTS_PER_ITEM)
            built_s = time.perf_counter() - started
            found = _replay_in_child(url)
            samples[str(events)] = {**found, "build_s": round(built_s, 1)}
            label = f"{events:,} events, {found['rows']:,} rows"
            figures += [
                Figure(f"replay.{events}.seconds", f"{label}: replay time", found["seconds"], "s"),
                Figure(
                    f"replay.{events}.events_per_s",
                    f"{label}: events per second",
                    round(found["events"] / found["seconds"]),
                    "events/s",
                ),
                Figure(
                    f"replay.{events}.rows_per_s",
                    f"{label}: rows per second",
                    round(found["rows"] / found["seconds"]),
                    "rows/s",
                ),
                Figure(
                    f"replay.{events}.peak_mib",
                    f"{label}: peak RSS growth of the replay",
                    found["peak_mib"] - found["before_mib"],
                    "MiB",
                ),
            ]
    notes = (
        "SQLite, one child process per replay; RSS is the whole process's, its peak reset "
        "once the catalog is open",
        f"{EVENTS_PER_ITEM} events per item; every one of them is decoded, hashed rows built "
        "in bulk",
    )
    return Result(NUMBER, NAME, tuple(figures), notes, samples=samples)


def build(url: str, items: int) -> None:
    """A migrated catalog with ``items`` media rows and ``5 × items`` chained events."""
    catalog = open_catalog(url)
    try:
        with catalog.begin() as conn:
            conn.execute(stations.insert().values(id="S1", name="", root="/dock", created_at=T0))
        prev, seq = rules.GENESIS, 0
        for start in range(1, items + 1, BATCH):
            rows, events = [], []
            for media_id in range(start, min(start + BATCH, items + 1)):
                values = _values(media_id)
                rows.append(values)
                for kind, details in _life(media_id, values):
                    seq += 1
                    at = T0 + timedelta(seconds=seq)
                    record = {
                        "seq": seq,
                        "at": custody.canonical_time(at),
                        "actor": "bench",
                        "kind": kind.value,
                        "media_id": media_id,
                        "station_id": "S1",
                        "subject": values["source_path"],
                        "details": json.loads(json.dumps(details)),
                        "prev_hash": prev,
                    }
                    prev = rules.event_hash(record)
                    events.append({**record, "at": at, "hash": prev})
            with catalog.begin() as conn:
                conn.execute(media.insert(), rows)
                conn.execute(custody_events.insert(), events)
        with catalog.begin() as conn:
            conn.execute(custody_head.update().values(seq=seq, hash=prev))
    finally:
        catalog.dispose()


def _values(media_id: int) -> dict[str, Any]:
    start = T0 + timedelta(minutes=media_id)
    source = SourceFile("S1", Path(f"/dock/BWC{media_id % 97:04d}/{media_id:08d}.mp4"), 1, 1)
    probe = ProbeResult(
        MediaKind.VIDEO,
        container="MPEG-4",
        duration_s=61.44,
        video_codec="AVC",
        audio_codec="AAC",
        width=1920,
        height=1080,
        frame_rate=29.97,
        recorded_at=start,
        make="ZFJLY",
        model="DSJ-A9",
        latitude=30.123456,
        longitude=104.654321,
        extra={"handler": "VideoHandler"},
    )
    ident = Identification(
        f"BWC{media_id % 97:04d}",
        {"path": f"BWC{media_id % 97:04d}"},
        start,
        start + timedelta(seconds=61.44),
        IdSource.METADATA,
        f"{media_id % 500:04d}",
        (Flag("clock-drift", "drift of 3 s"),),
    )
    values = media_db.row_values(
        sha256=f"{media_id:064x}",
        size=50_000_000 + media_id,
        source=source,
        probe=probe,
        ident=ident,
        status=MediaStatus.ARCHIVED,
        now=start + timedelta(hours=1),
    )
    return values


def _life(media_id: int, values: dict[str, Any]) -> list[tuple[EventKind, dict[str, Any]]]:
    keys = {"proxy_key": f"{values['sha256']}/proxy.mp4",
            "thumbnail_key": f"{values['sha256']}/thumbnail.jpg"}  # fmt: skip
    row = replay.recorded_row({k: v for k, v in values.items() if k != "extra"})
    values.update(keys)  # the row ends with its derivatives
    derived = replay.recorded_row(keys)
    return [
        (
            EventKind.INGESTED,
            {
                "sha256": values["sha256"],
                "size": values["size"],
                "kind": values["kind"],
                "original_name": values["original_name"],
                "device": values["device_serial"],
                "officer": values["officer_id"],
                "flags": ["clock-drift"],
                "job": media_id,
                "row": row,
                "extra_sha256": replay.digest(values["extra"]),
            },
        ),
        (EventKind.PROXY_MADE, {"key": keys["proxy_key"], "row": derived}),
        (EventKind.THUMBNAIL_MADE, {"key": keys["thumbnail_key"], "row": derived}),
        (EventKind.RELEASED, {"mode": "move", "to": "moved", "sha256": values["sha256"]}),
        (EventKind.VIEWED, {"reason": "review", "purpose": "case"}),
    ]


def _replay_in_child(url: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.replay", url],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _child(url: str) -> None:
    catalog = open_catalog(url)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status_mib("VmRSS")
    found = replay.check_records(catalog)
    peak = _status_mib("VmHWM")
    catalog.dispose()
    if found.problems:
        raise SystemExit(f"the synthetic catalog does not replay clean: {found.problems[:5]}")
    print(
        json.dumps(
            {
                "events": found.events,
                "rows": found.rows,
                "seconds": found.seconds,
                "before_mib": before,
                "peak_mib": peak,
            }
        )
    )


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)  # the kernel writes kB
    raise SystemExit(f"no {field} in /proc/self/status")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build"]:
        folder, events = Path(sys.argv[2]), int(sys.argv[3])
        folder.mkdir(parents=True, exist_ok=True)
        target = f"sqlite:///{folder / f'replay-{events}.db'}"
        build(target, events // EVENTS_PER_ITEM)
        print(json.dumps(_replay_in_child(target)))
    else:
        _child(sys.argv[1])
