"""The custody chain: a stable hash encoding, one sequence under parallel writers (threads and
processes, SQLite and PostgreSQL), checkpoints at every N events and every T minutes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.catalog import Catalog, open_catalog
from pipeline.custody import fixity as verify
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.checkpoints import Checkpointer, checkpointer, listing
from pipeline.custody.keys import create_instance_key
from pipeline.models import EventKind
from pipeline.settings import Settings
from tests.conftest import REPO, make_settings

T0 = datetime(2026, 5, 5, 8, 30, tzinfo=UTC)


def test_the_hash_encoding_is_the_documented_one() -> None:
    """A known answer: changing the encoding breaks every archive and every exported bag."""
    record = {
        "seq": 7,
        "at": "2026-05-05T08:30:00.000000+00:00",
        "actor": "1023",
        "kind": "viewed",
        "media_id": 3,
        "station_id": "DOCK-01",
        "subject": "现场 执法.mp4",
        "details": {"reason": "复核 案件 2026-0113", "n": [1, 2.5, None]},
        "prev_hash": "ab" * 32,
    }
    body = (
        '{"actor":"1023","at":"2026-05-05T08:30:00.000000+00:00",'
        '"details":{"n":[1,2.5,null],"reason":"复核 案件 2026-0113"},"kind":"viewed",'
        '"media_id":3,"station_id":"DOCK-01","subject":"现场 执法.mp4"}'
    )
    body_hash = hashlib.sha256(body.encode()).hexdigest()
    link = f'{{"body_hash":"{body_hash}","media_id":3,"prev_hash":"{"ab" * 32}","seq":7}}'
    assert rules.body_hash(record) == body_hash
    assert rules.event_hash(record) == hashlib.sha256(link.encode()).hexdigest()
    assert rules.event_hash(record) == (
        "1e71371e59e50ad0ab52218f79f2eccda6d6382c36fbd25ea9b832c52b0e7206"
    )


def test_a_stored_event_rehashes_to_its_hash(any_catalog_url: str) -> None:
    """Details are hashed as the JSON column gives them back (tuples, non-ASCII, floats)."""
    cat = open_catalog(any_catalog_url)
    with cat.begin() as conn:
        made = custody.append(
            conn, EventKind.VIEWED, "张三", media_id=1, details={"t": (1, 2), "x": 0.1, "z": "案"}
        )
    with cat.begin() as conn:
        (stored,) = custody.events(conn)
    assert stored.record() == made.record()
    assert rules.event_hash(stored.record()) == stored.hash
    cat.dispose()


@pytest.fixture
def signed(any_catalog_url: str, tmp_path: Path) -> Iterator[tuple[Catalog, Settings]]:
    """A catalog (SQLite or PostgreSQL) and the settings of an instance with a key."""
    home = tmp_path / "home"
    create_instance_key(home)
    settings = make_settings(
        home, catalog={"url": any_catalog_url}, custody={"checkpoint_every_events": 10}
    )
    cat = open_catalog(any_catalog_url)
    yield cat, settings
    cat.dispose()


def _writers_in_threads(cat: Catalog, writers: int, each: int, signer: Checkpointer) -> None:
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(each):
                with cat.begin() as conn:
                    custody.append(conn, EventKind.VIEWED, f"w{n}", details={"i": i})
                if n == 0 and i % 7 == 0:  # a signer races the writers
                    signer.sign_due(cat)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# Writer processes pause between events, as real ones do (a file to hash, a proxy to make),
# so the threads below get the lock in between. They write until told to stop, and are told
# only once the log shows them writing after the threads began: the interleaving is waited
# for, not hoped for (a fixed count of events once let a slow start of the threads miss it).
WRITER = """
import os, sys, time
from pipeline.custody import log as custody
from pipeline.catalog import open_catalog
from pipeline.models import EventKind
cat = open_catalog(sys.argv[1])
i = 0
while i == 0 or not os.path.exists(sys.argv[3]):
    with cat.begin() as conn:
        custody.append(conn, EventKind.VERIFIED, sys.argv[2], details={"i": i})
    i += 1
    time.sleep(0.005)
cat.dispose()
"""


def test_parallel_writers_in_threads_and_processes_never_fork_the_chain(
    signed: tuple[Catalog, Settings], tmp_path: Path
) -> None:
    cat, settings = signed
    signer = checkpointer(settings)
    stop = tmp_path / "stop"
    script = [sys.executable, "-c", WRITER, settings.catalog_url]
    procs = [subprocess.Popen([*script, f"p{n}", str(stop)], cwd=REPO) for n in range(3)]
    try:
        _wait_for(cat, lambda events: bool(events), "no writer process appended")
        _writers_in_threads(cat, writers=3, each=10, signer=signer)  # while the processes write
        with cat.begin() as conn:
            first = min(e.seq for e in custody.events(conn) if e.actor.startswith("w"))
        _wait_for(
            cat,
            lambda events: any(e.actor.startswith("p") and e.seq > first for e in events),
            "no process appended after the threads began",
        )
    finally:
        stop.touch()
        codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0] * 3
    signer.sign_due(cat, force=True)

    with cat.begin() as conn:
        events = list(custody.events(conn))
        signed_at = [cp.seq for cp in listing(conn)]
    total = len(events)
    assert [e.seq for e in events] == list(range(1, total + 1)), "one sequence: no gap, no fork"
    by_thread = [e.seq for e in events if e.actor.startswith("w")]
    by_process = [e.seq for e in events if e.actor.startswith("p")]
    assert len(by_thread) == 30 and len(by_process) == total - 30
    assert {e.actor for e in events if e.actor.startswith("p")} == {"p0", "p1", "p2"}
    assert min(by_thread) < max(by_process), "threads and processes wrote at the same time"
    log = verify.check_log(cat, settings)
    assert log.problems == () and log.events == total
    assert set(range(10, total + 1, 10)) <= set(signed_at), "a checkpoint at every 10th event"


def _wait_for(
    cat: Catalog, seen: Callable[[list[custody.CustodyEvent]], bool], failure: str
) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with cat.begin() as conn:
            if seen(list(custody.events(conn))):
                return
        time.sleep(0.02)
    raise AssertionError(f"{failure} within 60 s")


def test_the_head_is_signed_once_t_minutes_have_passed(signed: tuple[Catalog, Settings]) -> None:
    cat, settings = signed
    signer = checkpointer(settings)  # every 10 events or 15 minutes
    with cat.begin() as conn:
        for _ in range(3):
            custody.append(conn, EventKind.VIEWED, "t")
    assert [cp.seq for cp in signer.sign_due(cat, now=T0)] == [3], "the first one at once"
    with cat.begin() as conn:
        custody.append(conn, EventKind.VIEWED, "t")
    assert signer.sign_due(cat, now=T0 + timedelta(minutes=5)) == []
    assert [cp.seq for cp in signer.sign_due(cat, now=T0 + timedelta(minutes=15))] == [4]
    assert signer.sign_due(cat, now=T0 + timedelta(hours=2)) == [], "the head did not move"


def test_a_chunked_scan_reads_the_whole_log_and_its_head(tmp_path: Path) -> None:
    cat = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with cat.begin() as conn:
        for i in range(10):
            custody.append(conn, EventKind.VIEWED, "t", details={"i": i})
    scan = custody.Scan(cat, chunk=3)
    assert [e.seq for e in scan] == list(range(1, 11))
    assert scan.head is not None and scan.head.seq == 10
    cat.dispose()
