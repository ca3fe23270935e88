"""A steady background load for the "under load" rows: what a busy station host or a shared
server looks like to the pipeline (issue 20: a busy machine tripled the watcher's p95).

One core of SHA-256 per ``cores``, each in its own process (hashlib releases the GIL, but one
thread is one core): CPU-bound, no disk, as another ingest's hashing or a transcode would
be. It runs at normal priority, so it competes for the CPU like any neighbour does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Hash 1 MiB blocks until the parent is gone: each update holds the core for ~1 ms, never
#: sleeps. A benchmark killed before it could stop its load must not leave a core busy for
#: everyone on the machine, so the loop also ends once this process is reparented.
_HASH_UNTIL_ORPHANED = (
    "import hashlib, os\n"
    "parent = os.getppid()\n"
    "block = bytes(1 << 20)\n"
    "digest = hashlib.sha256()\n"
    "while os.getppid() == parent:\n"
    "    for _ in range(64):\n"
    "        digest.update(block)\n"
)


@dataclass
class Load:
    """What the load got while it ran: read after the ``with`` block."""

    cores: int
    seconds: float = 0.0
    cpu_s: float = 0.0  # of the hashing processes, together
    loadavg: list[float] = field(default_factory=list)  # 1-minute load average at the end

    @property
    def share(self) -> float:
        """Cores' worth of CPU the load actually had (1.0: a whole core all the time)."""
        return self.cpu_s / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        return (
            f"{self.cores} core(s) of SHA-256 in the background (it got {self.share:.2f} "
            f"core(s); load average {self.loadavg[0]:.2f} at the end)"
        )


@contextmanager
def hashing(cores: int = 1) -> Iterator[Load]:
    """Keep ``cores`` cores busy hashing while the block runs.

    Example::

        with hashing(1) as load:
            measure()
        print(load.describe())
    """
    load = Load(cores)
    started = time.monotonic()
    procs = [
        subprocess.Popen([sys.executable, "-c", _HASH_UNTIL_ORPHANED], stdin=subprocess.DEVNULL)
        for _ in range(cores)
    ]
    try:
        yield load
    finally:
        load.loadavg = [round(x, 2) for x in os.getloadavg()]
        load.seconds = time.monotonic() - started
        load.cpu_s = sum(_cpu_s(proc.pid) for proc in procs)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process (proc(5): utime, stime)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
