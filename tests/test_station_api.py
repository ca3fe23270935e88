"""The station API over real HTTP on loopback (uvicorn in a thread of the test): tokens,
register and keepalive, time, "do you have these?", tus uploads with their checksums, every
refusal with its status and its custody alert, and an upload through the same ingest as a
dock file (docs/station-api.md)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from docks.sweep import sweep_station
from interfaces.web.app import create_app
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.catalog.jobs import new_owner
from pipeline.catalog.schema import clock_reports, custody_events, dock_uploads, media
from pipeline.custody import log as custody
from pipeline.ingest.steps import IngestContext
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, EventKind, Officer
from pipeline.registry import usecases as registry
from pipeline.settings import Settings
from pipeline.storage.local import LocalStore
from pipeline.uploads import presence
from pipeline.uploads import usecases as dock
from pipeline.uploads.receive import Receiver
from tests.conftest import free_port, make_settings

STATION = "DOCK-07"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Served:
    base: str
    port: int
    token: str
    instance: Instance
    clock: Clock
    receiver: Receiver

    def call(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Authorization": f"Bearer {self.token if token is None else token}"}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        conn.request(method, f"/api/v1/dock/{STATION}{path}", body=body, headers=sent)
        answer = conn.getresponse()
        answer.data = answer.read()  # type: ignore[attr-defined]
        conn.close()
        return answer

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.call(method, path, body)
        assert answer.status == 200, answer.data  # type: ignore[attr-defined]
        return json.loads(answer.data)  # type: ignore[attr-defined]


def _serve(instance: Instance) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = free_port()
    app = create_app(instance)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    server.app = app  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return server, thread, port


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def served(tmp_path: Path, clock: Clock, request: pytest.FixtureRequest) -> Iterator[Served]:
    catalog_url = ""
    if os.environ.get("EVIDENCE_TEST_CATALOG") == "postgresql":
        catalog_url = str(request.getfixturevalue("pg_url"))
    settings = make_settings(
        tmp_path / "home",
        dock={"max_concurrent_uploads": 2},
        devices={"unknown": "accept"},
        catalog={"url": catalog_url},
    )
    from pipeline.catalog import open_catalog

    catalog = open_catalog(settings.catalog_url)
    instance = Instance(settings, catalog, clock=clock, actor="A001")
    with catalog.begin() as conn:
        registry_rows.save_officer(conn, Officer("A001", "管理员", "1100"), clock.now)
    registry.add_station(instance, STATION, None, name="城关中队", pushes=True)
    token = presence.issue_token(instance, STATION).token
    server, thread, port = _serve(instance)
    try:
        yield Served(
            f"http://127.0.0.1:{port}", port, token, instance, clock, server.app.state.receiver
        )  # type: ignore[attr-defined]
    finally:
        server.should_exit = True
        thread.join(10)
        catalog.dispose()


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(
    served: Served, data: bytes, path: str = "BWC-0017/20261130_093500.mp4", **more: str
) -> str:
    meta = {"sha256": hashlib.sha256(data).hexdigest(), "path": path, "mtime": "1796000000", **more}
    answer = served.call(
        "POST",
        "/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": _meta(**meta),
        },
    )
    assert answer.status == 201, answer.data  # type: ignore[attr-defined]
    assert answer.getheader("Tus-Resumable") == "1.0.0"
    location = answer.getheader("Location")
    assert location and location.startswith(f"/api/v1/dock/{STATION}/uploads/")
    return location.rsplit("/", 1)[1]


def _patch(
    served: Served, upload: str, offset: int, data: bytes, *, checksum: bytes | None = None
) -> http.client.HTTPResponse:
    digest = checksum if checksum is not None else hashlib.sha256(data).digest()
    return served.call(
        "PATCH",
        f"/uploads/{upload}",
        data,
        headers={
            "Tus-Resumable": "1.0.0",
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha256 {base64.b64encode(digest).decode()}",
        },
    )


def _offset(served: Served, upload: str) -> int:
    answer = served.call("HEAD", f"/uploads/{upload}", headers={"Tus-Resumable": "1.0.0"})
    assert answer.status == 200
    return int(answer.getheader("Upload-Offset") or -1)


def _events(catalog: Catalog) -> list[custody.CustodyEvent]:
    with catalog.read() as conn:
        return list(custody.events(conn))


def _alerts(catalog: Catalog, code: str) -> list[custody.CustodyEvent]:
    return [
        e for e in _events(catalog) if e.kind is EventKind.ALERT and e.details.get("code") == code
    ]


def _ingest(served: Served) -> None:
    settings = served.instance.settings
    ctx = IngestContext(
        served.instance.catalog, LocalStore(settings.archive_dir, settings.ingest.block_size),
        settings, new_owner(), clock=served.clock,
    )  # fmt: skip
    station = next(s for s in registry.list_stations(served.instance) if s.id == STATION)
    sweep_station(ctx, station)


# ------------------------------------------------------------------------------- tests


def test_discovery_says_what_the_server_speaks(served: Served) -> None:
    answer = served.call("OPTIONS", "/uploads", token="")
    assert answer.status == 204
    assert answer.getheader("Tus-Version") == "1.0.0"
    assert set((answer.getheader("Tus-Extension") or "").split(",")) == {
        "creation",
        "checksum",
        "termination",
    }
    assert "sha256" in (answer.getheader("Tus-Checksum-Algorithm") or "")


def test_register_and_keepalive_put_the_station_online_then_silence_is_an_alert_once(
    served: Served,
) -> None:
    report = {"software_version": "2.1.0", "free_disk_bytes": 512_000_000_000, "queue_length": 3,
              "recorders": [{"serial": "BWC-0017", "officer_number": "1023", "unit_number": "CG01"}]}  # fmt: skip
    welcome = served.json("POST", "/register", report)
    assert welcome["station"] == STATION and welcome["max_concurrent_uploads"] == 2
    assert welcome["server_time"] == "2026-12-01T08:00:00Z"
    (state,) = [s for s in presence.station_states(served.instance) if s.station.id == STATION]
    assert state.online is True and state.software_version == "2.1.0" and state.queue_length == 3
    assert state.recorders[0]["officer_number"] == "1023" and state.tokens == 1

    served.clock.now += timedelta(hours=3)  # past dock.silent_after_s (2 h)
    (state,) = [s for s in presence.station_states(served.instance) if s.station.id == STATION]
    assert state.online is False
    assert presence.alert_silent_stations(served.instance) == (STATION,)
    assert presence.alert_silent_stations(served.instance) == (), "one alert per silence"
    assert len(_alerts(served.instance.catalog, "station-silent")) == 1

    served.json("POST", "/keepalive", {"queue_length": 0})
    (state,) = [s for s in presence.station_states(served.instance) if s.station.id == STATION]
    assert state.online is True and state.queue_length == 0


def test_time_answers_the_server_clock_and_keeps_the_drift_seen_per_device(served: Served) -> None:
    said = served.json("GET", "/time")
    assert said["epoch_ms"] == int(served.clock.now.timestamp() * 1000)
    done = served.json("POST", "/time", {"drifts": [
        {"serial": "BWC-0017", "offset_s": 93.5, "observed_at": "2026-12-01T07:59:00+08:00"},
        {"serial": "BWC-0018", "offset_s": -4, "observed_at": "2026-12-01T07:59:30Z"}]})  # fmt: skip
    assert done == {"recorded": 2}
    with served.instance.catalog.read() as conn:
        rows = {r.device_serial: r.offset_s for r in conn.execute(select(clock_reports))}
    assert rows == {"BWC-0017": 93.5, "BWC-0018": -4.0}


def test_an_upload_in_checked_chunks_lands_in_the_intake_and_is_ingested_like_a_dock_file(
    served: Served, clips: dict[str, Path]
) -> None:
    data = clips["video"].read_bytes()
    have = served.json("POST", "/have", {"sha256": [hashlib.sha256(data).hexdigest()]})
    assert have["missing"] == [hashlib.sha256(data).hexdigest()] and have["present"] == []
    upload = _create(served, data, serial="BWC-0017", officer="1023", unit="CG01",
                     docked_at="2026-12-01T07:30:00+08:00")  # fmt: skip
    third = len(data) // 3
    for start in (0, third, 2 * third):
        end = len(data) if start == 2 * third else start + third
        answer = _patch(served, upload, start, data[start:end])
        assert answer.status == 204, answer.data  # type: ignore[attr-defined]
        assert answer.getheader("Upload-Offset") == str(end)
    status = served.json("GET", f"/uploads/{upload}")
    assert status["state"] == "received" and status["offset"] == len(data)
    placed = served.instance.settings.intake_dir / STATION / "BWC-0017" / "20261130_093500.mp4"
    assert placed.read_bytes() == data and placed.stat().st_mtime == 1796000000
    assert not list(served.instance.settings.uploads_dir.iterdir()), "no part file left"
    (received,) = [
        e for e in _events(served.instance.catalog) if e.kind is EventKind.UPLOAD_RECEIVED
    ]
    assert received.details["claim"] == {"serial": "BWC-0017", "officer": "1023", "unit": "CG01"}

    _ingest(served)
    status = served.json("POST", "/status", {"uploads": [upload]})["uploads"][0]
    assert status["state"] == "verified" and status["media_id"] is not None
    assert not placed.exists(), "the intake copy goes once the stored copy is verified"
    with served.instance.catalog.read() as conn:
        row = conn.execute(
            select(media).where(media.c.sha256 == hashlib.sha256(data).hexdigest())
        ).one()
    assert row.id_sources["station"] == "BWC-0017" and row.station_id == STATION
    # The docking time the station read off the recorder is the row's, not the ingest's
    # (upload timeliness counts it), and the delay from the recording's end to it.
    docked = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert row.docked_at == docked and row.docked_at < row.ingested_at
    assert row.dock_delay_s == round(
        (docked - (row.recorded_end or row.recorded_start)).total_seconds(), 3
    )
    assert served.json("POST", "/have", {"sha256": [row.sha256]})["present"] == [row.sha256]
    again = served.call("POST", "/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
                        "Upload-Metadata": _meta(sha256=row.sha256, path="BWC-0017/again.mp4", mtime="1")})  # fmt: skip
    assert again.status == 409 and json.loads(again.data)["error"] == "already-archived"  # type: ignore[attr-defined]


def test_the_station_claim_that_disagrees_with_the_assignment_is_flagged(
    served: Served, clips: dict[str, Path]
) -> None:
    inst = served.instance
    with inst.catalog.begin() as conn:
        registry_rows.save_officer(conn, Officer("1023", "张伟", "11010012345"), served.clock.now)
    registry.add_device(inst, Device("BWC-0017", DeviceKind.BODY_WORN))
    registry.assign_device(inst, "BWC-0017", "1023", datetime(2026, 1, 1, tzinfo=UTC))
    data = clips["photo"].read_bytes()
    upload = _create(
        served, data, path="photos/IMG_20261130_093500.jpg", serial="BWC-0017", officer="2046"
    )
    assert _patch(served, upload, 0, data).status == 204
    _ingest(served)
    with inst.catalog.read() as conn:
        row = conn.execute(
            select(media).where(media.c.sha256 == hashlib.sha256(data).hexdigest())
        ).one()
    assert row.device_serial == "BWC-0017" and row.officer_id == "1023"
    said = [f for f in row.flags if f["code"] == "officer-disagreement"]
    assert said and "2046" in said[0]["message"], row.flags


def test_a_corrupted_chunk_is_refused_kept_out_and_alerted_then_sent_again(served: Served) -> None:
    data = os.urandom(300_000)
    upload = _create(served, data, path="BWC-0017/a.mp4")
    assert _patch(served, upload, 0, data[:100_000]).status == 204
    bad = bytearray(data[100_000:200_000])
    bad[5] ^= 0x40
    answer = _patch(
        served, upload, 100_000, bytes(bad), checksum=hashlib.sha256(data[100_000:200_000]).digest()
    )
    assert answer.status == 460 and json.loads(answer.data)["error"] == "checksum-mismatch"  # type: ignore[attr-defined]
    assert _offset(served, upload) == 100_000
    assert len(_alerts(served.instance.catalog, "checksum-mismatch")) == 1
    assert _patch(served, upload, 100_000, data[100_000:]).status == 204
    assert served.json("GET", f"/uploads/{upload}")["state"] == "received"


def test_bytes_that_are_not_the_declared_file_are_dropped_and_nothing_published(
    served: Served,
) -> None:
    data = os.urandom(50_000)
    meta = _meta(
        sha256=hashlib.sha256(b"something else").hexdigest(), path="BWC-0017/b.mp4", mtime="1"
    )
    created = served.call(
        "POST",
        "/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta,
        },
    )
    upload = (created.getheader("Location") or "").rsplit("/", 1)[1]
    answer = _patch(served, upload, 0, data)
    assert answer.status == 460 and json.loads(answer.data)["error"] == "digest-mismatch"  # type: ignore[attr-defined]
    assert served.json("GET", f"/uploads/{upload}")["state"] == "failed"
    assert not any((served.instance.settings.intake_dir / STATION).rglob("*.mp4"))
    assert not list(served.instance.settings.uploads_dir.iterdir())
    assert len(_alerts(served.instance.catalog, "digest-mismatch")) == 1
    assert _patch(served, upload, len(data), b"").status == 410


def test_tokens_unknown_revoked_or_of_another_station_are_refused_and_alerted(
    served: Served, tmp_path: Path
) -> None:
    inst = served.instance
    registry.add_station(inst, "DOCK-08", None, pushes=True)
    other = presence.issue_token(inst, "DOCK-08").token
    unknown = served.call("POST", "/keepalive", {}, token="evst_not-a-token")
    assert unknown.status == 401 and unknown.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert json.loads(unknown.data)["error"] == "station-token-refused"  # type: ignore[attr-defined]
    served.call("POST", "/keepalive", {}, token="evst_not-a-token")
    assert len(_alerts(inst.catalog, "station-token-refused")) == 1, "one alert a minute per origin"
    forbidden = served.call("POST", "/keepalive", {}, token=other)
    assert forbidden.status == 403 and "DOCK-08" in json.loads(forbidden.data)["message"]  # type: ignore[attr-defined]
    assert len(_alerts(inst.catalog, "station-forbidden")) == 1
    assert served.call("POST", "/keepalive", {}).status == 200
    assert presence.revoke_tokens(inst, STATION).revoked == 1
    assert served.call("POST", "/keepalive", {}).status == 401, "revoked: refused at once"
    assert served.call("POST", "/keepalive", {}, token="").status == 401


def test_another_stations_upload_is_not_this_stations_to_touch(served: Served) -> None:
    inst = served.instance
    registry.add_station(inst, "DOCK-08", None, pushes=True)
    data = b"x" * 1000
    created = dock.create_upload(inst, served.receiver, next(s for s in registry.list_stations(inst) if s.id == "DOCK-08"),
                                 len(data), {"sha256": hashlib.sha256(data).hexdigest(), "path": "R1/c.mp4", "mtime": "1"})  # fmt: skip
    answer = _patch(served, created.upload, 0, data)
    assert answer.status == 403
    assert served.call("GET", f"/uploads/{created.upload}").status == 403


def test_offsets_lengths_and_limits_are_enforced(served: Served) -> None:
    data = os.urandom(10_000)
    upload = _create(served, data, path="BWC-0017/d.mp4")
    wrong = _patch(served, upload, 500, data[:100])
    assert wrong.status == 409 and wrong.getheader("Upload-Offset") == "0"
    over = _patch(served, upload, 0, data + b"more")
    assert over.status == 413 and _offset(served, upload) == 0
    big = served.call("POST", "/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(1 << 40),
                      "Upload-Metadata": _meta(sha256="0" * 64, path="R/e.mp4", mtime="1")})  # fmt: skip
    assert (
        big.status == 413 and len(_alerts(served.instance.catalog, "upload-too-large")) == 2
    )  # the PATCH past the length, and this
    hidden = served.call("POST", "/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1",
                         "Upload-Metadata": _meta(sha256="1" * 64, path="../escape.mp4", mtime="1")})  # fmt: skip
    assert hidden.status == 400 and json.loads(hidden.data)["error"] == "upload-refused"  # type: ignore[attr-defined]
    no_tus = served.call("HEAD", f"/uploads/{upload}")
    assert no_tus.status == 400
    assert (
        served.call("DELETE", f"/uploads/{upload}", headers={"Tus-Resumable": "1.0.0"}).status
        == 204
    )
    assert _patch(served, upload, 0, data).status == 410


def _open_patch(served: Served, upload: str, length: int) -> http.client.HTTPConnection:
    """A PATCH at offset 0 whose headers are sent, its body left to the caller."""
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.putrequest("PATCH", f"/api/v1/dock/{STATION}/uploads/{upload}")
    for k, v in {"Authorization": f"Bearer {served.token}", "Tus-Resumable": "1.0.0",
                 "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0",
                 "Content-Length": str(length)}.items():  # fmt: skip
        conn.putheader(k, v)
    conn.endheaders()
    return conn


def _slow_patch(served: Served, upload: str, data: bytes, release: threading.Event) -> int:
    """A PATCH whose body waits for ``release`` after its first byte: a chunk in flight."""
    conn = _open_patch(served, upload, len(data))
    conn.send(data[:1])
    release.wait(20)
    conn.send(data[1:])
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_station_sending_more_uploads_at_once_than_allowed_is_told_to_wait(
    served: Served,
) -> None:
    data = [os.urandom(1000) for _ in range(3)]
    uploads = [_create(served, d, path=f"BWC-0017/f{i}.mp4") for i, d in enumerate(data)]
    release = threading.Event()
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(_slow_patch(served, uploads[i], data[i], release))
        )
        for i in range(2)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while served.receiver.active(STATION) < 2:  # both chunks are in flight
        assert time.monotonic() < deadline, "the two slow chunks never started"
        time.sleep(0.01)
    third = _patch(served, uploads[2], 0, data[2])
    release.set()
    for t in threads:
        t.join()
    assert third.status == 429 and third.getheader("Retry-After")
    assert sorted(results) == [204, 204]
    assert _patch(served, uploads[2], 0, data[2]).status == 204


def test_a_chunk_cut_mid_stream_does_not_count_and_the_upload_resumes(served: Served) -> None:
    data = os.urandom(200_000)
    upload = _create(served, data, path="BWC-0017/g.mp4")
    conn = _open_patch(served, upload, len(data))
    conn.send(data[:120_000])
    conn.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
    conn.close()
    deadline = time.monotonic() + 10
    part = served.instance.settings.uploads_dir / f"{upload}.part"
    while time.monotonic() < deadline and _offset(served, upload) != 0:
        time.sleep(0.05)
    assert _offset(served, upload) == 0, "an unchecked, cut chunk does not count"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and part.stat().st_size:
        time.sleep(0.05)
    assert part.stat().st_size == 0, "and is cut off the part file"
    # The cut request's worker may still hold the upload a moment after cutting: 423 (busy)
    # is the answer a station retries on, as the agent does.
    deadline = time.monotonic() + 10
    answer = _patch(served, upload, 0, data)
    while answer.status == 423 and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = _patch(served, upload, 0, data)
    assert answer.status == 204


def test_a_restarted_server_resumes_an_upload_from_what_it_kept(
    tmp_path: Path, served: Served
) -> None:
    data = os.urandom(3_000_000)
    upload = _create(served, data, path="BWC-0017/h.mp4")
    assert _patch(served, upload, 0, data[:1_000_000]).status == 204
    # A new server process: a new app with no running hash in memory.
    server, thread, port = _serve(served.instance)
    try:
        again = replace(served, port=port, receiver=server.app.state.receiver)  # type: ignore[attr-defined]
        assert _offset(again, upload) == 1_000_000
        assert _patch(again, upload, 1_000_000, data[1_000_000:]).status == 204
        assert again.json("GET", f"/uploads/{upload}")["state"] == "received"
    finally:
        server.should_exit = True
        thread.join(10)
    with served.instance.catalog.read() as conn:
        (state,) = conn.execute(
            select(dock_uploads.c.state).where(dock_uploads.c.id == upload)
        ).one()
    assert state == "received"


def test_token_commands_issue_once_store_hashed_and_list_shows_push_state(served: Served) -> None:
    inst = served.instance
    with inst.catalog.read() as conn:
        stored = [
            r
            for r in conn.execute(
                select(custody_events.c.details).where(custody_events.c.kind == "station_changed")
            )
        ]
    assert stored and served.token not in json.dumps(
        [r.details for r in stored], ensure_ascii=False
    )
    from pipeline.catalog.schema import station_tokens

    with inst.catalog.read() as conn:
        digests = [r.token_sha256 for r in conn.execute(select(station_tokens))]
    assert digests == [hashlib.sha256(served.token.encode()).hexdigest()]


def test_a_folder_station_gets_no_token(served: Served, tmp_path: Path) -> None:
    folder = tmp_path / "folder-dock"
    folder.mkdir()
    registry.add_station(served.instance, "DOCK-F", folder)
    from pipeline.errors import StationError

    with pytest.raises(StationError, match="not a push station"):
        presence.issue_token(served.instance, "DOCK-F")


def test_settings_have_the_dock_section(tmp_path: Path) -> None:
    s: Settings = make_settings(tmp_path / "h")
    assert s.dock.max_concurrent_uploads == 25 and s.dock.silent_after_s == 7200


def test_the_drift_a_station_saw_shows_with_the_device(served: Served) -> None:
    inst = served.instance
    registry.add_device(inst, Device("BWC-0017", DeviceKind.BODY_WORN))
    served.json(
        "POST",
        "/time",
        {
            "drifts": [
                {"serial": "BWC-0017", "offset_s": 12.5, "observed_at": "2026-12-01T08:00:00Z"}
            ]
        },
    )
    detail = registry.device_detail(inst, "BWC-0017")
    assert [(s, o) for s, o, _ in detail.clock_reports] == [(STATION, 12.5)]


def test_the_station_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from interfaces.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("EVIDENCE_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    added = runner.invoke(
        app, ["stations", "add", STATION, "--push", "--name", "城关中队", "--as", "A001"]
    )
    assert added.exit_code == 0 and "evidence stations token DOCK-07" in added.output, added.output
    assert (home / "intake" / STATION).is_dir()
    issued = runner.invoke(app, ["stations", "token", STATION, "--as", "A001"])
    assert (
        issued.exit_code == 0
        and issued.output.strip().startswith("evst_")
        and len(issued.output.split()) == 1
    )
    (listed,) = json.loads(runner.invoke(app, ["stations", "list", "--json"]).output)
    assert listed["pushes"] is True and listed["tokens"] == 1 and listed["online"] is False
    assert "从未连接 never seen" in runner.invoke(app, ["stations", "list"]).output
    status = runner.invoke(app, ["status", "--json"])
    (queued,) = json.loads(status.output)["stations"]
    assert queued["pushes"] is True and queued["online"] is False
    revoked = runner.invoke(
        app, ["stations", "token", STATION, "--revoke", "--json", "--as", "A001"]
    )
    assert json.loads(revoked.output) == {"station_id": STATION, "revoked": 1}
    assert json.loads(runner.invoke(app, ["stations", "list", "--json"]).output)[0]["tokens"] == 0
    no_root = runner.invoke(app, ["stations", "add", "DOCK-X", "--as", "A001"])
    assert "--root" in str(no_root.exception), "(main() turns it into one line and exit 2)"


def test_an_agent_that_lost_its_state_gets_its_upload_back_not_a_new_one(served: Served) -> None:
    data = os.urandom(40_000)
    first = _create(served, data, path="BWC-0017/k.mp4")
    assert _patch(served, first, 0, data[:10_000]).status == 204
    again = _create(served, data, path="BWC-0017/k.mp4")
    assert again == first and _offset(served, again) == 10_000
    assert _patch(served, first, 10_000, data[10_000:]).status == 204
    assert _create(served, data, path="BWC-0017/k.mp4") == first, "received, waiting for ingest"


def test_a_chunk_from_a_stale_read_of_the_upload_cuts_nothing_off(served: Served) -> None:
    """Two requests of one upload, the second read before the first committed: under the
    upload's lock the offset is read again, so the second is refused, not written at 0."""
    from pipeline.catalog import uploads as upload_rows
    from pipeline.errors import OffsetMismatch

    data = os.urandom(20_000)
    upload = _create(served, data, path="BWC-0017/m.mp4")
    with served.instance.catalog.read() as conn:
        stale = upload_rows.upload(conn, upload)
    assert stale is not None and stale.received == 0
    assert _patch(served, upload, 0, data[:10_000]).status == 204
    with pytest.raises(OffsetMismatch), served.receiver.chunk(stale, 0, None, lambda: 10_000):
        pass
    assert (served.instance.settings.uploads_dir / f"{upload}.part").stat().st_size == 10_000
    assert _patch(served, upload, 10_000, data[10_000:]).status == 204
