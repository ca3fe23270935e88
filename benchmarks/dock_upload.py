"""8. Station uploads: `evidence dock push` to `evidence web` over loopback, against
``curl -T`` of the same bytes to a plain upload endpoint in the same run.

Two servers run as subprocesses on 127.0.0.1 for the whole benchmark, under the same uvicorn
and Python: ``evidence web`` on a fresh EVIDENCE_HOME with one push station and its token
(``evidence init``, ``evidence stations add DOCK-B --push``, ``evidence stations token``), and
``benchmarks.plain_upload`` (``PUT /{name}``: body to a file, fsync, 201). The dock agent runs
as a subprocess over a dump folder (``DIR/BWC-xx/*.mp4`` of random bytes, a ``recorder.json``
per recorder folder as the station's USB reader writes it) with ``--wait 0``: it exits once
every file is uploaded and checked by the server (state ``received``), without waiting for
an ingest, which does not run here. Its wall time (process start to exit, start-up and its
own hashing pass included), the bytes it sent (its JSON summary) and its peak RSS (``wait4``)
are taken; every file must then be in the station's intake folder with its size. curl runs
once per case with a config file listing every file, so one process sends them all over
kept-alive connections.

Cases, each a few rounds, the order of the ways rotated per round:

- large: 3 × 1 GiB, one file at a time on both sides (``--concurrency 1``; curl sequential);
- small: 500 × 2 MiB, 4 at once on both sides (the agent's default ``--concurrency 4``;
  ``curl --parallel --parallel-max 4``);
- concurrent: 25 recorders × 8 × 16 MiB with ``--concurrency 25``, against the disk's fsynced
  write rate (``dd conv=fsync``) and one core's SHA-256 rate (hashlib), measured beside it as
  benchmark 1 measures them; curl with 25 at once for comparison;
- memory: the agent's peak RSS for 3 × 32 MiB against 3 × 1 GiB (both ``--concurrency 1``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.ingest_large import _dd, _hashlib  # the disk's and the hash's limits
from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import MB, MiB, make_home, median, scratch, write_random

NUMBER, NAME = 8, "station uploads: dock push vs curl -T"
STATION = "DOCK-B"
EVIDENCE = str(Path(sys.executable).with_name("evidence"))
REPO = Path(__file__).resolve().parent.parent

#: dock push ÷ curl -T, and dock push ÷ min(disk, hash), as the issue asks.
RATIO_TARGET = 0.8
#: "Flat with file size" for a 32× larger file (as benchmark 6: growth would be per byte).
GROWTH_LIMIT_MIB = 64.0
#: Any one subprocess (a push, a curl) that takes longer than this has hung.
TIMEOUT_S = 1200.0
#: Files of the dump are older than any stability wait.
AGE_S = 600.0


@dataclass(frozen=True)
class Sizes:
    large: tuple[int, int]  # files, bytes each
    small: tuple[int, int]
    small_recorders: int
    small_concurrency: int
    recorders: int  # the concurrent case: one folder each, uploaded all at once
    per_recorder: int
    recorder_file_bytes: int
    rss_small_bytes: int  # the smaller file of the memory pair; the larger is `large`'s
    limit_bytes: int  # dd and hashlib run over one file this big
    rounds: int


FULL = Sizes(
    large=(3, 1 << 30),
    small=(500, 2 * MiB),
    small_recorders=10,
    small_concurrency=4,
    recorders=25,
    per_recorder=8,
    recorder_file_bytes=16 * MiB,
    rss_small_bytes=32 * MiB,
    limit_bytes=1 << 30,
    rounds=3,
)
QUICK = Sizes(
    large=(2, 4 * MiB),
    small=(20, 256 << 10),
    small_recorders=4,
    small_concurrency=4,
    recorders=25,
    per_recorder=1,
    recorder_file_bytes=256 << 10,
    rss_small_bytes=1 * MiB,
    limit_bytes=8 * MiB,
    rounds=1,
)


@dataclass
class Dump:
    """A station dump folder: the files, relative path → bytes."""

    root: Path
    files: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.files.values())

    def rename(self, tag: int) -> None:
        """Give every file a new name ending in ``_tag``: the server answers a new upload of
        the same bytes and path with the one it already received (it waits for an ingest
        that does not run here), so each push of a round needs other paths."""
        renamed: dict[str, int] = {}
        for rel, size in self.files.items():
            base, ext = rel.rsplit(".", 1)
            new = f"{base.rsplit('~', 1)[0]}~{tag}.{ext}"
            os.rename(self.root / rel, self.root / new)
            renamed[new] = size
        self.files = renamed


@dataclass(frozen=True)
class Push:
    seconds: float
    peak_mib: float
    bytes_sent: int


@dataclass
class Bench:
    """The two servers and what a push needs."""

    root: Path
    intake: Path  # the station's intake folder on the server
    plain: Path  # the plain endpoint's folder
    server_url: str
    plain_url: str
    token_file: Path
    agent_env: dict[str, str]
    server_pid: int
    pushes: int = 0

    def push(self, dump: Dump, concurrency: int) -> Push:
        """One `evidence dock push` over ``dump``; every file must end in the intake."""
        self.pushes += 1
        dump.rename(self.pushes)
        state = self.root / "push-state.json"
        state.unlink(missing_ok=True)
        out, err = self.root / "push.json", self.root / "push.err"
        command = [
            EVIDENCE, "dock", "push", "--server", self.server_url,
            "--token-file", str(self.token_file), "--station", STATION,
            "--concurrency", str(concurrency), "--wait", "0", "--stable-s", "0",
            "--state-file", str(state), "--json", str(dump.root),
        ]  # fmt: skip
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            child = subprocess.Popen(command, env=self.agent_env, stdout=stdout, stderr=stderr)
            with _watchdog(child):
                _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"dock push exited {child.returncode}: {_tail(err)}")
        summary = json.loads(out.read_text(encoding="utf-8"))
        bad = [f for f in summary["files"] if f["state"] != "received"]
        if summary["uploaded"] != len(dump.files) or bad:
            raise RuntimeError(
                f"dock push uploaded {summary['uploaded']} of {len(dump.files)}: {bad[:3]}"
            )
        _check_arrived(self.intake, dump)
        state.unlink(missing_ok=True)
        return Push(seconds, usage.ru_maxrss / 1024, int(summary["bytes_sent"]))  # kB → MiB

    def curl(self, dump: Dump, parallel: int) -> float:
        """``curl -T`` of every file of ``dump`` in one curl process; its wall time."""
        config = self.root / "curl.conf"
        lines = ["silent", "show-error", "no-progress-meter", "fail", 'header = "Expect:"']
        if parallel > 1:
            lines += ["parallel", f"parallel-max = {parallel}"]
        for rel in dump.files:
            lines += [
                f'upload-file = "{dump.root / rel}"',
                f'url = "{self.plain_url}/{rel}"',
                'output = "/dev/null"',
            ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        started = time.perf_counter()
        done = subprocess.run(
            ["curl", "--config", str(config)], capture_output=True, text=True, timeout=TIMEOUT_S
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"curl exited {done.returncode}: {done.stderr[-2000:]}")
        _check_arrived(self.plain, dump)
        return seconds


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    samples: dict[str, Any] = {}
    with scratch(work / "dock-upload") as root, _servers(root) as bench:
        empty = _dump(root / "empty", 1, 0, 0)
        startup = [bench.push(empty, 1).seconds for _ in range(2)]
        samples["agent start-up s"] = startup
        samples["large"] = _large(bench, root, sizes)
        samples["small"] = _small(bench, root, sizes)
        samples["concurrent"] = _concurrent(bench, root, sizes)
        samples["server peak RSS MiB"] = _status_mib(bench.server_pid, "VmHWM")
    return _result(samples, sizes)


# ----------------------------------------------------------------------------- cases


def _large(bench: Bench, root: Path, sizes: Sizes) -> dict[str, list[float]]:
    files, size = sizes.large
    found: dict[str, list[float]] = {"push": [], "curl": [], "push peak MiB": []}
    found["small-file push peak MiB"] = []
    with scratch(root / "large") as case:
        dump = _dump(case / "dump", files, 1, size)
        rss_dump = _dump(case / "rss-dump", files, 1, sizes.rss_small_bytes)
        for r in range(sizes.rounds):
            for way in _rotated(["push", "curl"], r):
                if way == "push":
                    done = bench.push(dump, 1)
                    found["push"].append(_rate(dump.total, done.seconds))
                    found["push peak MiB"].append(done.peak_mib)
                    _sent_all(done, dump)
                else:
                    found["curl"].append(_rate(dump.total, bench.curl(dump, 1)))
            found["small-file push peak MiB"].append(bench.push(rss_dump, 1).peak_mib)
    return found


def _small(bench: Bench, root: Path, sizes: Sizes) -> dict[str, list[float]]:
    files, size = sizes.small
    found: dict[str, list[float]] = {"push": [], "curl": [], "push peak MiB": []}
    with scratch(root / "small") as case:
        per = -(-files // sizes.small_recorders)
        dump = _dump(case / "dump", sizes.small_recorders, per, size, total=files)
        for r in range(sizes.rounds):
            for way in _rotated(["push", "curl"], r):
                if way == "push":
                    done = bench.push(dump, sizes.small_concurrency)
                    found["push"].append(_rate(dump.total, done.seconds))
                    found["push peak MiB"].append(done.peak_mib)
                    _sent_all(done, dump)
                else:
                    seconds = bench.curl(dump, sizes.small_concurrency)
                    found["curl"].append(_rate(dump.total, seconds))
    return found


def _concurrent(bench: Bench, root: Path, sizes: Sizes) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {
        "push": [], "curl": [], "dd": [], "hashlib": [], "push peak MiB": []
    }  # fmt: skip
    with scratch(root / "concurrent") as case:
        dump = _dump(case / "dump", sizes.recorders, sizes.per_recorder, sizes.recorder_file_bytes)
        source = write_random(case / "limit.bin", sizes.limit_bytes)
        for r in range(sizes.rounds):
            for way in _rotated(["push", "curl", "limits"], r):
                if way == "push":
                    done = bench.push(dump, sizes.recorders)
                    found["push"].append(_rate(dump.total, done.seconds))
                    found["push peak MiB"].append(done.peak_mib)
                    _sent_all(done, dump)
                elif way == "curl":
                    found["curl"].append(_rate(dump.total, bench.curl(dump, sizes.recorders)))
                else:
                    for name, limit in (("dd", _dd), ("hashlib", _hashlib)):
                        target = case / "limit.out"
                        started = time.perf_counter()
                        limit(source, target)
                        found[name].append(_rate(sizes.limit_bytes, time.perf_counter() - started))
                        target.unlink(missing_ok=True)
    return found


# --------------------------------------------------------------------------- figures


def _result(samples: dict[str, Any], sizes: Sizes) -> Result:
    large, small, conc = samples["large"], samples["small"], samples["concurrent"]
    limits = [min(d, h) for d, h in zip(conc["dd"], conc["hashlib"], strict=True)]
    lf, lb = sizes.large
    sf, sb = sizes.small
    large_label = f"{lf} × {_size(lb)}, one at a time"
    small_label = f"{sf} × {_size(sb)}, {sizes.small_concurrency} at once"
    conc_label = (
        f"{sizes.recorders} recorders × {sizes.per_recorder} × {_size(sizes.recorder_file_bytes)}, "
        f"{sizes.recorders} at once"
    )
    growth = median(large["push peak MiB"]) - median(large["small-file push peak MiB"])
    figures = (
        Figure("dock.large.push", f"{large_label}: dock push", median(large["push"]), "MB/s"),
        Figure("dock.large.curl", f"{large_label}: curl -T", median(large["curl"]), "MB/s"),
        Figure(
            "dock.large.vs_curl",
            f"{large_label}: dock push ÷ curl -T",
            median(_ratios(large["push"], large["curl"])),
            "×",
            Target(">=", RATIO_TARGET),
        ),
        Figure("dock.small.push", f"{small_label}: dock push", median(small["push"]), "MB/s"),
        Figure("dock.small.curl", f"{small_label}: curl -T", median(small["curl"]), "MB/s"),
        Figure(
            "dock.small.vs_curl",
            f"{small_label}: dock push ÷ curl -T",
            median(_ratios(small["push"], small["curl"])),
            "×",
            Target(">=", RATIO_TARGET),
        ),
        Figure("dock.concurrent.push", f"{conc_label}: dock push", median(conc["push"]), "MB/s"),
        Figure("dock.concurrent.curl", f"{conc_label}: curl -T", median(conc["curl"]), "MB/s"),
        Figure("dock.concurrent.dd", "dd conv=fsync: the disk", median(conc["dd"]), "MB/s"),
        Figure(
            "dock.concurrent.hashlib", "hashlib SHA-256: the hash", median(conc["hashlib"]), "MB/s"
        ),
        Figure(
            "dock.concurrent.vs_limit",
            f"{conc_label}: dock push ÷ min(disk, hash)",
            median(_ratios(conc["push"], limits)),
            "×",
            Target(">=", RATIO_TARGET),
        ),
        Figure(
            "dock.concurrent.vs_curl",
            f"{conc_label}: dock push ÷ curl -T",
            median(_ratios(conc["push"], conc["curl"])),
            "×",
        ),
        Figure(
            "dock.startup",
            "dock push over an empty dump folder (start-up, register)",
            median(samples["agent start-up s"]),
            "s",
        ),
        Figure(
            "dock.rss.small_file",
            f"agent peak RSS, {lf} × {_size(sizes.rss_small_bytes)}",
            median(large["small-file push peak MiB"]),
            "MiB",
        ),
        Figure(
            "dock.rss.large_file",
            f"agent peak RSS, {lf} × {_size(lb)}",
            median(large["push peak MiB"]),
            "MiB",
        ),
        Figure(
            "dock.rss.growth",
            f"agent peak RSS growth from {_size(sizes.rss_small_bytes)} to {_size(lb)} files",
            growth,
            "MiB",
            Target("<=", GROWTH_LIMIT_MIB),
        ),
        Figure(
            "dock.rss.concurrent",
            f"agent peak RSS, {sizes.recorders} at once",
            median(conc["push peak MiB"]),
            "MiB",
        ),
    )
    notes = (
        f"{sizes.rounds} round(s) per case, the order of the ways rotated; rates are medians "
        "of total bytes ÷ wall time of one agent or curl process, ratios medians of per-round "
        "ratios; loopback, both servers uvicorn (h11, asyncio) in subprocesses",
        "no ingest runs: the agent is run with --wait 0 and ends when every file is received "
        "(uploaded, chunk checksums and whole-file SHA-256 checked, in the intake folder); "
        "nothing is verified, only upload throughput is measured",
        "the agent's time includes its start-up (the start-up row) and its own SHA-256 pass "
        "over every file before the upload (the digest is declared at creation); curl hashes "
        "nothing; the server hashes each byte twice (chunk checksum, whole file) and fdatasyncs "
        "each 8 MiB chunk, the plain endpoint fsyncs each file once",
        "curl: one process per case from a config file, sequential for the large files and "
        "--parallel-max equal to the agent's --concurrency otherwise, so neither side pays a "
        "process start per file; Expect: 100-continue off",
        f"server (evidence web) peak RSS over the whole benchmark: "
        f"{samples['server peak RSS MiB']:.0f} MiB",
    )
    return Result(NUMBER, NAME, figures, notes, samples=samples)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _servers(root: Path) -> Iterator[Bench]:
    """The station server with its push station and token, and the plain endpoint."""
    home = root / "home"
    make_home(home)
    server_env = {**_clean_env(), "EVIDENCE_HOME": str(home)}
    _cli(server_env, "init")
    _cli(server_env, "stations", "add", STATION, "--push", "--as", "bench")
    token = _cli(server_env, "stations", "token", STATION, "--as", "bench").strip()
    token_file = root / "station.token"
    token_file.write_text(token + "\n", encoding="ascii")
    station_home = root / "station"  # the agent's: settings only, no instance
    station_home.mkdir()
    agent_env = {**_clean_env(), "EVIDENCE_HOME": str(station_home)}
    plain = root / "plain"
    port, plain_port = _free_port(), _free_port()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(
            _serving([EVIDENCE, "web", "--port", str(port)], server_env, port, root / "web.log")
        )
        plain_command = [
            sys.executable, "-m", "benchmarks.plain_upload",
            "--port", str(plain_port), "--folder", str(plain),
        ]  # fmt: skip
        stack.enter_context(_serving(plain_command, _clean_env(), plain_port, root / "plain.log"))
        yield Bench(
            root=root,
            intake=home / "intake" / STATION,
            plain=plain,
            server_url=f"http://127.0.0.1:{port}",
            plain_url=f"http://127.0.0.1:{plain_port}",
            token_file=token_file,
            agent_env=agent_env,
            server_pid=server.pid,
        )


@contextlib.contextmanager
def _serving(
    command: Sequence[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if child.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited {child.returncode}: {_tail(log)}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[:3]} did not listen on {port} within 60 s")
            time.sleep(0.1)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def _watchdog(child: subprocess.Popen[bytes]) -> Iterator[None]:
    timer = threading.Timer(TIMEOUT_S, child.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [EVIDENCE, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"evidence {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout


def _clean_env() -> dict[str, str]:
    """This process's environment without its EVIDENCE_ variables (make_home set one)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EVIDENCE_")}


def _dump(root: Path, recorders: int, per: int, size: int, total: int | None = None) -> Dump:
    """``recorders`` folders BWC-01… with a recorder.json each and ``per`` files of ``size``
    random bytes each (``total`` files at most), made older than any stability wait."""
    files: dict[str, int] = {}
    old = time.time() - AGE_S
    root.mkdir(parents=True)
    for r in range(1, recorders + 1):
        serial = f"BWC-{r:02d}"
        folder = root / serial
        folder.mkdir()
        identity = {"serial": serial, "officer_number": f"{100000 + r}", "unit_number": "U-01"}
        (folder / "recorder.json").write_text(json.dumps(identity), encoding="utf-8")
        for i in range(per):
            if total is not None and len(files) >= total:
                break
            rel = f"{serial}/20261201_08{i // 60:02d}{i % 60:02d}_{i:04d}.mp4"
            os.utime(write_random(root / rel, size), (old, old))
            files[rel] = size
    return Dump(root, files)


def _check_arrived(folder: Path, dump: Dump) -> None:
    """Every file of ``dump`` is in ``folder`` with its size; then ``folder`` is emptied."""
    found = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    if found != dump.files:
        missing = sorted(set(dump.files) - set(found))
        other = sorted(k for k in found if found[k] != dump.files.get(k))
        raise RuntimeError(f"arrived: {len(found)} of {len(dump.files)}; {missing[:3]} {other[:3]}")
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _sent_all(done: Push, dump: Dump) -> None:
    if done.bytes_sent != dump.total:
        raise RuntimeError(f"dock push sent {done.bytes_sent} bytes for {dump.total}")


def _rotated(ways: list[str], r: int) -> list[str]:
    k = r % len(ways)
    return ways[k:] + ways[:k]


def _rate(size: int, seconds: float) -> float:
    return size / seconds / MB


def _ratios(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(ours, theirs, strict=True)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


def _size(size: int) -> str:
    if size >= 1 << 30:
        return f"{size >> 30} GiB"
    return f"{size // MiB} MiB" if size >= MiB else f"{size >> 10} KiB"
