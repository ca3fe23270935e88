"""2. Many small files: files per second through the Prefect flow versus the same pipeline
functions called directly in a loop (devices.sweep.sweep_station), on the same files.

Both ways do the same work with the same parallelism (``ingest.workers`` threads): plan the
sweep, then copy, hash, fsync, verify, probe, catalogue and release every file. The flow adds
one flow run, a task run per file and their state reports to the Prefect server. Each run
starts from an empty catalog and archive, so every file is new, and the released sources are
put back on the dock for the next run.

"Proxies off" are text documents, which get no proxy or thumbnail; "proxies on" are 720p
H.264 clips, each transcoded to a proxy and a thumbnail by ffmpeg.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import (
    MiB,
    add_dock,
    make_home,
    median,
    restore_released,
    scratch,
    unique_copy,
    write_text_document,
)
from docks.sweep import sweep_station
from interfaces import synth
from pipeline.ingest.steps import open_context
from pipeline.models import Outcome, Station, SweepReport
from pipeline.settings import Settings

NUMBER, NAME = 2, "many small files: flow vs direct"
DEVICES = 25  # recorders on one docking station


@dataclass(frozen=True)
class Sizes:
    documents: int
    document_bytes: int
    videos: int
    rounds: int


FULL = Sizes(documents=500, document_bytes=2 * MiB, videos=40, rounds=2)
QUICK = Sizes(documents=12, document_bytes=64 << 10, videos=2, rounds=1)

#: A 2.5 s 720p clip is about 2 MB, the size of the documents.
_CLIP_SECONDS, _CLIP_WIDTH, _CLIP_HEIGHT = 2.5, 1280, 720


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    with scratch(work / "small-files") as root:
        documents = root / "documents"
        for i in range(sizes.documents):
            write_text_document(
                documents / _device_dir(i) / f"record-{i:04d}.txt", sizes.document_bytes
            )
        videos = root / "videos"
        clip = synth.make_video(
            root / "clip.mp4", seconds=_CLIP_SECONDS, width=_CLIP_WIDTH, height=_CLIP_HEIGHT
        )
        for i in range(sizes.videos):
            unique_copy(clip, videos / _device_dir(i) / f"clip-{i:04d}.mp4", i)
        off = _compare(root / "off", documents, sizes.documents, sizes.rounds)
        on = _compare(root / "on", videos, sizes.videos, sizes.rounds)
    return _result(off, on, sizes)


def _device_dir(i: int) -> str:
    return f"BWC-{i % DEVICES + 1:02d}"


def _compare(root: Path, dock: Path, count: int, rounds: int) -> dict[str, list[float]]:
    """Files per second of each way, alternating which goes first."""
    ways: dict[str, Callable[[Settings, Station], SweepReport]] = {
        "direct": _direct,
        "flow": _flow,
    }
    rates: dict[str, list[float]] = {way: [] for way in ways}
    for r in range(rounds):
        for way in list(ways)[:: 1 if r % 2 == 0 else -1]:
            settings = make_home(root / f"{way}-{r}")
            station = add_dock(settings, dock)
            started = time.perf_counter()
            report = ways[way](settings, station)
            seconds = time.perf_counter() - started
            archived = report.count(Outcome.ARCHIVED)
            if archived != count:
                raise RuntimeError(f"{way}: {archived} of {count} files archived: {report}")
            rates[way].append(count / seconds)
            restore_released(station)
    return rates


def _direct(settings: Settings, station: Station) -> SweepReport:
    ctx = open_context(settings)
    try:
        return sweep_station(ctx, station)
    finally:
        ctx.catalog.dispose()


def _flow(settings: Settings, station: Station) -> SweepReport:
    from flows.ingest import run_ingest  # Prefect: only once the runner has pointed it at a server

    return run_ingest(settings, station.id)


def _result(off: dict[str, list[float]], on: dict[str, list[float]], sizes: Sizes) -> Result:
    figures: list[Figure] = []
    for label, rates in (("proxies off", off), ("proxies on", on)):
        key = label.replace(" ", "_")
        ratio = [f / d for f, d in zip(rates["flow"], rates["direct"], strict=True)]
        figures += [
            Figure(
                f"small.{key}.direct", f"{label}: direct loop", median(rates["direct"]), "files/s"
            ),
            Figure(f"small.{key}.flow", f"{label}: Prefect flow", median(rates["flow"]), "files/s"),
            Figure(
                f"small.{key}.ratio",
                f"{label}: flow ÷ direct",
                median(ratio),
                "×",
                Target(">=", 0.8),
            ),
        ]
    notes = (
        f"proxies off: {sizes.documents} text documents of {sizes.document_bytes // 1024} KiB; "
        f"proxies on: {sizes.videos} H.264 {_CLIP_WIDTH}x{_CLIP_HEIGHT} clips of "
        f"{_CLIP_SECONDS:g} s (proxy + thumbnail each); {sizes.rounds} run(s) of each way, "
        "each from an empty catalog; the flow runs on an already started local Prefect server",
    )
    return Result(
        NUMBER, NAME, tuple(figures), notes, samples={"off files/s": off, "on files/s": on}
    )
