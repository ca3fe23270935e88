"""6. Memory: peak RSS of an ingest sweep of one large file, for growing file sizes.

Each sweep runs in a child process of its own (``python -m benchmarks.memory``). Once its
libraries are imported and the catalog is open, the child resets its peak RSS (``echo 5 >
/proc/self/clear_refs``: start-up and migrations peak higher than a sweep and would hide it),
sweeps, and reports the peak RSS of the sweep (VmHWM) and the RSS it started from. The peak is
the whole process (interpreter, libraries, copy buffers), and it must not grow with the file.
The file is random bytes, so it ends quarantined as unreadable media, but only after its
bytes were copied, hashed, fsynced, re-read and verified like any other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import MiB, add_dock, make_home, scratch, write_random

NUMBER, NAME = 6, "memory: peak RSS of a sweep"
STATION = "BENCH-01"
REPO = Path(__file__).resolve().parent.parent

#: "Does not grow" for a 16× larger file. Runs of the same size differ by up to ~40 MiB (the
#: sweep's threads, malloc arenas keeping freed copy buffers or not, MediaInfo), so that much
#: is noise; growth with the file would be per byte: gigabytes here.
GROWTH_LIMIT_MIB = 64.0


@dataclass(frozen=True)
class Sizes:
    file_bytes: tuple[int, ...]


FULL = Sizes(file_bytes=(256 * MiB, 1024 * MiB, 4096 * MiB))
QUICK = Sizes(file_bytes=(16 * MiB, 48 * MiB))


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    peaks: dict[int, float] = {}
    baselines: dict[int, float] = {}
    with scratch(work / "memory") as root:
        for size in sizes.file_bytes:
            with scratch(root / str(size)) as case:
                settings = make_home(case / "home")
                station = add_dock(settings, case / "dock", STATION)
                write_random(station.root / "BWC-01" / "large.mp4", size)
                baselines[size], peaks[size] = _sweep_in_child()
    smallest, largest = min(peaks), max(peaks)
    figures = [
        Figure(
            f"memory.peak.{size // MiB}MiB",
            f"peak RSS of the sweep, {_size(size)} file (before it: {baselines[size]:.0f} MiB)",
            peak,
            "MiB",
        )
        for size, peak in peaks.items()
    ]
    figures.append(
        Figure(
            "memory.growth",
            f"growth from {_size(smallest)} to {_size(largest)}",
            peaks[largest] - peaks[smallest],
            "MiB",
            Target("<=", GROWTH_LIMIT_MIB),
        )
    )
    notes = (
        "one child process per sweep; RSS is the whole process's, its peak reset once the "
        "catalog is open",
    )
    samples = {"peak MiB": peaks, "before MiB": baselines}
    return Result(NUMBER, NAME, tuple(figures), notes, samples=samples)


def _sweep_in_child() -> tuple[float, float]:
    """(RSS before the sweep, peak RSS during it), MiB."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory"],
        cwd=REPO,
        env=os.environ.copy(),  # EVIDENCE_HOME: the home make_home just set up
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(done.stdout.splitlines()[-1])
    return float(report["before_mib"]), float(report["peak_mib"])


def _size(size: int) -> str:
    return f"{size // 1024 // MiB} GiB" if size >= 1024 * MiB else f"{size // MiB} MiB"


def _child() -> None:
    """One sweep of the bench station of $EVIDENCE_HOME; prints its peak RSS as JSON."""
    from docks.sweep import sweep_station
    from pipeline.ingest.steps import open_context
    from pipeline.models import Outcome
    from pipeline.registry.stations import get_station
    from pipeline.settings import load_settings

    ctx = open_context(load_settings())
    station = get_station(ctx.catalog, STATION)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status_mib("VmRSS")
    report = sweep_station(ctx, station)
    peak = _status_mib("VmHWM")
    ctx.catalog.dispose()
    if [f.outcome for f in report.files] != [Outcome.QUARANTINED]:
        raise SystemExit(f"expected one quarantined file, got {report.files}")
    print(json.dumps({"before_mib": before, "peak_mib": peak}))


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel writes kB
    raise SystemExit(f"no {field} in /proc/self/status")


if __name__ == "__main__":
    _child()
