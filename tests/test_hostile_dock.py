"""A broken or hostile dock: each finding of the red-team run, reproduced on real folders.

Every test here failed on the code before the fix (a deleted original, a crashed sweep, a
file read through a link…) and asserts now that nothing is lost and every entry has a line.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from docks.sweep import plan_sweep, sweep_station
from pipeline.catalog import jobs as jobs_db
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import devices, ingest_jobs, stations
from pipeline.custody import log as custody
from pipeline.errors import StationError
from pipeline.ingest.steps import IngestContext, ingest_job
from pipeline.models import EventKind, JobState, Outcome, Station
from pipeline.registry.stations import add_station
from pipeline.storage.local import LocalStore, temporary_name
from tests.conftest import make_settings, put


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ctx(ctx: IngestContext, **overrides: object) -> IngestContext:
    """The same instance with other settings (e.g. release = delete)."""
    settings = make_settings(ctx.settings.home, **overrides)
    return IngestContext(ctx.catalog, ctx.store, settings, ctx.owner)


def _outcomes(report) -> dict[str, Outcome]:  # type: ignore[no-untyped-def]
    return {Path(f.path).name: f.outcome for f in report.files}


def _reasons(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {Path(f.path).name: f.reason or "" for f in report.files}


# ------------------------------------------------------------------ the dock is a jail


@pytest.mark.parametrize("inside", ["archive/originals", "keys", "s3/tmp", "work", ".", ".."])
def test_a_station_root_overlapping_evidence_home_is_refused_on_add(
    ctx: IngestContext, inside: str
) -> None:
    home = ctx.settings.home
    root = (home / inside).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with pytest.raises(StationError, match="overlaps"):
        add_station(ctx.catalog, "EVIL", root, "tester", settings=ctx.settings)


def test_a_station_overlapping_the_archive_is_never_swept_and_nothing_is_deleted(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """The red-team run: a station on archive/originals with release = delete deleted all 60
    originals as "duplicates". A station registered before the check (or whose root the
    settings now cover) is refused at every sweep."""
    put(clips["video"], dock, "BWC-1/a.mp4")
    sweep_station(ctx, station)
    originals = ctx.settings.archive_dir / "originals"
    before = sorted(p for p in originals.rglob("*") if p.is_file())
    assert before
    with ctx.catalog.begin() as conn:  # as an old catalog could hold it
        conn.execute(
            insert(stations).values(
                id="EVIL", root=str(originals), name="", location="", created_at=ctx.clock()
            )
        )
    evil = Station("EVIL", originals)
    deleting = _ctx(ctx, ingest={"release": "delete"})
    with pytest.raises(StationError, match="overlaps the archive"):
        sweep_station(deleting, evil)
    assert sorted(p for p in originals.rglob("*") if p.is_file()) == before


def test_symlinks_fifos_and_sockets_are_reported_never_read(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    secret = tmp_path / "secret.key"
    secret.write_bytes(b"PRIVATE KEY")
    secret.chmod(0o600)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    put(clips["video"], outside, "x.mp4")
    good = put(clips["video"], dock, "BWC-1/good.mp4")
    (dock / "BWC-1" / "link.mp4").symlink_to(secret)
    (dock / "BWC-1" / "dangling.mp4").symlink_to(tmp_path / "nothing")
    (dock / "LINKED-DIR").symlink_to(outside)
    os.mkfifo(dock / "BWC-1" / "pipe.mp4")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(dock / "BWC-1" / "sock.mp4"))
        report = sweep_station(ctx, station)

    got = _outcomes(report)
    assert got["good.mp4"] is Outcome.ARCHIVED
    for name in ("link.mp4", "dangling.mp4", "LINKED-DIR", "pipe.mp4", "sock.mp4"):
        assert got[name] is Outcome.REFUSED, name
    reasons = _reasons(report)
    assert "symbolic link" in reasons["link.mp4"] and "FIFO" in reasons["pipe.mp4"]
    with ctx.catalog.begin() as conn:
        shas = {m.sha256 for m in media_db.listing(conn)}
    assert _sha(secret) not in shas and shas == {_sha(clips["video"])}
    assert not good.exists() and (dock / "BWC-1" / "link.mp4").is_symlink()


def test_a_file_swapped_for_a_symlink_before_a_retry_is_not_read(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    secret = tmp_path / "root-only"
    secret.write_bytes(b"s" * 5000)
    secret.chmod(0o600)
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    plan = plan_sweep(ctx, station)
    src.unlink()
    src.symlink_to(secret)

    report = ingest_job(ctx, station, plan.job_ids[0])

    assert report.outcome is Outcome.REFUSED, report
    assert not ctx.store.has_original(_sha(secret))
    with ctx.catalog.begin() as conn:
        assert media_db.listing(conn) == []
        assert jobs_db.get(conn, plan.job_ids[0]).state is JobState.VANISHED


def test_a_file_replaced_by_another_version_is_not_catalogued_with_the_old_size(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    plan = plan_sweep(ctx, station)
    src.unlink()
    put(clips["video2"], dock, "BWC-1/a.mp4")  # another inode, another size

    first = ingest_job(ctx, station, plan.job_ids[0])
    assert first.outcome is Outcome.WAITING and "new version" in (first.reason or "")
    second = sweep_station(ctx, station)
    assert _outcomes(second) == {"a.mp4": Outcome.ARCHIVED}
    with ctx.catalog.begin() as conn:
        (item,) = media_db.listing(conn)
    assert (item.sha256, item.size) == (_sha(clips["video2"]), clips["video2"].stat().st_size)


def test_ingested_as_a_symlink_is_not_followed(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path], tmp_path: Path
) -> None:
    target = tmp_path / "attacker"
    target.mkdir()
    (dock / ".ingested").symlink_to(target)
    src = put(clips["video"], dock, "BWC-1/a.mp4")

    report = sweep_station(ctx, station)

    got = _outcomes(report)
    assert got["a.mp4"] is Outcome.FAILED and "must be a folder" in _reasons(report)["a.mp4"]
    assert got[".ingested"] is Outcome.REFUSED
    assert src.exists() and list(target.iterdir()) == []
    with ctx.catalog.begin() as conn:
        assert [m.sha256 for m in media_db.listing(conn)] == [_sha(src)]


def test_an_empty_file_named_ingested_does_not_stop_the_station(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    (dock / ".ingested").write_bytes(b"")
    a = put(clips["video"], dock, "BWC-1/a.mp4")
    b = put(clips["audio"], dock, "REC-1/b.m4a")

    first = sweep_station(ctx, station)
    assert _outcomes(first) == {
        "a.mp4": Outcome.FAILED,
        "b.m4a": Outcome.FAILED,
        ".ingested": Outcome.REFUSED,
    }
    assert a.exists() and b.exists()
    # The operator removes the stray file: the next sweep only has the release left to do.
    (dock / ".ingested").unlink()
    second = sweep_station(ctx, station)
    assert {o for o in _outcomes(second).values()} == {Outcome.ARCHIVED}
    assert not a.exists() and (dock / ".ingested" / "BWC-1" / "a.mp4").exists()


# ------------------------------------------------------------------------- names are bytes


def test_names_that_are_not_utf8_are_ingested_shown_and_found(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """A FAT card written in GBK: the red-team sweep crashed on the first such name and
    ingested 0 of 21 files, on every sweep."""
    folder = os.fsencode(dock / "BWC-1")
    os.makedirs(folder)
    gbk = "执法记录.mp4".encode("gbk")
    junk = b"\xff\xfe\x80.mp4"  # neither UTF-8 nor GBK
    for raw, clip in ((gbk, "video"), (junk, "video2")):
        with open(folder + b"/" + raw, "wb") as f:
            f.write(clips[clip].read_bytes())
    for n in range(19):
        put(clips["audio"], dock, f"REC-{n}/r{n}.m4a")

    report = sweep_station(ctx, station)

    assert report.count(Outcome.ARCHIVED) == 3 and report.count(Outcome.DUPLICATE) == 18
    assert report.count(Outcome.FAILED) == 0
    names = {Path(f.path).name for f in report.files}
    assert "执法记录.mp4" in names and "\\xff\\xfe\\x80.mp4" in names
    released = os.listdir(os.fsencode(dock / ".ingested" / "BWC-1"))
    assert sorted(released) == sorted([gbk, junk])  # the bytes as the card gave them
    with ctx.catalog.begin() as conn:
        found = {m.original_name for m in media_db.listing(conn)}
    assert "执法记录.mp4" in found
    from pipeline.search.query import parse
    from pipeline.search.run import search

    with ctx.catalog.read() as conn:
        hits = search(conn, parse("执法记录", ctx.settings.zone))
    assert [h.original_name for h in hits.items] == ["执法记录.mp4"]


def test_a_very_long_path_is_ingested(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """Over 4096 bytes: every step goes by folder descriptors, so the length does not matter
    (the red-team sweep skipped it without a line)."""
    fd = os.open(dock, os.O_RDONLY | os.O_DIRECTORY)
    depth = 20
    try:
        for n in range(depth):
            name = f"{n:02d}" + "d" * 220
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("clip.mp4", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, clips["video"].read_bytes())
        os.close(out)
    finally:
        os.close(fd)

    report = sweep_station(ctx, station)

    (line,) = report.files
    assert len(os.fsencode(line.path)) > 4096
    assert line.outcome is Outcome.ARCHIVED, line.reason


# ------------------------------------------------------------ writers, sparse files, limits


def test_a_writer_that_pauses_with_the_file_open_is_waited_for(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """Paused longer than stable_s with the file open: the red-team sweep quarantined the
    half file as truncated and released (deleted) it; the rest of the recording was lost."""
    deleting = _ctx(ctx, ingest={"release": "delete"}, watch={"stable_s": 0.2})
    data = clips["video"].read_bytes()
    path = dock / "BWC-1" / "live.mp4"
    path.parent.mkdir()
    with path.open("wb") as writer:
        writer.write(data[: len(data) // 2])
        writer.flush()
        old = time.time() - 60
        os.utime(path, (old, old))  # unchanged for a minute, and still open

        report = sweep_station(deleting, station)

        assert _outcomes(report) == {"live.mp4": Outcome.WAITING}
        assert "open for writing" in _reasons(report)["live.mp4"]
        writer.write(data[len(data) // 2 :])
    os.utime(path, (old, old))

    done = sweep_station(deleting, station)

    assert _outcomes(done) == {"live.mp4": Outcome.ARCHIVED}
    assert done.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert not path.exists()


def test_a_source_opened_for_writing_after_planning_is_not_released(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    deleting = _ctx(ctx, ingest={"release": "delete"})
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    plan = plan_sweep(deleting, station)
    with src.open("ab"):
        report = ingest_job(deleting, station, plan.job_ids[0])
    assert report.outcome is Outcome.FAILED and "open for writing" in (report.reason or "")
    assert src.exists()
    assert _outcomes(sweep_station(deleting, station)) == {"a.mp4": Outcome.ARCHIVED}
    assert not src.exists()


def test_a_released_file_that_grows_is_archived_again_and_linked_to_the_first(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """A writer /proc cannot see (a network dock) went on after the release: with release =
    move the rest landed in .ingested/ and was never archived."""
    blind = _ctx(ctx, watch={"stable_s": 0.0, "writer_check": False})
    data = clips["video"].read_bytes()
    src = dock / "BWC-1" / "late.mp4"
    src.parent.mkdir()
    src.write_bytes(data)
    first = sweep_station(blind, station)
    assert _outcomes(first) == {"late.mp4": Outcome.ARCHIVED}
    moved = dock / ".ingested" / "BWC-1" / "late.mp4"
    with moved.open("ab") as late_writer:
        late_writer.write(b"\0late bytes of the same recording")

    second = sweep_station(blind, station)

    (line,) = second.files
    assert line.outcome is Outcome.ARCHIVED and line.sha256 == _sha(moved)
    with ctx.catalog.begin() as conn:
        grown = media_db.get(conn, line.media_id or 0)
    (flag,) = [f for f in grown.flags if f.code == "grew-after-release"]
    assert f"continues media {first.files[0].media_id}" in flag.message
    assert sweep_station(blind, station).files == ()  # said once


def test_a_sparse_file_is_held_on_the_dock_not_copied(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """4 KB of data became 2.1 GB in the archive in 9 s."""
    sparse = dock / "BWC-1" / "holes.mp4"
    sparse.parent.mkdir()
    with sparse.open("wb") as f:
        f.write(b"x" * 4096)
        f.truncate(2 << 30)
    good = put(clips["video"], dock, "BWC-1/good.mp4")
    before = sum(p.stat().st_blocks for p in ctx.settings.archive_dir.rglob("*") if p.is_file())

    report = sweep_station(ctx, station)

    assert _outcomes(report) == {"holes.mp4": Outcome.QUARANTINED, "good.mp4": Outcome.ARCHIVED}
    assert "sparse" in _reasons(report)["holes.mp4"]
    grown = sum(p.stat().st_blocks for p in ctx.settings.archive_dir.rglob("*") if p.is_file())
    assert (grown - before) * 512 < 64 << 20  # the clip and its proxy, not 2 GiB
    assert sparse.stat().st_size == 2 << 30 and not good.exists()


def test_a_held_file_is_retried_when_it_changes_in_any_way_even_its_mode(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """Held sources stayed held after a chmod (its mtime does not change)."""
    size = clips["video"].stat().st_size
    strict = _ctx(ctx, ingest={"max_file_bytes": size - 1})
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    held = sweep_station(strict, station)
    assert _outcomes(held) == {"a.mp4": Outcome.QUARANTINED}
    assert "too large" in _reasons(held)["a.mp4"]

    relaxed = _ctx(ctx)
    assert _outcomes(sweep_station(relaxed, station)) == {"a.mp4": Outcome.QUARANTINED}
    src.chmod(0o600)  # what an operator does to fix an unreadable file: the ctime moves
    assert _outcomes(sweep_station(relaxed, station)) == {"a.mp4": Outcome.ARCHIVED}


def test_a_source_that_vanished_is_reported_once_with_an_alert(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """A job whose source vanished reported "waiting" on every sweep, for ever."""
    src = put(clips["video"], dock, "BWC-1/a.mp4")
    plan = plan_sweep(ctx, station)
    src.unlink()

    report = ingest_job(ctx, station, plan.job_ids[0])

    assert report.outcome is Outcome.VANISHED
    assert sweep_station(ctx, station).files == ()
    with ctx.catalog.begin() as conn:
        alerts = [e for e in custody.events(conn) if e.kind is EventKind.ALERT]
    assert [a.details["code"] for a in alerts] == ["source-vanished"]


def test_a_text_file_named_mp4_is_quarantined_as_contradicting_its_name(
    ctx: IngestContext, station: Station, dock: Path
) -> None:
    (dock / "BWC-1").mkdir()
    (dock / "BWC-1" / "fake.mp4").write_text("这不是视频 not a video\n" * 50)
    report = sweep_station(ctx, station)
    assert _outcomes(report) == {"fake.mp4": Outcome.QUARANTINED}
    assert "名称与内容不符" in _reasons(report)["fake.mp4"]


# ------------------------------------------------------------------------ per-file faults


def test_a_device_with_an_absurd_clock_offset_holds_its_files_not_the_station(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """clock_offset_s = 1e300 made every sweep of the station crash (OverflowError)."""
    registered = _ctx(ctx, devices={"unknown": "quarantine"})
    with ctx.catalog.begin() as conn:  # as an older catalog, before the import checks
        conn.execute(
            insert(devices).values(
                serial="BWC-1",
                kind="body-camera",
                vendor="",
                model="",
                status="active",
                clock_offset_s=1e300,
                updated_at=ctx.clock(),
            )
        )
    bad = put(clips["video"], dock, "BWC-1/a.mp4")
    put(clips["audio"], dock, "REC-1/b.m4a")

    report = sweep_station(registered, station)

    got = _outcomes(report)
    assert got["a.mp4"] is Outcome.QUARANTINED and "internal error" in _reasons(report)["a.mp4"]
    assert got["b.m4a"] is Outcome.QUARANTINED  # unregistered REC-1: the registry's verdict
    assert bad.exists()  # held: the source stays on the dock
    with ctx.catalog.begin() as conn:
        state = conn.execute(
            select(ingest_jobs.c.state).where(ingest_jobs.c.source_path == str(bad))
        ).scalar_one()
    assert state == JobState.HELD.value


# -------------------------------------------------------------------- orphan temporaries


def test_orphan_temporaries_are_removed_only_when_they_hold_nothing_unarchived(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    put(clips["video"], dock, "BWC-1/a.mp4")
    sweep_station(ctx, station)
    tmp = ctx.settings.archive_dir / "tmp"
    dead = 2**22 + 12345  # above pid_max's default: no such process
    host = socket.gethostname()
    archived_copy = tmp / f"{host}-{dead}-aaaa.part"
    archived_copy.write_bytes(clips["video"].read_bytes())
    interrupted = tmp / f"{host}-{dead}-bbbb.part"
    interrupted.write_bytes(b"half of something")
    alive = tmp / temporary_name()  # this process: a copy in progress
    alive.write_bytes(b"in progress")

    LocalStore(ctx.settings.archive_dir)

    assert not archived_copy.exists() and not interrupted.exists() and alive.exists()
    kept = list((ctx.settings.archive_dir / "orphans").iterdir())
    assert [p.read_bytes() for p in kept] == [b"half of something"]
    assert stat.S_ISREG(kept[0].stat().st_mode)


def test_metadata_tags_longer_than_their_columns_are_cut_not_refused(
    ctx: IngestContext, station: Station, dock: Path, tmp_path: Path
) -> None:
    """A crafted recording with a 5,000-character maker tag: PostgreSQL refused the insert and
    the job failed again on every sweep."""
    from interfaces import synth

    clip = synth.make_video(tmp_path / "crafted.mp4", seconds=0.5, make="M" * 5000)
    put(clip, dock, "BWC-1/crafted.mp4")
    report = sweep_station(ctx, station)
    assert _outcomes(report) == {"crafted.mp4": Outcome.ARCHIVED}, report
    with ctx.catalog.begin() as conn:
        (item,) = media_db.listing(conn)
    assert item.probe.make is not None and len(item.probe.make) == 200


def test_scratch_folders_of_killed_work_are_removed_by_the_next(
    ctx: IngestContext, station: Station, dock: Path, clips: dict[str, Path]
) -> None:
    """A proxy run killed midway left its folder (pieces of derived evidence) in work/."""
    work = ctx.settings.home / "work"
    work.mkdir(parents=True, exist_ok=True)
    dead = work / f"{socket.gethostname()}-{2**22 + 12345}-cafe.derive"
    dead.mkdir()
    (dead / "proxy.mp4").write_bytes(b"half a proxy")
    live = work / temporary_name(".derive")  # this process: still working
    live.mkdir()
    put(clips["video"], dock, "BWC-1/a.mp4")

    assert _outcomes(sweep_station(ctx, station)) == {"a.mp4": Outcome.ARCHIVED}

    assert not dead.exists() and live.exists()
