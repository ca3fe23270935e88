"""10. Flow-run throughput on a process worker, and what a flow-run process costs to start.

In scale-out (docs/deploy.md) every batch is a flow run of the ``ingest-station`` deployment,
and a Prefect process worker runs each one as a new Python process (``python -m
prefect.engine``) that imports Prefect, then our flow module, then runs the flow. On these
2-core machines that start-up, not the work, decides how many runs a worker gets through.

Two measurements:
- **runs per minute per worker**: the real path: a process work pool on the benchmark's
  Prefect server, the ``ingest-station`` deployment made from the project's source as
  ``evidence deploy`` makes it (flows.deploy), one ``prefect worker start --type process``
  (what ``evidence worker`` runs), and a burst of trivial runs (a station's planned jobs, none:
  the flow opens the catalog and the store, signs due checkpoints, publishes its table and
  ends) submitted at once with ``run_deployment``, as a station host submits batches. The
  worker's own start-up and a first run are not timed; the CPU of the flow-run processes is
  read from the worker's reaped children (``/proc/<pid>/stat``);
- **import CPU of a flow-run process**: a fresh interpreter importing what the engine imports
  before the flow runs (``prefect.engine``, ``prefect.flow_engine``), and then the flow from
  its entrypoint file as the engine loads it; CPU seconds (user + system) of the child.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import Figure, Result, to_markdown
from benchmarks.workbench import add_dock, make_home, median, scratch, wait_for_quiet

NUMBER, NAME = 11, "flow-run throughput on a process worker"

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = "flows/ingest.py:ingest_station"


@dataclass(frozen=True)
class Sizes:
    runs: int  # per burst, submitted at once, timed
    rounds: int  # bursts of each way, in turn
    ways: tuple[str, ...]
    import_samples: int  # fresh interpreters, each importing what a flow-run process does
    engine_alone: bool  # the same for Prefect's engine alone, to tell its share from ours
    warm_up: bool  # one untimed run of each way first (bytecode of a fresh tree, first poll)


FULL = Sizes(
    runs=10,
    rounds=2,
    ways=("deployed", "prefect_default"),
    import_samples=5,
    engine_alone=True,
    warm_up=True,
)
# A smoke run: each step once, ~15 s at load 1.6: a flow-run process's imports (~2.5 s), the
# deployments (~3 s), the worker's start (~3 s) and one run (~6 s from submission to exit).
QUICK = Sizes(
    runs=1, rounds=1, ways=("deployed",), import_samples=1, engine_alone=False, warm_up=False
)

#: How the worker starts a flow run: as ``evidence deploy`` deploys it (Prefect's engine
#: started directly, flows.deploy.engine_command), and Prefect's default for a process work
#: pool without a command (a workspace supervisor process that execs the engine).
WAYS = {
    "deployed": "as deployed (the engine at once)",
    "prefect_default": "Prefect's default launcher (workspace supervisor, then the engine)",
}

#: As docs/deploy.md measured it (`evidence worker --limit 4`).
WORKER_LIMIT = 4
_RUN_TIMEOUT_S = 300.0
_FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

#: What a flow-run process imports before it runs the flow (prefect/engine.py's __main__).
_ENGINE_IMPORTS = "import prefect.engine, prefect.flow_engine"
#: ... and then the flow, loaded from its entrypoint file as the engine loads it.
_FLOW_IMPORT = (
    "from prefect.utilities.importtools import import_object; "
    f"import_object({str(REPO / ENTRYPOINT)!r})"
)


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    with scratch(work / "flow-runs") as root:
        imports = {
            "engine_and_flow": [
                _import_cpu(f"{_ENGINE_IMPORTS}; {_FLOW_IMPORT}")
                for _ in range(sizes.import_samples)
            ],
        }
        if sizes.engine_alone:
            imports["engine"] = [_import_cpu(_ENGINE_IMPORTS) for _ in range(sizes.import_samples)]
        # The flow-run processes inherit this process's environment: EVIDENCE_HOME is the
        # bench home (make_home), PREFECT_API_URL the runner's server.
        settings = make_home(root / "home")
        station = add_dock(settings, root / "dock")
        pool = f"bench-flow-runs-{os.getpid()}"
        bursts: dict[str, list[Burst]] = {way: [] for way in sizes.ways}
        with _deployments(pool) as deployments, _worker(pool, root / "worker.log") as worker:
            if sizes.warm_up:
                for way in sizes.ways:
                    _burst(deployments[way], station.id, 1, worker.pid)
                wait_for_quiet()
            for i in range(sizes.rounds):
                order = list(sizes.ways) if i % 2 == 0 else list(reversed(sizes.ways))
                for way in order:
                    bursts[way].append(_burst(deployments[way], station.id, sizes.runs, worker.pid))
    return _result(bursts, imports, sizes)


@dataclass(frozen=True)
class Burst:
    seconds: float  # from the first submission to the last flow-run process's exit
    cpu_s: float  # of the flow-run processes, together
    worker_cpu_s: float  # of the worker process itself
    server_cpu_s: float | None  # of the Prefect server's process, when it is on this host
    load: float  # the 1-minute load average at the end


def _result(
    bursts: dict[str, list[Burst]], imports: dict[str, list[float]], sizes: Sizes
) -> Result:
    figures: list[Figure] = []
    for way in sizes.ways:
        label = WAYS[way]
        per_run = {
            "cpu_per_run": [b.cpu_s / sizes.runs for b in bursts[way]],
            "worker_cpu": [b.worker_cpu_s / sizes.runs for b in bursts[way]],
            "server_cpu": [
                b.server_cpu_s / sizes.runs for b in bursts[way] if b.server_cpu_s is not None
            ],
        }
        rates = [sizes.runs / b.seconds * 60 for b in bursts[way]]
        figures.append(
            Figure(
                f"flow_runs.{way}.per_minute", f"{label}: runs per minute", median(rates), "/min"
            )
        )
        for key, what in (
            ("cpu_per_run", "CPU of a flow-run process"),
            ("worker_cpu", "the worker's CPU per run"),
            ("server_cpu", "the Prefect server's CPU per run"),
        ):
            if per_run[key]:  # no server figure when the server is on another host
                figures.append(
                    Figure(f"flow_runs.{way}.{key}", f"{label}: {what}", median(per_run[key]), "s")
                )
    both = median(imports["engine_and_flow"])
    figures.append(Figure("flow_runs.import_cpu", "import CPU of a flow-run process", both, "s"))
    if "engine" in imports:
        engine = median(imports["engine"])
        figures += [
            Figure("flow_runs.import_cpu.prefect", "of which Prefect's engine", engine, "s"),
            Figure("flow_runs.import_cpu.ours", "of which our flow module", both - engine, "s"),
        ]
    loads = [b.load for way in sizes.ways for b in bursts[way]]
    notes = (
        f"one process worker (--limit {WORKER_LIMIT}) on the runner's Prefect server, "
        f"{sizes.rounds} burst(s) of {sizes.runs} trivial ingest-station runs per way, "
        f"submitted at once, the ways in turn; load average {min(loads):.2f}–{max(loads):.2f} "
        f"at the bursts' ends; import CPU: median of {sizes.import_samples} fresh "
        "interpreter(s), user + system",
    )
    samples = {
        "import_cpu_s": imports,
        "bursts": {way: [vars(b) for b in bursts[way]] for way in sizes.ways},
    }
    return Result(NUMBER, NAME, tuple(figures), notes, samples=samples)


def _import_cpu(code: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter that runs ``code``, in the project's
    folder as a worker's flow-run process runs (the deployment's working directory)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@contextmanager
def _deployments(pool: str) -> Iterator[dict[str, str]]:
    """A process work pool and, for each way, the ingest-station deployment made for it as
    ``evidence deploy`` makes it (code from the project's folder), the second without its
    command; all deleted afterwards. Their names by way."""
    from prefect import deploy
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.deploy import ingest_deployment

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    try:
        deployed = ingest_deployment(str(REPO), pool, name=f"{pool}-deployed")
        default = ingest_deployment(str(REPO), pool, name=f"{pool}-prefect-default")
        default.job_variables = {k: v for k, v in default.job_variables.items() if k != "command"}
        with contextlib.redirect_stdout(io.StringIO()):  # its table of deployments
            deploy(
                deployed,
                default,
                work_pool_name=pool,
                build=False,
                push=False,
                print_next_steps_message=False,
                ignore_warnings=True,
            )
        yield {
            "deployed": f"ingest-station/{deployed.name}",
            "prefect_default": f"ingest-station/{default.name}",
        }
    finally:
        with get_client(sync_client=True) as client:
            for found in client.read_deployments():
                if found.work_pool_name == pool:
                    client.delete_deployment(found.id)
            client.delete_work_pool(pool)


@contextmanager
def _worker(pool: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``prefect worker start`` for the pool, as ``evidence worker`` runs it; polling every
    second (the default 10 s would be most of what is measured)."""
    env = {**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool]
    command += ["--type", "process", "--limit", str(WORKER_LIMIT)]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_online(pool, worker)
        yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def _wait_online(pool: str, worker: subprocess.Popen[bytes]) -> None:
    """Until the worker has sent its first heartbeat: its start-up is not timed."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + _RUN_TIMEOUT_S
    with get_client(sync_client=True) as client:
        while not client.read_workers_for_work_pool(pool):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker for {pool} did not come online")
            time.sleep(0.2)


def _burst(deployment: str, station_id: str, runs: int, worker: int) -> Burst:
    """Submit ``runs`` runs at once and wait until all have ended and their processes have
    exited (a worker's slot is taken until then)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment

    server = _server_pid()
    cpu_before = _children_cpu(worker), _own_cpu(worker), _own_cpu(server) if server else 0.0
    started = time.perf_counter()
    ids = []
    for _ in range(runs):
        flow_run: Any = run_deployment(  # sync when called from sync code
            deployment, parameters={"station_id": station_id, "job_ids": []}, timeout=0
        )
        ids.append(flow_run.id)
    deadline = time.monotonic() + _RUN_TIMEOUT_S
    states: list[str] = []
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            found = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
            states = [str(r.state_type.value) if r.state_type else "" for r in found]
            ended = len(states) == runs and all(s in _FINAL for s in states)
            if ended and not _children(worker):
                seconds = time.perf_counter() - started
                if any(s != "COMPLETED" for s in states):
                    raise RuntimeError(f"flow runs of {deployment} did not all complete: {states}")
                runs_cpu = _children_cpu(worker) - cpu_before[0]
                worker_cpu = _own_cpu(worker) - cpu_before[1]
                server_cpu = _own_cpu(server) - cpu_before[2] if server else None
                return Burst(
                    round(seconds, 2),
                    round(runs_cpu, 2),
                    round(worker_cpu, 2),
                    None if server_cpu is None else round(server_cpu, 2),
                    os.getloadavg()[0],
                )
            time.sleep(0.2)
    raise RuntimeError(f"{runs} flow runs not ended within {_RUN_TIMEOUT_S:g} s: {states}")


def _children(pid: int) -> list[str]:
    return [
        child
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _children_cpu(pid: int) -> float:
    """CPU seconds of the children ``pid`` has reaped: the worker's ended flow-run processes."""
    return _stat_cpu(pid, 13)


def _own_cpu(pid: int) -> float:
    return _stat_cpu(pid, 11)


def _stat_cpu(pid: int, index: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command's ")" the state is field 3 of proc(5): utime (14) and stime (15) are
    # 11 and 12 here, cutime (16) and cstime (17) 13 and 14.
    return (int(fields[index]) + int(fields[index + 1])) / os.sysconf("SC_CLK_TCK")


def _server_pid() -> int | None:
    """The process listening on the port of PREFECT_API_URL on this host, if any (found as
    ss(8) does: the socket's inode in /proc/net/tcp, then the process holding it)."""
    url = urllib.parse.urlsplit(os.environ.get("PREFECT_API_URL", ""))
    if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
        return None
    listening = "0A"
    inodes = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[3] == listening and int(fields[1].split(":")[1], 16) == url.port
    }
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    return int(proc.name)
    return None


def main() -> None:
    """Run it alone: ``python -m benchmarks.flow_runs [--quick] [--prefect-api URL]``; without
    an API URL a local Prefect server is started (on PostgreSQL when one answers) and stopped."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--prefect-api", default="")
    args = parser.parse_args()
    from benchmarks.runner import _isolate_environment, _prefect
    from benchmarks.workbench import POSTGRES_ADMIN, postgres_unreachable

    _isolate_environment()
    database = "sqlite" if postgres_unreachable(POSTGRES_ADMIN) else POSTGRES_ADMIN
    with (
        tempfile.TemporaryDirectory(prefix="evidence-bench-") as work,
        _prefect(Path(work), args.prefect_api, database, True),
    ):
        started = time.perf_counter()
        result = run(Path(work), args.quick)
        seconds = time.perf_counter() - started
    print(to_markdown([result]))
    print(f"- {seconds:.1f} s, the Prefect server's start not counted")
    for note in result.notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
