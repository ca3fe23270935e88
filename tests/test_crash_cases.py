"""SIGKILL `evidence cases archive`, `evidence export` and `evidence quarantine release` at
seeded random moments, run each again to the end, and find the work done exactly once: one
complete bag per sealed case, no half-written export that looks complete, each quarantine
entry released once with one custody event, a clean custody chain, and no temporary copy of
evidence left behind once the next run has been.

One home serves every kill: it holds a case per sealing, a bag folder per export and an
entry per release, so each kill works on its own object while the archive around it grows
as it would in use (and each rerun also meets the leftovers of every earlier kill).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.cases import records as cases
from pipeline.cases.categories import load_categories
from pipeline.cases.seal import extract, verify_sealed_bag
from pipeline.catalog import Catalog, open_catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog.jobs import new_owner
from pipeline.catalog.schema import media
from pipeline.custody import fixity as verify
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as bag_verifier
from pipeline.custody.checkpoints import checkpointer
from pipeline.custody.keys import create_instance_key, pinned_keys
from pipeline.ingest.steps import IngestContext
from pipeline.models import Case, CaseStatus, Device, DeviceKind, EventKind, Officer
from pipeline.registry import records as registry
from pipeline.registry.stations import add_station
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings

#: About 40 `evidence` processes of ~1.5 s each (start-up and the catalog opened).
pytestmark = pytest.mark.slow

EVIDENCE = [sys.executable, "-m", "interfaces.cli"]
SEED = 20260512
#: Kills per command, at least (so 21 SIGKILLs or more in all), up to IN_A_ROW on one object
#: before the run that finishes it: a rerun also meets what a killed rerun left.
KILLS, IN_A_ROW = 7, 4
#: Cases, bags, entries: the baseline's, and plenty of room for runs that end before their
#: kill or are killed after their work was done (that object is done; the next is taken).
OBJECTS = 3 * KILLS
#: Documents in every sealed case and exported bag, each padded to this size: big enough
#: that the copy, tar and store steps take a good share of a run, not just Python's start-up.
PER_CASE, DOC_BYTES = 2, 8 << 20
T0 = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)


@dataclass
class Home:
    settings: Settings
    catalog: Catalog
    docs: list[int]  # archived documents, linked to every case
    entries: list[int]  # open quarantine entries (unregistered recorder)
    originals: dict[str, int]  # sha256 -> size, every item

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_API"))
        }
        env.update(
            {
                "EVIDENCE_HOME": str(self.settings.home),
                "EVIDENCE_CUSTODY__CHECKPOINT_EVERY_EVENTS": "5",
                "EVIDENCE_DEVICES__UNKNOWN": "quarantine",
                "EVIDENCE_TRANSCODE__MAX_HEIGHT": "144",
                "EVIDENCE_INGEST__BLOCK_SIZE": str(256 << 10),
                "EVIDENCE_CUSTODY__PINNED_KEYS": json.dumps(
                    [p.id for p in self.settings.custody.pinned_keys]
                ),
            }
        )
        return env

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*EVIDENCE, *args], env=self.env(), capture_output=True, text=True, timeout=120
        )


def _number(i: int) -> str:
    return f"2026-{9000 + i}"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    """Concluded cases, each with the same documents linked by hand (so that a case costs a
    row, not megabytes), and recordings of a recorder nobody had registered (quarantined;
    registered since, so that their entries can be released)."""
    root = tmp_path_factory.mktemp("crash-cases")
    create_instance_key(root / "home")  # before the settings, which pin it
    settings = make_settings(
        root / "home", custody={"checkpoint_every_events": 5}, devices={"unknown": "quarantine"}
    )
    catalog = open_catalog(settings.catalog_url)
    dock = root / "dock"
    rng = random.Random(SEED)
    pdf = synth.make_pdf(root / "record.pdf", "现场笔录")
    for i in range(PER_CASE):  # distinct bytes: PDF readers stop at %%EOF
        path = dock / "BWC0017" / f"SCAN_{i:03d}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf.read_bytes() + rng.randbytes(DOC_BYTES))
    clip = synth.make_video(root / "clip.mp4", seconds=1.0, width=160, height=120)
    for i in range(OBJECTS):
        path = dock / "BWC0099" / f"BWC0099_1088_2026112709{i:02d}00_{i:04d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(clip.read_bytes() + f"tail {i}".encode())
    with catalog.begin() as conn:
        # Registry changes need a registered officer: the first one registers herself.
        registry.save_officer(conn, Officer("1023", "张伟", "62010023001"), "1023")
        registry.save_device(conn, Device("BWC0017", DeviceKind.BODY_WORN), "1023")
    station = add_station(catalog, "DOCK-01", dock, "1023")
    store = LocalStore(settings.archive_dir, settings.ingest.block_size)
    ctx = IngestContext(catalog=catalog, store=store, settings=settings, owner=new_owner())
    report = sweep_station(ctx, station)
    docs = sorted(f.media_id for f in report.files if str(f.path).endswith(".pdf") and f.media_id)
    assert len(docs) == PER_CASE, report
    cats = load_categories(settings)
    with catalog.begin() as conn:
        registry.save_device(conn, Device("BWC0099", DeviceKind.BODY_WORN), "1023")
        entries = [e.id for e in media_db.quarantine_entries(conn, device_serial="BWC0099")]
        for i in range(OBJECTS):
            number = _number(i)
            case = Case(number, "查封扣押 现场", "seizure", "一中队", CaseStatus.OPEN, ("1023",),
                        action_start=T0, action_end=T0 + timedelta(minutes=5))  # fmt: skip
            cases.save_case(conn, case, "A001", settings, cats, T0)
            for media_id in docs:
                cases.link(conn, number, media_id, "A001", "同一现场", T0)
            cases.conclude(conn, number, None, "A001", settings, cats, T0)
        originals = {r.sha256: r.size for r in conn.execute(select(media.c.sha256, media.c.size))}
    assert len(entries) == OBJECTS, "every recording of the unregistered recorder held"
    # The set-up's events are dated T0, days ago: a deployment's checkpoint flow signed them
    # long since. Signed here too, so that each test starts from a clean chain, whichever
    # runs first (not only after the sealing test, whose runs sign what is due).
    checkpointer(settings).sign_due(catalog, force=True)
    yield Home(settings, catalog, docs, entries, originals)
    catalog.dispose()


# ------------------------------------------------------------------------------ killing


def _timed(home: Home, args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = home.cli(*args)
    return time.monotonic() - started, done


def _measure(home: Home, args: list[str], refused: list[str]) -> tuple[float, float]:
    """When the command's work starts and when it ends, in seconds from its start: a run
    refused at once (an unknown case, item or entry: start-up and the catalog opened), and
    a run to the end (the first case, bag or entry)."""
    start, no = _timed(home, refused)
    assert no.returncode != 0 and "not found" in no.stdout + no.stderr, no.stdout + no.stderr
    end, done = _timed(home, args)
    assert done.returncode == 0, done.stdout + done.stderr
    return start, end


class Killer:
    """Starts the command and SIGKILLs it (and any ffmpeg it runs) after a seeded random
    delay, spread over the measured run from a little before its work starts (a kill during
    Python's start-up tests little) to its end. A run that ends before its kill, or whose
    work was done when it was killed, shows the work ends sooner now than measured (timings
    on a shared machine vary): later delays are drawn below that, so that the kills keep
    landing inside the work."""

    def __init__(self, seed: int, measured: tuple[float, float]) -> None:
        self.rng = random.Random(seed)
        start, end = measured
        self.low, self.high = 0.8 * min(start, end), end
        self.kills = 0
        self.measured = measured

    def run(self, home: Home, args: list[str]) -> int | None:
        """The exit code of a run that ended by itself, None for one killed."""
        delay = self.last = self.rng.uniform(self.low, self.high)
        started = time.monotonic()
        child = subprocess.Popen(
            [*EVIDENCE, *args], env=home.env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            code = child.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            self.kills += 1
            return None
        self._sooner(0.95 * (time.monotonic() - started))
        return code

    def done_before_kill(self) -> None:
        self._sooner(self.last)

    def _sooner(self, end: float) -> None:
        # The start of the work moves with its end: a machine that got faster since the
        # measurement starts Python faster too.
        self.high = end
        self.low = min(self.low, 0.7 * end)

    def objects(self) -> Iterator[int]:
        """The objects to work on (1, 2, …) until KILLS runs were killed."""
        for i in range(1, OBJECTS):
            if self.kills >= KILLS:
                return
            yield i
        assert self.kills >= KILLS, f"only {self.kills} runs killed in {OBJECTS - 1} objects"


# ----------------------------------------------------------------------------- checking


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chain_is_clean(home: Home) -> None:
    log = verify.check_log(home.catalog, home.settings)
    assert log.problems == (), log.problems


def _evidence_verify_is_clean(home: Home) -> None:
    """`evidence verify` as an operator runs it: every original re-hashed, the log checked."""
    done = home.cli("verify", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"], done.stdout + done.stderr


def _copies_of_evidence(home: Home, outside: list[Path]) -> list[Path]:
    """Files anywhere under the home (and the export folders' parent) that hold an
    original's bytes, other than the store's own copy and the complete bags given."""
    found = []
    sizes = set(home.originals.values())
    store_originals = home.settings.archive_dir / "originals"
    for root in {home.settings.home, *(p.parent for p in outside)}:
        for path in root.rglob("*"):
            if (
                path.is_file()
                and path.stat().st_size in sizes  # hash only what could be a copy
                and not path.is_relative_to(store_originals)
                and not any(path.is_relative_to(p) for p in outside)
                and _sha(path) in home.originals
            ):
                found.append(path)
    return found


def _events(home: Home, kind: EventKind) -> list[custody.CustodyEvent]:
    with home.catalog.begin() as conn:
        return [e for e in custody.events(conn) if e.kind is kind]


def _unreferenced_bags(home: Home) -> list[str]:
    """Sealed bags in the store that no case names (a kill after the bag was stored and
    before the case was marked): the store is write-once, so they stay, and say nothing."""
    with home.catalog.begin() as conn:
        named = {c.archive_key for c in case_rows.listing(conn) if c.archive_key}
    stored = {p.name for p in (home.settings.archive_dir / "originals").rglob("*") if p.is_file()}
    return sorted(stored - named - set(home.originals))


# ------------------------------------------------ what a kill left (printed, for a reader)


def _scratch(home: Home) -> list[str]:
    work = home.settings.home / "work"
    return sorted(p.name for p in work.iterdir()) if work.exists() else []


def _after_seal_kill(home: Home, number: str, code: int | None) -> tuple[bool, str]:
    """Whether the case is sealed now, and what the kill left."""
    with home.catalog.begin() as conn:
        archived = cases.get_case(conn, number).status is CaseStatus.ARCHIVED
    if code is not None:
        return archived, f"{number}: ended by itself (exit {code})"
    exported = sum(e.details.get("reason", "").startswith(f"seal case {number}:")
                   for e in _events(home, EventKind.EXPORTED))  # fmt: skip
    return archived, (
        f"{number}: killed; archived={archived}, export events={exported}, "
        f"scratch={len([n for n in _scratch(home) if n.endswith('.seal')])}, "
        f"unreferenced bags={len(_unreferenced_bags(home))}"
    )


def _after_export_kill(home: Home, out: Path, code: int | None) -> tuple[bool, str]:
    """Whether the bag is in place now (it must then be whole), and what the kill left."""
    if out.exists():
        assert bag_verifier.verify_bag(out, pinned_keys(home.settings)).ok, (
            f"{out} looks complete and is not"
        )
    if code is not None:
        return out.exists(), f"{out.name}: ended by itself (exit {code})"
    staging = list(out.parent.glob(f".{out.name}.partial-*"))
    exported = sum(e.details.get("to") == str(out) for e in _events(home, EventKind.EXPORTED))
    return out.exists(), (
        f"{out.name}: killed; folder={out.exists()}, staging left={len(staging)}, "
        f"export events={exported}"
    )


def _after_release_kill(home: Home, entry: int, code: int | None) -> tuple[bool, str]:
    """Whether the entry is released now, and what the kill left."""
    released = [e for e in _events(home, EventKind.QUARANTINE_RELEASED) if e.subject == str(entry)]
    if code is not None:
        return bool(released), f"entry {entry}: ended by itself (exit {code})"
    return bool(released), (
        f"entry {entry}: killed; released={len(released)}, scratch in work/={_scratch(home)}"
    )


# -------------------------------------------------------------------------------- tests


def test_sealing_killed_at_random_leaves_one_verifying_bag_per_case(home: Home) -> None:
    options = ["--force", "--reason", "卷宗完整", "--as", "A001", "--json"]
    refused = ["cases", "archive", "2099-0001"]
    killer = Killer(SEED + 1, _measure(home, ["cases", "archive", _number(0), *options], refused))
    seen: list[str] = []
    for i in killer.objects():
        args = ["cases", "archive", _number(i), *options]
        for _ in range(IN_A_ROW):
            done, left = _after_seal_kill(home, _number(i), killer.run(home, args))
            seen.append(left)
            if done:
                killer.done_before_kill()
                break  # sealed: nothing left to kill in this case
        again = home.cli(*args)
        assert again.returncode == 0 or "already sealed" in again.stderr, again.stderr
        with home.catalog.begin() as conn:
            case = cases.get_case(conn, _number(i))
        assert case.status is CaseStatus.ARCHIVED and case.archive_key, f"case {i}: {case}"
        store = LocalStore(home.settings.archive_dir)
        with tempfile.TemporaryDirectory() as tmp:
            bag = extract(store, case.archive_key, Path(tmp))
            assert verify_sealed_bag(bag, pinned_keys(home.settings)) == []
        sealed = [e for e in _events(home, EventKind.SEALED) if e.subject == _number(i)]
        assert [e.details["bag_sha256"] for e in sealed] == [case.archive_key], "sealed once"
        _chain_is_clean(home)
        assert _copies_of_evidence(home, []) == [], f"case {i}: copies of evidence left"
        assert list((home.settings.home / "work").glob("*.seal")) == [], "scratch left"
    # A kill after the bag was stored and before the case was marked leaves a bag that no
    # case names (the store is write-once): never presented as a case's, one per kill at most.
    assert len(_unreferenced_bags(home)) <= killer.kills
    _evidence_verify_is_clean(home)
    print(f"sealing, work from {killer.measured} s: what each kill left", *seen, sep="\n  ")


def test_export_killed_at_random_leaves_no_bag_that_looks_complete(
    home: Home, tmp_path: Path
) -> None:
    media_ids = ",".join(str(m) for m in home.docs)

    def export(out: Path) -> list[str]:
        return ["export", "--media", media_ids, "--out", str(out), "--reason", "移送法院",
                "--as", "1023", "--json"]  # fmt: skip

    refused = ["export", "--media", "999999", "--out", str(tmp_path / "no"), "--reason", "r",
               "--as", "1023"]  # fmt: skip
    killer = Killer(SEED + 2, _measure(home, export(tmp_path / "bag-0"), refused))
    complete = [tmp_path / "bag-0"]
    seen: list[str] = []
    for i in killer.objects():
        out = tmp_path / f"bag-{i}"
        for _ in range(IN_A_ROW):
            done, left = _after_export_kill(home, out, killer.run(home, export(out)))
            seen.append(left)
            if done:
                killer.done_before_kill()
                break  # the bag is in place: nothing left to kill in this export
        again = home.cli(*export(out))
        assert again.returncode == 0 or "not an empty folder" in again.stderr, again.stderr
        assert bag_verifier.verify_bag(out, pinned_keys(home.settings)).ok
        complete.append(out)
        # Only whole bags remain: the killed runs' staging folders are gone.
        assert sorted(tmp_path.iterdir()) == sorted(complete), f"bag {i}: partial left"
        _chain_is_clean(home)
        assert _copies_of_evidence(home, complete) == []
    _evidence_verify_is_clean(home)
    print(f"export, work from {killer.measured} s: what each kill left", *seen, sep="\n  ")


def test_quarantine_release_killed_at_random_releases_each_entry_once(home: Home) -> None:
    release = ["quarantine", "release", "--as", "A001", "--json"]
    measured = _measure(home, [*release, str(home.entries[0])], [*release, "999999"])
    killer = Killer(SEED + 3, measured)
    seen: list[str] = []
    for i in killer.objects():
        entry = home.entries[i]
        for _ in range(IN_A_ROW):
            done, left = _after_release_kill(home, entry, killer.run(home, [*release, str(entry)]))
            seen.append(left)
            if done:
                killer.done_before_kill()
                break  # released: nothing left to kill in this entry
        again = home.cli(*release, str(entry))
        (result,) = json.loads(again.stdout)
        assert result["released"] or "already released" in result["error"], result
        with home.catalog.begin() as conn:
            (held,) = [
                e for e in media_db.quarantine_entries(conn, include_resolved=True)
                if e.id == entry
            ]  # fmt: skip
            assert held.resolved_at is not None and held.media_id is not None
            item = media_db.get(conn, held.media_id)
        assert item.status.value == "archived" and item.proxy_key and item.thumbnail_key
        released = [
            e for e in _events(home, EventKind.QUARANTINE_RELEASED) if e.subject == str(entry)
        ]
        assert len(released) == 1, f"entry {entry} released {len(released)} times"
        _chain_is_clean(home)
        assert _copies_of_evidence(home, []) == []
    _evidence_verify_is_clean(home)
    print(f"release, work from {killer.measured} s: what each kill left", *seen, sep="\n  ")
