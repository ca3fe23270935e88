"""The dock agent (`evidence dock push`) on its own: the state file, the bandwidth cap, tus
details, completeness and the rule that a local file is freed only on the server's word.

The network peer is a test double: a small ThreadingHTTPServer speaking the subset of the
station API (docs/station-api.md) each test needs, with faults injected at exact points (a
connection cut in the middle of a chunk, a damaged chunk, a kill of the agent on the second
chunk). Waits of the agent's backoff are recorded, not slept. The end-to-end tests against
the real server live elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from docks import push, push_state, transfer, tus

TOKEN = "s3cr3t-token"
CHUNK = 64 << 10  # the smallest chunk the agent takes from register
IGNORE = ("*.part", "*.tmp", ".*")


# ------------------------------------------------------------------------ the test double


@dataclass
class Upload:
    id: str
    length: int
    metadata: dict[str, str]
    data: bytearray = field(default_factory=bytearray)
    state: str = "receiving"

    @property
    def sha256(self) -> str:
        return self.metadata["sha256"]


class FakeStation:
    """The server side of the station API, as far as the agent's tests need it. Hooks:
    ``on_patch(upload, n, body) -> str | None`` may answer a fault ("cut", "damaged",
    "digest", "busy", "mismatch") for the n-th PATCH; ``verdict(upload) -> str`` is the
    state `status` answers; ``present`` the digests `have` calls present."""

    def __init__(self) -> None:
        self.uploads: dict[str, Upload] = {}
        self.created = 0  # ids are never reused, even after an upload is dropped
        self.present: set[str] = set()
        self.requests: list[tuple[str, str]] = []
        self.patches = 0
        self.on_patch: Callable[[Upload, int, bytes], str | None] = lambda u, n, b: None
        self.on_create: Callable[[int], tuple[int, dict[str, str]] | None] = lambda n: None
        self.verdict: Callable[[Upload], str] = lambda u: (
            "verified" if u.state == "received" else u.state
        )
        self.register_answer: dict[str, Any] = {"chunk_bytes": CHUNK, "keepalive_s": 60}
        self.token = TOKEN
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()
        self.registered: list[dict[str, Any]] = []

    def serve(self, tls: ssl.SSLContext | None = None) -> Iterator[str]:
        station = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Tus-Resumable", "1.0.0")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if raw:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                if raw and self.command != "HEAD":
                    self.wfile.write(raw)

            def _error(self, status: int, code: str, **headers: str) -> None:
                self._answer(status, {"error": code, "message": f"测试 {code}"}, headers)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _route(self) -> None:
                prefix = "/api/v1/dock/DOCK-07/"
                with station.lock:
                    station.requests.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {station.token}":
                    self._body()
                    return self._error(401, "not-signed-in")
                if not self.path.startswith(prefix):
                    self._body()
                    return self._error(403, "permission-denied")
                getattr(self, "do_" + self.command.lower() + "_", self._unknown)(
                    self.path[len(prefix) :]
                )

            def _unknown(self, rest: str) -> None:
                self._error(404, "not-found")

            do_GET = do_POST = do_HEAD = do_PATCH = do_DELETE = _route

            def do_get_(self, rest: str) -> None:
                if rest == "time":
                    return self._answer(200, {"epoch_ms": int(time.time() * 1000)})
                u = station.uploads.get(rest.removeprefix("uploads/"))
                if u is not None:
                    state = station.verdict(u)
                    return self._answer(
                        200, {"upload": u.id, "sha256": u.sha256, "state": state, "reason": None}
                    )
                self._error(404, "not-found")

            def do_post_(self, rest: str) -> None:
                if rest == "uploads":
                    return self._create()
                payload = json.loads(self._body() or b"{}")
                if rest in ("register", "keepalive"):
                    station.registered.append(payload)
                    return self._answer(200, station.register_answer)
                if rest == "have":
                    asked = payload["sha256"]
                    assert len(asked) <= 1000
                    present = [d for d in asked if d in station.present]
                    missing = [d for d in asked if d not in station.present]
                    return self._answer(200, {"missing": missing, "present": present})
                if rest == "status":
                    if any(i not in station.uploads for i in payload["uploads"]):
                        return self._error(404, "upload-not-found")  # as the real one: all or none
                    found = [station.uploads[i] for i in payload["uploads"]]
                    answers = []
                    for u in found:
                        state = station.verdict(u)  # may change what it says of the upload
                        reason = "测试 held" if state == "held" else None
                        answers.append(
                            {"upload": u.id, "sha256": u.sha256, "state": state, "reason": reason}
                        )
                    return self._answer(200, {"uploads": answers})
                self._error(404, "not-found")

            def _create(self) -> None:
                metadata = {
                    k: v.decode()
                    for k, v in tus.decode_metadata(self.headers["Upload-Metadata"]).items()
                }
                with station.lock:
                    refusal = station.on_create(
                        len(
                            [
                                r
                                for r in station.requests
                                if r[0] == "POST" and r[1].endswith("uploads")
                            ]
                        )
                    )
                    if refusal is not None:
                        status, headers = refusal
                        return self._error(
                            status,
                            {
                                429: "too-many-uploads",
                                409: "already-archived",
                                413: "upload-too-large",
                                503: "storage",
                            }[status],
                            **headers,
                        )
                    for u in station.uploads.values():  # the open upload of this digest and path
                        if u.state == "receiving" and (u.sha256, u.metadata["path"]) == (
                            metadata["sha256"],
                            metadata["path"],
                        ):
                            break
                    else:
                        station.created += 1
                        u = Upload(
                            f"u{station.created}",
                            int(self.headers["Upload-Length"]),
                            metadata,
                        )
                        station.uploads[u.id] = u
                        if u.length == 0:
                            u.state = "received"
                self._answer(201, headers={"Location": f"/api/v1/dock/DOCK-07/uploads/{u.id}"})

            def do_head_(self, rest: str) -> None:
                u = station.uploads.get(rest.removeprefix("uploads/"))
                if u is None or u.state in ("failed", "terminated"):
                    return self._answer(404)
                self._answer(
                    200, headers={"Upload-Offset": str(len(u.data)), "Upload-Length": str(u.length)}
                )

            def do_delete_(self, rest: str) -> None:
                u = station.uploads.get(rest.removeprefix("uploads/"))
                if u is not None:
                    u.state = "terminated"
                self._answer(204)

            def do_patch_(self, rest: str) -> None:
                u = station.uploads.get(rest.removeprefix("uploads/"))
                length = int(self.headers["Content-Length"])
                if u is None or u.state != "receiving":
                    self._body()
                    return self._answer(404)
                with station.lock:
                    station.patches += 1
                    n = station.patches
                    station.active += 1
                    station.most_active = max(station.most_active, station.active)
                try:
                    fault = station.on_patch(u, n, b"")
                    if fault == "mismatch" or int(self.headers["Upload-Offset"]) != len(u.data):
                        self._body()
                        return self._error(409, "offset-mismatch")
                    if fault == "cut":  # half the chunk arrives, then the line drops
                        self.rfile.read(length // 2)
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    body = self.rfile.read(length)
                    if fault == "busy":
                        return self._error(423, "upload-busy")
                    algorithm, _, digest = self.headers["Upload-Checksum"].partition(" ")
                    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
                    if fault == "damaged" or (algorithm, digest) != ("sha256", expected):
                        return self._error(460, "checksum-mismatch")
                    u.data += body
                    if len(u.data) == u.length:
                        if fault == "digest" or hashlib.sha256(u.data).hexdigest() != u.sha256:
                            u.state = "failed"
                            return self._error(460, "digest-mismatch")
                        u.state = "received"
                    if station.on_patch(u, n, body) == "lost":  # counted; the answer is lost
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    self._answer(204, headers={"Upload-Offset": str(len(u.data))})
                finally:
                    with station.lock:
                        station.active -= 1

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def count(self, method: str, suffix: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(suffix))


@pytest.fixture
def station() -> FakeStation:
    return FakeStation()


@pytest.fixture
def server(station: FakeStation) -> Iterator[str]:
    yield from station.serve()


def _old(path: Path, data: bytes, age_s: float = 600.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def _agent(
    server: str,
    root: Path,
    sleeps: list[float] | None = None,
    token: str = TOKEN,
    ignore: tuple[str, ...] = IGNORE,
    **options: Any,
) -> push.Agent:
    values: dict[str, Any] = {"stable_s": 2.0, "poll_s": 0.01, "wait_s": 30.0, "concurrency": 2}
    values.update(options)
    opts = push.PushOptions("DOCK-07", root, ignore, **values)
    record = sleeps if sleeps is not None else []
    backoff = transfer.Backoff(first_s=1.0, attempts=4, sleep=record.append)
    return push.Agent(tus.DockClient(server, "DOCK-07", token), opts, backoff=backoff)


def _data(n: int, seed: int = 1) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (n // len(block) + 1))[:n]


# --------------------------------------------------------------------- pure pieces


def test_upload_metadata_is_key_space_base64_comma_separated() -> None:
    header = tus.encode_metadata({"sha256": "ab12", "path": "BWC-0017/执法.mp4", "flag": ""})
    assert (
        header
        == "sha256 YWIxMg==,path "
        + base64.b64encode("BWC-0017/执法.mp4".encode()).decode()
        + ",flag"
    )
    assert tus.decode_metadata(header) == {
        "sha256": b"ab12",
        "path": "BWC-0017/执法.mp4".encode(),
        "flag": b"",
    }
    for bad in ("with space", "a,b", "", "键"):
        with pytest.raises(ValueError):
            tus.encode_metadata({bad: "x"})


def test_chunk_checksum_is_base64_of_the_raw_sha256() -> None:
    assert tus.chunk_checksum(b"abc") == "sha256 ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("20M", 20 << 20),
        ("500K", 500 << 10),
        ("1G", 1 << 30),
        ("1000", 1000),
        ("1.5m", 3 << 19),
        ("20MB/s", 20 << 20),
    ],
)
def test_limit_rate_reads_like_curl(text: str, rate: int) -> None:
    assert transfer.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "0", "-5M", "20X"])
def test_limit_rate_refuses_what_is_not_a_rate(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        transfer.parse_rate(text)


def test_token_bucket_holds_the_rate_across_callers() -> None:
    now = [100.0]
    bucket = transfer.TokenBucket(1000, burst=1000, clock=lambda: now[0], sleep=lambda s: None)
    assert bucket.reserve(1000) == 0.0  # the burst
    assert bucket.reserve(500) == pytest.approx(0.5)  # behind the burst
    assert bucket.reserve(500) == pytest.approx(1.0)  # a second caller queues behind the first
    now[0] += 1.0  # one second refills 1000 bytes: the debt is down to 0
    assert bucket.reserve(100) == pytest.approx(0.1)
    now[0] += 60.0  # idle: the balance refills to the burst, never beyond
    assert bucket.reserve(1000) == 0.0
    assert bucket.reserve(1) == pytest.approx(0.001)


def test_token_bucket_sleeps_what_it_computed() -> None:
    slept: list[float] = []
    bucket = transfer.TokenBucket(1 << 20, burst=64 << 10, clock=lambda: 0.0, sleep=slept.append)
    for _ in range(17):
        bucket.take(64 << 10)
    # 16 pieces beyond the burst at 1 MiB/s: the last waits a whole second.
    assert slept[-1] == pytest.approx(1.0) and len(slept) == 16


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".evidence-push.json"
    state = push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0)
    name = os.fsdecode(b"BWC-1/\xd6\xb4\xb7\xa8.mp4")  # GBK bytes: not UTF-8
    entry = push_state.Entry(
        10,
        123,
        "ab" * 32,
        ino=7,
        upload="http://a/u/1",
        offset=5,
        sent=8,
        state=push_state.UPLOADING,
    )
    state.put(name, entry)  # saved: the first save of the run is never held back
    state.put("BWC-2/b.mp4", push_state.Entry(1, 2, "cd" * 32))
    assert (
        len(push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0).load().files) == 1
    ), "within 2 s: held back"
    state.save(force=True)  # as the agent does at the end of a pass
    again = push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0).load()
    assert again.files == state.files and again.files[name] == entry
    assert not again.tmp.exists()
    # Another server's upload URLs are forgotten; the digests stay.
    other = push_state.StateFile(path, "DOCK-07", "http://b", clock=lambda: 0.0).load()
    assert other.files[name] == push_state.Entry(10, 123, "ab" * 32, ino=7)


def test_state_file_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    state = push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0)
    state.put("a.mp4", push_state.Entry(1, 1, "00" * 32))
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("power lost")

    monkeypatch.setattr(push_state.os, "replace", crash)
    with pytest.raises(OSError, match="power lost"):
        state.put("b.mp4", push_state.Entry(2, 2, "11" * 32))
        state.save(force=True)
    assert path.read_bytes() == before  # the old state, whole
    monkeypatch.undo()
    assert set(
        push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0).load().files
    ) == {"a.mp4"}


def test_state_file_offsets_are_saved_at_most_every_two_seconds(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "state.json"
    state = push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: now[0])
    state.put("a.mp4", push_state.Entry(9, 1, "00" * 32, offset=0))
    state.put("a.mp4", push_state.Entry(9, 1, "00" * 32, offset=3), now=False)
    assert json.loads(path.read_text())["files"]["a.mp4"]["offset"] == 0
    now[0] = 2.5
    state.put("a.mp4", push_state.Entry(9, 1, "00" * 32, offset=6), now=False)
    assert json.loads(path.read_text())["files"]["a.mp4"]["offset"] == 6


def test_a_damaged_state_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    state = push_state.StateFile(path, "DOCK-07", "http://a", clock=lambda: 0.0).load()
    assert state.files == {} and state.note and "unreadable" in state.note
    assert (tmp_path / "state.json.damaged").read_text() == "{not json"


# ------------------------------------------------------------------ against the double


def test_pushes_verifies_then_releases_with_metadata(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    a = _old(root / "BWC-0017" / "20261130_093500.mp4", _data(3 * CHUNK + 17))
    b = _old(root / "BWC-0018" / "x.mp4", _data(10, seed=2))
    (root / "BWC-0017" / "recorder.json").write_text(
        json.dumps({"serial": "SN0017", "officer_number": "A1023", "unit_number": "U7"})
    )
    checked: list[bool] = []

    def verdict(u: Upload) -> str:
        # Twice "received" (ingest to come), then verified: the file must be there until then.
        polls = getattr(u, "polls", 0) + 1
        u.polls = polls  # type: ignore[attr-defined]
        if u.state != "received" or polls <= 2:
            checked.append((root / u.metadata["path"]).exists())
            return u.state
        return "verified"

    station.verdict = verdict
    summary = _agent(server, root).run()

    assert checked and all(checked)  # never freed while the server said "received"
    assert not a.exists() and not b.exists()
    assert (root / ".ingested" / "BWC-0017" / "20261130_093500.mp4").read_bytes() == _data(
        3 * CHUNK + 17
    )
    assert (summary.uploaded, summary.released, summary.held, summary.failed) == (2, 2, 0, 0)
    assert summary.bytes_sent == 3 * CHUNK + 17 + 10 and summary.bytes_resent == 0
    assert summary.ok
    meta = {u.metadata["path"]: u.metadata for u in station.uploads.values()}
    assert set(meta) == {"BWC-0017/20261130_093500.mp4", "BWC-0018/x.mp4"}  # not recorder.json
    first = meta["BWC-0017/20261130_093500.mp4"]
    assert (first["serial"], first["officer"], first["unit"]) == ("SN0017", "A1023", "U7")
    assert first["sha256"] == hashlib.sha256(_data(3 * CHUNK + 17)).hexdigest()
    assert abs(float(first["mtime"]) - (time.time() - 600)) < 5
    assert first["docked_at"].endswith("+00:00")
    assert (
        meta["BWC-0018/x.mp4"]["serial"] == "BWC-0018" and "officer" not in meta["BWC-0018/x.mp4"]
    )
    # Chunks as register said, never more in one PATCH; state file emptied of released files.
    assert station.patches == 4 + 1
    assert json.loads((root / ".evidence-push.json").read_text())["files"] == {}
    recorders = station.registered[0]["recorders"]
    assert {"serial": "SN0017", "officer_number": "A1023", "unit_number": "U7"} in recorders


def test_a_file_being_written_is_not_pushed(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "BWC-1" / "done.mp4", b"done")
    fresh = root / "BWC-1" / "fresh.mp4"
    fresh.write_bytes(b"just now")  # changed within stable_s
    held_open = root / "BWC-1" / "open.mp4"
    with held_open.open("wb") as writer:  # a writer still holds it, however old its mtime
        writer.write(b"half")
        writer.flush()
        os.utime(held_open, (time.time() - 600, time.time() - 600))
        summary = _agent(server, root, stable_s=60).run()
    assert [u.metadata["path"] for u in station.uploads.values()] == ["BWC-1/done.mp4"]
    states = {f.path: (f.state, f.reason) for f in summary.files}
    assert states["BWC-1/fresh.mp4"][0] == "waiting" and "60 s" in str(states["BWC-1/fresh.mp4"][1])
    assert states["BWC-1/open.mp4"][0] == "waiting" and "open for writing" in str(
        states["BWC-1/open.mp4"][1]
    )
    assert fresh.exists() and held_open.exists()
    assert summary.ok and summary.waiting == 2


def test_the_agents_own_files_are_never_pushed(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", b"a")
    _old(root / "b.mp4.part", b"b")  # ignore patterns are the caller's: none here
    _old(root / "BWC-1" / "recorder.json", b"{}")
    _old(
        root / ".evidence-push.json",
        json.dumps({"version": 1, "station": "DOCK-07", "server": "x", "files": {}}).encode(),
    )
    _old(root / ".evidence-push.json.tmp", b"{}")
    _agent(server, root, ignore=()).run()
    assert sorted(u.metadata["path"] for u in station.uploads.values()) == ["a.mp4", "b.mp4.part"]


def test_present_on_the_server_is_released_without_upload(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "BWC-1" / "a.mp4", b"already archived")
    station.present.add(hashlib.sha256(b"already archived").hexdigest())
    summary = _agent(server, root, release="delete").run()
    assert not f.exists() and not (root / ".ingested").exists()
    assert (summary.skipped_present, summary.released, summary.uploaded, summary.bytes_sent) == (
        1,
        1,
        0,
        0,
    )
    assert station.count("POST", "/uploads") == 0


def test_held_and_other_digest_keep_the_file(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    held = _old(root / "BWC-1" / "held.mp4", b"held")
    odd = _old(root / "BWC-1" / "odd.mp4", b"odd")

    def verdict(u: Upload) -> str:
        if u.state != "received":
            return u.state
        if u.metadata["path"].endswith("odd.mp4"):
            u.metadata["sha256"] = "00" * 32  # the server "verified" some other bytes
            return "verified"
        return "held"

    station.verdict = verdict
    summary = _agent(server, root).run()
    assert held.exists() and odd.exists()
    states = {f.path: f for f in summary.files}
    assert (
        states["BWC-1/held.mp4"].state == "held" and states["BWC-1/held.mp4"].reason == "测试 held"
    )
    assert states["BWC-1/odd.mp4"].state == "failed" and "the server verified 0000" in str(
        states["BWC-1/odd.mp4"].reason
    )
    assert not summary.ok and (summary.held, summary.failed, summary.released) == (1, 1, 0)
    # A second run reports the held file again without sending it again.
    again = _agent(server, root).run()
    assert station.count("POST", "/uploads") == 2 and again.held == 1 and held.exists()


def test_received_but_not_verified_in_time_waits(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", b"slow ingest")
    station.verdict = lambda u: u.state  # "received" for ever
    summary = _agent(server, root, wait_s=0.0).run()
    assert (
        f.exists() and summary.ok and summary.waiting == 1 and summary.files[0].state == "received"
    )
    # The next run asks the status of the same upload, sends nothing again.
    station.verdict = lambda u: "verified"
    again = _agent(server, root).run()
    assert again.released == 1 and again.bytes_sent == 0 and not f.exists()
    assert station.count("POST", "/uploads") == 1


def test_an_upload_the_server_forgot_is_reported_and_the_others_go_on(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    kept = _old(root / "a.mp4", b"a")
    gone = _old(root / "b.mp4", b"b")

    def verdict(u: Upload) -> str:
        if u.metadata["path"] == "b.mp4" and u.id in station.uploads:
            del station.uploads[u.id]  # the server lost it (its catalog restored, say)
            return "received"
        return "verified" if u.state == "received" else u.state

    station.verdict = verdict
    summary = _agent(server, root).run()
    states = {f.path: f.state for f in summary.files}
    assert states == {"a.mp4": "released", "b.mp4": "failed"}
    assert not kept.exists() and gone.exists()
    entry = json.loads((root / ".evidence-push.json").read_text())["files"]["b.mp4"]
    # A new upload next run (the outcomes' reasons tell a failure of another cause).
    assert entry["upload"] is None and entry["state"] == "hashed", (entry, summary.files)


def test_the_rate_cap_paces_every_piece_of_every_patch(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(4 * CHUNK))
    slept: list[float] = []
    bucket = transfer.TokenBucket(
        CHUNK, burst=tus.PIECE_BYTES, clock=lambda: 0.0, sleep=slept.append
    )
    opts = push.PushOptions("DOCK-07", root, IGNORE, 2.0, poll_s=0.01)
    client = tus.DockClient(server, "DOCK-07", TOKEN, limiter=bucket)
    summary = push.Agent(client, opts, backoff=transfer.Backoff(sleep=slept.append)).run()
    assert summary.released == 1
    # 64 KiB pieces at 64 KiB/s, the clock standing still: each waits a second more.
    assert slept == pytest.approx([float(i) for i in range(1, 4)])


def test_watch_keeps_going_and_keeps_alive(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "BWC-1" / "a.mp4", b"first")
    station.register_answer = {**station.register_answer, "keepalive_s": 0.01}
    released: dict[str, threading.Event] = {
        "BWC-1/a.mp4": threading.Event(),
        "BWC-1/b.mp4": threading.Event(),
    }

    class Seen(push.PushProgress):
        def ended(self, outcome: push.FileOutcome) -> None:
            if outcome.state == "released":
                released[outcome.path].set()

    opts = push.PushOptions("DOCK-07", root, IGNORE, 0.0, poll_s=0.01, interval_s=0.05)
    agent = push.Agent(tus.DockClient(server, "DOCK-07", TOKEN), opts, progress=Seen())
    stop = threading.Event()
    result: list[push.PushSummary] = []
    runner = threading.Thread(target=lambda: result.append(agent.run(watch=True, stop=stop)))
    runner.start()
    try:
        assert released["BWC-1/a.mp4"].wait(10)
        _old(root / "BWC-1" / "b.mp4", b"second")  # docked later: the next scan takes it
        assert released["BWC-1/b.mp4"].wait(10)
    finally:
        stop.set()
        runner.join(10)
    assert result and result[0].released == 2 and result[0].ok
    assert station.count("POST", "/keepalive") >= 1 and station.count("POST", "/register") == 1


def test_a_cut_connection_resumes_from_head_and_counts_what_was_resent(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    size = 4 * CHUNK + 5
    _old(root / "a.mp4", _data(size))
    station.on_patch = lambda u, n, body: "cut" if n == 2 and not body else None
    sleeps: list[float] = []
    summary = _agent(server, root, sleeps).run()
    (upload,) = station.uploads.values()
    assert bytes(upload.data) == _data(size) and summary.released == 1
    assert summary.bytes_resent > 0 and summary.bytes_sent - summary.bytes_resent == size
    assert summary.bytes_resent <= CHUNK  # only the chunk cut off went twice
    assert sleeps == [1.0] and station.count("HEAD") >= 1


def test_a_damaged_chunk_is_sent_again(tmp_path: Path, station: FakeStation, server: str) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(2 * CHUNK))
    station.on_patch = lambda u, n, body: "damaged" if n == 1 and not body else None
    summary = _agent(server, root).run()
    assert summary.released == 1 and summary.bytes_resent == CHUNK
    assert summary.bytes_sent == 3 * CHUNK


def test_a_busy_upload_waits_asks_head_and_sends_the_chunk_again(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(3 * CHUNK))
    station.on_patch = lambda u, n, body: "busy" if n == 2 and not body else None
    sleeps: list[float] = []
    summary = _agent(server, root, sleeps).run()
    assert summary.released == 1 and sleeps == [1.0] and station.count("HEAD") == 2
    assert summary.bytes_resent == CHUNK and summary.bytes_sent == 4 * CHUNK


def test_an_offset_mismatch_is_followed_from_head(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(3 * CHUNK))
    station.on_patch = lambda u, n, body: "mismatch" if n == 2 and not body else None
    sleeps: list[float] = []
    summary = _agent(server, root, sleeps).run()
    assert summary.released == 1 and sleeps == [] and station.count("HEAD") == 2
    (upload,) = station.uploads.values()
    assert bytes(upload.data) == _data(3 * CHUNK)


def test_a_lost_answer_costs_no_byte_again(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(3 * CHUNK))
    station.on_patch = lambda u, n, body: "lost" if n == 2 and body else None
    summary = _agent(server, root).run()
    # The chunk counted on the server; HEAD says so, and the agent goes on from there.
    assert summary.released == 1 and summary.bytes_sent == 3 * CHUNK and summary.bytes_resent == 0


def test_digest_mismatch_hashes_again_and_starts_anew(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", _data(CHUNK + 1))
    station.on_patch = lambda u, n, body: "digest" if n == 2 and not body else None
    summary = _agent(server, root).run()
    assert [u.state for u in station.uploads.values()] == ["failed", "received"]
    assert summary.released == 1


def test_digest_mismatch_twice_fails_and_keeps_the_file(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", _data(CHUNK + 1))
    station.on_patch = lambda u, n, body: "digest" if not body and len(u.data) == CHUNK else None
    summary = _agent(server, root).run()
    assert f.exists() and summary.failed == 1 and "digest-mismatch" in str(summary.files[0].reason)
    assert len(station.uploads) == 2


def test_too_many_uploads_waits_as_retry_after_says(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", b"a")
    station.on_create = lambda n: (429, {"Retry-After": "7"}) if n == 1 else None
    sleeps: list[float] = []
    summary = _agent(server, root, sleeps).run()
    assert sleeps == [7.0] and summary.released == 1


def test_a_server_briefly_unavailable_is_retried(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", b"a")
    station.on_create = lambda n: (503, {}) if n <= 2 else None
    sleeps: list[float] = []
    summary = _agent(server, root, sleeps).run()
    assert sleeps == [1.0, 2.0] and summary.released == 1


def test_too_large_is_held(tmp_path: Path, station: FakeStation, server: str) -> None:
    root = tmp_path / "dock"
    big = _old(root / "big.mp4", _data(100))
    small = _old(root / "small.mp4", _data(10))
    station.register_answer = {**station.register_answer, "max_upload_bytes": 50}
    summary = _agent(server, root).run()
    assert big.exists() and not small.exists()
    assert {f.path: f.state for f in summary.files} == {"big.mp4": "held", "small.mp4": "released"}


def test_already_archived_is_freed_only_on_have(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", b"a")
    station.on_create = lambda n: (409, {})
    summary = _agent(server, root).run()
    assert f.exists() and summary.files[0].state == "received" and summary.ok


def test_a_stopped_run_resumes_the_same_upload(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    size = 5 * CHUNK
    _old(root / "a.mp4", _data(size))
    stop = threading.Event()
    station.on_patch = lambda u, n, body: stop.set() if n == 2 and body else None
    first = _agent(server, root).run(stop=stop)
    assert first.files[0].state == "sending" and first.waiting == 1
    state = json.loads((root / ".evidence-push.json").read_text())["files"]["a.mp4"]
    assert state["upload"].endswith("/uploads/u1") and state["state"] == "uploading"
    station.on_patch = lambda u, n, body: None
    second = _agent(server, root).run()
    assert second.released == 1 and len(station.uploads) == 1
    assert second.bytes_sent == size - 2 * CHUNK and second.bytes_resent == 0


def test_concurrency_is_bounded(tmp_path: Path, station: FakeStation, server: str) -> None:
    root = tmp_path / "dock"
    for i in range(6):
        _old(root / f"BWC-{i}" / "a.mp4", _data(2 * CHUNK, seed=i))
    gate = threading.Barrier(2, timeout=10)

    def meet(u: Upload, n: int, body: bytes) -> None:
        if not body and n <= 2:
            gate.wait()  # two PATCHes in flight at once: the pool really runs two

    station.on_patch = meet
    summary = _agent(server, root, concurrency=2).run()
    assert summary.released == 6 and station.most_active == 2


def test_a_refused_token_stops_with_a_clear_error(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", b"a")
    with pytest.raises(tus.AuthRefused, match="401"):
        _agent(server, root, token="wrong").run()
    assert f.exists()


def test_a_token_revoked_mid_upload_stops_the_agent(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", _data(3 * CHUNK))

    def revoke(u: Upload, n: int, body: bytes) -> None:
        if n == 1 and body:
            station.token = "revoked"

    station.on_patch = revoke
    with pytest.raises(tus.AuthRefused, match="revoked"):
        _agent(server, root).run()
    assert f.exists() and station.patches == 1 and station.count("PATCH") == 2


def test_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", b"a")
    sleeps: list[float] = []
    with pytest.raises(tus.Unreachable, match="cannot reach"):
        _agent("http://127.0.0.1:9", root, sleeps).run()
    assert sleeps == [1.0, 2.0, 4.0, 8.0]


def _ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: what a county's own CA gives."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("test CA")).issuer_name(name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def test_https_with_the_agencys_ca_file(tmp_path: Path, station: FakeStation) -> None:
    ca_file, cert_file, key_file = _ca_and_server_cert(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    root = tmp_path / "dock"
    f = _old(root / "a.mp4", _data(2 * CHUNK))
    for url in station.serve(tls):
        opts = push.PushOptions("DOCK-07", root, IGNORE, 2.0, poll_s=0.01)
        untrusted = tus.DockClient(url, "DOCK-07", TOKEN)  # the system's CAs know no such CA
        with pytest.raises(tus.Unreachable, match="CERTIFICATE_VERIFY_FAILED"):
            push.Agent(
                untrusted, opts, backoff=transfer.Backoff(attempts=0, sleep=lambda s: None)
            ).run()
        assert f.exists()
        client = tus.DockClient(url, "DOCK-07", TOKEN, cacert=ca_file)
        assert push.Agent(client, opts).run().released == 1
    assert not f.exists()


# ------------------------------------------------------------------------------- the CLI


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVIDENCE_", "PREFECT_"))}
    env["HOME"] = str(tmp_path / "home")  # a station PC: no EVIDENCE_HOME, no catalog
    return env


def _cli(server: str, root: Path, tmp_path: Path, *more: str) -> list[str]:
    token = tmp_path / "dock.token"
    token.write_text(TOKEN + "\n")
    return [sys.executable, "-m", "interfaces.cli", "dock", "push", "--server", server,
            "--token-file", str(token), "--station", "DOCK-07", "--stable-s", "1", *more, str(root)]  # fmt: skip


def test_cli_survives_sigkill_and_resumes(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    size = 6 * CHUNK + 3
    _old(root / "BWC-1" / "a.mp4", _data(size))
    agent: list[subprocess.Popen[str]] = []

    def kill(u: Upload, n: int, body: bytes) -> None:
        if n == 2 and body:  # the second chunk is stored: the agent dies before the answer
            os.kill(agent[0].pid, signal.SIGKILL)

    station.on_patch = kill
    agent.append(subprocess.Popen(_cli(server, root, tmp_path, "--json"), env=_cli_env(tmp_path), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))  # fmt: skip
    agent[0].communicate(timeout=60)
    assert agent[0].returncode == -signal.SIGKILL
    station.on_patch = lambda u, n, body: None
    done = subprocess.run(_cli(server, root, tmp_path, "--json"), env=_cli_env(tmp_path),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary) == {"uploaded", "skipped_present", "released", "held", "failed", "waiting",
                            "bytes_sent", "bytes_resent", "files"}  # fmt: skip
    assert summary["released"] == 1 and summary["bytes_sent"] == size - 2 * CHUNK
    assert summary["files"] == [{"path": "BWC-1/a.mp4", "sha256": hashlib.sha256(_data(size)).hexdigest(),
                                 "state": "released", "reason": summary["files"][0]["reason"]}]  # fmt: skip
    # The same upload, resumed: the state saved before the kill may lack its URL (saves are
    # at most every 2 s), and asking to create it again answers the open one.
    assert len(station.uploads) == 1 and station.count("POST", "/uploads") <= 2
    assert (root / ".ingested" / "BWC-1" / "a.mp4").exists()
    assert not (tmp_path / "home" / ".local").exists()  # no evidence home was made


def test_cli_refused_token_is_one_clean_line_exit_2(
    tmp_path: Path, station: FakeStation, server: str
) -> None:
    root = tmp_path / "dock"
    _old(root / "a.mp4", b"a")
    station.token = "another"
    done = subprocess.run(
        _cli(server, root, tmp_path),
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "401" in done.stderr and "token" in done.stderr and "Traceback" not in done.stderr
    assert (root / "a.mp4").exists()


@pytest.mark.parametrize(
    ("more", "message"),
    [(["--limit-rate", "fast"], "not a rate"), (["--concurrency", "0"], "concurrency")],
)
def test_cli_bad_options_exit_2(tmp_path: Path, more: list[str], message: str) -> None:
    root = tmp_path / "dock"
    root.mkdir()
    done = subprocess.run(_cli("http://127.0.0.1:9", root, tmp_path, *more), env=_cli_env(tmp_path),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_cli_plain_lines_and_summary(tmp_path: Path, station: FakeStation, server: str) -> None:
    root = tmp_path / "dock"
    _old(root / "BWC-1" / "a.mp4", b"a")
    done = subprocess.run(
        _cli(server, root, tmp_path),
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "released  BWC-1/a.mp4" in done.stdout
    assert "1 file uploaded" in done.stdout and "1 released" in done.stdout
