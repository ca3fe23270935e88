"""10. The S3 path against the tools an operator would use instead, on the same bytes, in one
run, against one SeaweedFS server (``weed mini``, as the tests start it):

- **ours, re-read on / off**: ``put_original`` of the store the ingest opens with
  ``store.kind = "s3"`` and the product's S3 defaults: the source hashed whole and per part
  in one read, then read again for the upload, every part (or the single PUT) sent with its
  SHA-256 for the server to check, the server's checksum compared with ours; with ``reread``
  the object also downloaded and hashed;
- **rclone**: ``rclone copy --checksum`` (Debian's rclone, its defaults: MD5 of the file
  before a multipart upload, Content-MD5 on every part);
- **upload_file**: boto3's ``upload_file`` with its default client and TransferConfig
  (CRC32 of every part in an aws-chunked trailer, no SHA-256 anywhere).

Each upload goes into a bucket of its own (created with Object Lock like the store's, so the
server does the same versioned writes for every tool), so no tool finds another's copy.
Variants take turns in a rotating order over the samples, so a neighbour's load hits all
alike; before each upload the page cache holds the source (a dock's just-written file) and
``sync`` has flushed what the previous upload left dirty. CPU seconds are the client's
(process time for the in-process variants, the child's rusage for rclone) and the server's
(utime + stime of the ``weed`` process, from /proc), per GB sent.

    python -m benchmarks.s3_peers [--quick] [--only ours,rclone]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import Figure, Result, Target, to_markdown
from benchmarks.workbench import MB, MiB, median, scratch, write_random
from pipeline.settings import Settings, load_settings
from pipeline.storage.local import open_store
from pipeline.storage.s3 import S3Store

NUMBER, NAME = 10, "S3 upload: ours vs rclone vs upload_file"
RCLONE = "/usr/bin/rclone"
GB = 1_000_000_000

#: The issue's target: ours with re-read off ≥ 0.9 × the faster peer.
TARGET_VS_PEERS = 0.9


@dataclass(frozen=True)
class Sizes:
    file_bytes: int
    files: int
    rounds: int
    s3: dict[str, int]  # store.s3 overrides (quick: small parts, so multipart still runs)


FULL = Sizes(file_bytes=1 << 30, files=2, rounds=3, s3={})
QUICK = Sizes(
    file_bytes=6 * MiB, files=1, rounds=1, s3={"single_put_max": 5 * MiB, "part_size": 5 * MiB}
)


@dataclass(frozen=True)
class Sample:
    seconds: float
    client_cpu: float
    server_cpu: float


@dataclass(frozen=True)
class Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    pid: int
    client: Any  # a plain boto3 client, for buckets and clean-up

    def cpu(self) -> float:
        """utime + stime of the server process, seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def bucket(self) -> str:
        name = f"peers-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
        return name

    def empty(self, bucket: str) -> None:
        """Remove every version (GOVERNANCE locks are bypassed: this is scratch data)."""
        listing = self.client.list_object_versions(Bucket=bucket)
        for entry in (*listing.get("Versions", []), *listing.get("DeleteMarkers", [])):
            self.client.delete_object(
                Bucket=bucket,
                Key=entry["Key"],
                VersionId=entry["VersionId"],
                BypassGovernanceRetention=True,
            )


#: A variant sets up (untimed, once per run) and returns the upload to time, of one source
#: into its bucket.
Variant = Callable[[Server, Path, Sizes], tuple[str, Callable[[Path], None]]]


def _ours(reread: bool) -> Variant:
    def prepare(server: Server, work: Path, sizes: Sizes) -> tuple[str, Callable[[Path], None]]:
        settings = _settings(
            server, work / f"home-{'reread' if reread else 'plain'}", reread, sizes
        )
        store = open_store(settings)  # the ingest's own entry point: bucket, lock self-test
        assert isinstance(store, S3Store)
        return store.bucket, lambda source: _put(store, source)

    return prepare


def _put(store: S3Store, source: Path) -> None:
    store.put_original(source)


def _rclone(server: Server, work: Path, _sizes: Sizes) -> tuple[str, Callable[[Path], None]]:
    bucket = server.bucket()
    env = {
        # rclone's AWS SDK refuses to start with AWS_CA_BUNDLE set (its HTTP transport is
        # rclone's own); the endpoint is plain HTTP anyway.
        **{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
        "RCLONE_CONFIG": str(work / "rclone.conf"),  # none: the remote is all environment
        "RCLONE_CONFIG_WEED_TYPE": "s3",
        "RCLONE_CONFIG_WEED_PROVIDER": "SeaweedFS",
        "RCLONE_CONFIG_WEED_ENDPOINT": server.endpoint_url,
        "RCLONE_CONFIG_WEED_ACCESS_KEY_ID": server.access_key,
        "RCLONE_CONFIG_WEED_SECRET_ACCESS_KEY": server.secret_key,
        "RCLONE_CONFIG_WEED_REGION": "us-east-1",
    }

    def upload(source: Path) -> None:
        command = [RCLONE, "copy", "--checksum", str(source), f"weed:{bucket}/peers"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"rclone failed: {done.stderr[-2000:]}")

    return bucket, upload


def _upload_file(server: Server, _work: Path, _sizes: Sizes) -> tuple[str, Callable[[Path], None]]:
    import boto3

    bucket = server.bucket()
    # A client as boto3 makes it by default: only where and who.
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
    )
    return bucket, lambda source: client.upload_file(str(source), bucket, f"peers/{source.name}")


VARIANTS: dict[str, Variant] = {
    "ours_reread": _ours(reread=True),
    "ours": _ours(reread=False),
    "rclone": _rclone,
    "upload_file": _upload_file,
}

LABELS = {
    "ours_reread": "ours (store.kind = s3), re-read on",
    "ours": "ours (store.kind = s3), re-read off",
    "rclone": "rclone copy --checksum",
    "upload_file": "boto3 upload_file (defaults)",
}


def _settings(server: Server, home: Path, reread: bool, sizes: Sizes) -> Settings:
    s3 = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "bucket": f"ours-{uuid.uuid4().hex[:12]}",
        # GOVERNANCE so the scratch copies can be removed after each sample; the lock mode
        # is a header, the same work for the server either way.
        "retention_mode": "GOVERNANCE",
        "reread": reread,
        **sizes.s3,
    }
    return load_settings(home=home, store={"kind": "s3", "s3": s3})


def run(work: Path, quick: bool, only: tuple[str, ...] = (), sizes: Sizes | None = None) -> Result:
    sizes = sizes or (QUICK if quick else FULL)
    chosen = [v for v in VARIANTS if not only or v in only]
    if "rclone" in chosen and not Path(RCLONE).exists():
        chosen.remove("rclone")  # reported as missing below, the others still measured
    with scratch(work / "s3-peers") as root, _seaweed(root / "seaweed") as server:
        sources = [
            write_random(root / f"source-{i}.bin", sizes.file_bytes) for i in range(sizes.files)
        ]
        uploads = {name: VARIANTS[name](server, root, sizes) for name in chosen}
        samples: dict[str, list[Sample]] = {v: [] for v in chosen}
        turn = 0
        for _ in range(sizes.rounds):
            for source in sources:
                order = chosen[turn % len(chosen) :] + chosen[: turn % len(chosen)]
                for name in order:
                    bucket, upload = uploads[name]
                    samples[name].append(_measure(upload, source, server))
                    # Emptied, so the same bytes are new to every sample (the store would
                    # find its earlier copy and only verify it).
                    server.empty(bucket)
                turn += 1
    return _result(samples, sizes, load=os.getloadavg())


def _measure(upload: Callable[[Path], None], source: Path, server: Server) -> Sample:
    _warm(source)
    os.sync()
    cpu, children, server_cpu = time.process_time(), _children_cpu(), server.cpu()
    started = time.perf_counter()
    upload(source)
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - cpu + _children_cpu() - children
    return Sample(seconds, client_cpu, server.cpu() - server_cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _warm(source: Path) -> None:
    """Read the source once, so every tool finds it in the page cache."""
    buffer = bytearray(8 * MiB)
    with source.open("rb", buffering=0) as f:
        while f.readinto(buffer):
            pass


@contextmanager
def _seaweed(folder: Path) -> Iterator[Server]:
    # The tests' server (a dev dependency): same flags, same identities, free ports.
    from tests.seaweed import running_seaweed

    folder.mkdir()
    children_before = _weed_children()
    # The filer's unix socket goes in the server's folder, and a socket path longer than 107
    # bytes cannot be bound (a test's temporary folder is that deep): a short folder of its own.
    with (
        tempfile.TemporaryDirectory(
            prefix="weed-", dir=folder if len(str(folder)) < 60 else None
        ) as short,
        running_seaweed(Path(short)) as weed,
    ):
        (pid,) = _weed_children() - children_before
        try:
            yield Server(weed.endpoint_url, weed.access_key, weed.secret_key, pid, weed.client)
        finally:
            # Its data is thrown away: no need to wait a second for a clean stop.
            os.kill(pid, signal.SIGKILL)


def _weed_children() -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split("(", 1)[1].rsplit(")", 1)
        if name == "weed" and int(rest.split()[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def _result(samples: dict[str, list[Sample]], sizes: Sizes, load: tuple[float, ...]) -> Result:
    gb = sizes.file_bytes / GB
    figures: list[Figure] = []
    rates = {v: [sizes.file_bytes / s.seconds / MB for s in got] for v, got in samples.items()}
    for name, got in samples.items():
        figures += [
            Figure(f"s3.{name}.rate", LABELS[name], median(rates[name]), "MB/s"),
            Figure(
                f"s3.{name}.client_cpu",
                f"{LABELS[name]}: client CPU",
                median([s.client_cpu / gb for s in got]),
                "s/GB",
            ),
            Figure(
                f"s3.{name}.server_cpu",
                f"{LABELS[name]}: server CPU",
                median([s.server_cpu / gb for s in got]),
                "s/GB",
            ),
        ]
    peers = [p for p in ("rclone", "upload_file") if p in rates]
    if "ours" in rates and peers:
        fastest = [max(r) for r in zip(*(rates[p] for p in peers), strict=True)]
        ratios = [o / f for o, f in zip(rates["ours"], fastest, strict=True)]
        figures.append(
            Figure(
                "s3.vs_peers",
                f"ours (re-read off) ÷ the faster of {' and '.join(peers)}",
                median(ratios),
                "×",
                Target(">=", TARGET_VS_PEERS),
            )
        )
    if "ours" in rates and "ours_reread" in rates:
        cost = [
            on.seconds / off.seconds
            for on, off in zip(samples["ours_reread"], samples["ours"], strict=True)
        ]
        figures.append(
            Figure("s3.reread_cost", "re-read on: time ÷ re-read off", median(cost), "×")
        )
    count = min((len(s) for s in samples.values()), default=0)
    notes = [
        f"{sizes.files} × {sizes.file_bytes // MiB} MiB random bytes, {count} samples of each "
        f"variant in rotating order, one SeaweedFS (weed mini) on this host; medians, ratios "
        f"the median of per-sample ratios; load average at the end {load[0]:.2f}",
    ]
    if "rclone" not in samples:
        notes.append(f"rclone not measured: no {RCLONE}")
    raw = {v: [vars(s) for s in got] for v, got in samples.items()}
    return Result(NUMBER, NAME, tuple(figures), tuple(notes), samples={"samples": raw})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.s3_peers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", default="", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--workdir", type=Path, default=None, help="default: system temp")
    parser.add_argument("--mib", type=int, default=0, help="file size, MiB (default: full)")
    parser.add_argument("--files", type=int, default=0, help="files (default: full)")
    parser.add_argument("--rounds", type=int, default=0, help="rounds (default: full)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = Sizes(
        file_bytes=args.mib * MiB or base.file_bytes,
        files=args.files or base.files,
        rounds=args.rounds or base.rounds,
        s3=base.s3,
    )
    only = tuple(v for v in args.only.split(",") if v)
    if unknown := set(only) - set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="evidence-s3-peers-", dir=args.workdir) as work:
        result = run(Path(work), args.quick, only, sizes)
    print(f"load average before {load_before}, after {os.getloadavg()}", file=sys.stderr)
    print(to_markdown([result]))
    for note in result.notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
