"""1. Large-file verified ingest: the store's copy-hash-fsync-verify against the naive way,
the disk's limit and the hash's limit, on the same bytes in the same run.

Each sample takes one source file through four ways, in a rotating order so none always goes
first: the pipeline (LocalStore.put_original: copy and SHA-256 in one read, fsync, drop the
copy from the page cache, re-read it from the disk and compare), the naive way (``cp && sync
&& sha256sum``), ``dd conv=fsync`` (the disk's write limit), and hashlib alone (the hash's
limit, one core). Sources stay in the page cache, as a dock's just-written files do.

Then one more round of every file under load (issue 20): one core of SHA-256 in the
background (benchmarks.load), as on a station host that is also hashing another ingest. The
loaded ratio is stated, not targeted: with one of two cores taken, the pipeline's two threads
(hash and write) share the other.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import Load, hashing
from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import MB, MiB, median, scratch, write_random
from pipeline.settings import IngestSettings
from pipeline.storage.local import LocalStore

NUMBER, NAME = 1, "large-file verified ingest"


@dataclass(frozen=True)
class Sizes:
    file_bytes: int
    files: int
    rounds: int


FULL = Sizes(file_bytes=1 << 30, files=3, rounds=2)
QUICK = Sizes(file_bytes=8 * MiB, files=2, rounds=1)
#: Rounds under load, after the quiet ones.
LOADED_ROUNDS = 1

#: The product's default copy block: what an unconfigured station uses.
BLOCK = IngestSettings().block_size


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    with scratch(work / "ingest-large") as root:
        sources = [
            write_random(root / f"source-{i}.bin", sizes.file_bytes) for i in range(sizes.files)
        ]
        rates = _rounds(root, sources, sizes, sizes.rounds)
        with hashing(1) as load:
            loaded = _rounds(root, sources, sizes, LOADED_ROUNDS)
    return _result(rates, loaded, load, sizes)


def _rounds(root: Path, sources: list[Path], sizes: Sizes, rounds: int) -> dict[str, list[float]]:
    """Each source through every way, ``rounds`` times, the ways' order rotating."""
    ways: dict[str, Callable[[Path, Path], None]] = {
        "pipeline": _pipeline,
        "naive": _naive,
        "dd": _dd,
        "hashlib": _hashlib,
    }
    rates: dict[str, list[float]] = {way: [] for way in ways}
    sample = 0
    for _ in range(rounds):
        for source in sources:
            order = list(ways)
            order = order[sample % len(order) :] + order[: sample % len(order)]
            for way in order:
                target = root / f"out-{way}"
                started = time.perf_counter()
                ways[way](source, target)
                rates[way].append(sizes.file_bytes / (time.perf_counter() - started) / MB)
                _remove(target)
            sample += 1
    return rates


def _pipeline(source: Path, target: Path) -> None:
    LocalStore(target, BLOCK).put_original(source)


def _naive(source: Path, target: Path) -> None:
    subprocess.run(
        ["sh", "-c", 'cp "$1" "$2" && sync && sha256sum "$2"', "naive", source, target],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _dd(source: Path, target: Path) -> None:
    subprocess.run(
        ["dd", f"if={source}", f"of={target}", f"bs={BLOCK}", "conv=fsync", "status=none"],
        check=True,
    )


def _hashlib(source: Path, _target: Path) -> None:
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with source.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _result(
    rates: dict[str, list[float]], loaded: dict[str, list[float]], load: Load, sizes: Sizes
) -> Result:
    pipeline = rates["pipeline"]
    vs_naive = [p / n for p, n in zip(pipeline, rates["naive"], strict=True)]
    figures = (
        Figure("ingest.pipeline", "pipeline copy-hash-fsync-verify", median(pipeline), "MB/s"),
        Figure("ingest.naive", "(a) cp && sync && sha256sum", median(rates["naive"]), "MB/s"),
        Figure("ingest.dd", "(b) dd conv=fsync: the disk", median(rates["dd"]), "MB/s"),
        Figure("ingest.hashlib", "(c) hashlib SHA-256: the hash", median(rates["hashlib"]), "MB/s"),
        Figure("ingest.vs_naive", "pipeline ÷ (a)", median(vs_naive), "×", Target(">=", 3)),
        Figure("ingest.vs_limit", "pipeline ÷ min(b, c)", _vs_limit(rates), "×", Target(">=", 0.8)),
        Figure(
            "ingest.loaded.pipeline",
            "under load: pipeline",
            median(loaded["pipeline"]),
            "MB/s",
        ),
        Figure(
            "ingest.loaded.limit",
            "under load: min(b, c)",
            median([min(d, h) for d, h in zip(loaded["dd"], loaded["hashlib"], strict=True)]),
            "MB/s",
        ),
        Figure(
            "ingest.loaded.vs_limit", "under load: pipeline ÷ min(b, c)", _vs_limit(loaded), "×"
        ),
    )
    count = len(pipeline)
    notes = (
        f"{sizes.files} × {sizes.file_bytes // MiB} MiB random bytes, {count} samples of each "
        f"way; rates are medians, ratios the median of per-sample ratios",
        f"under load: {len(loaded['pipeline'])} more samples of each way with {load.describe()}",
    )
    return Result(NUMBER, NAME, figures, notes, samples={"MB/s": rates, "MB/s under load": loaded})


def _vs_limit(rates: dict[str, list[float]]) -> float:
    """The median over samples of pipeline ÷ min(disk, hash), each of the same sample."""
    limits = [min(d, h) for d, h in zip(rates["dd"], rates["hashlib"], strict=True)]
    return median([p / lim for p, lim in zip(rates["pipeline"], limits, strict=True)])
