"""The station API under ``/api/v1/dock/{station}/`` (docs/station-api.md): register,
keepalive, time, "do you have these?", and uploads by the tus 1.0.0 protocol (core,
creation, checksum, termination).

Only HTTP is here: headers in, headers out. What a request does is a use case of
``pipeline.uploads.presence`` (tokens, keepalive, time) or ``pipeline.uploads.usecases``
(uploads); the bytes of a PATCH are handed to it in pieces of about a megabyte from a
worker thread, so hashing and writing run beside the event loop that reads the socket.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from interfaces.web.deps import instance_of
from interfaces.web.errors import TUS_VERSION, BadRequest
from pipeline.errors import UploadRefused
from pipeline.instance import Instance
from pipeline.models import Station, plain
from pipeline.uploads import presence
from pipeline.uploads import usecases as dock
from pipeline.uploads.receive import ALGORITHMS, Receiver

router = APIRouter(prefix="/api/v1/dock/{station_id}", tags=["station API 采集站接口"])

#: Bytes handed to the worker thread at once: few enough thread hops per gigabyte, little
#: enough memory per upload.
PIECE = 1 << 20
#: Pieces the event loop may read ahead of the worker (memory per upload: about 4 MiB).
READ_AHEAD = 4
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}


def receiver_of(request: Request) -> Receiver:
    receiver: Receiver = request.app.state.receiver
    return receiver


def address_of(request: Request) -> str:
    return request.client.host if request.client else ""


def station_of(request: Request, station_id: str) -> Station:
    """The push station the bearer token authenticates (StationTokenRefused, 401, or
    StationForbidden, 403, with an alert in the custody log)."""
    given = request.headers.get("authorization", "")
    token = given[7:].strip() if given[:7].lower() == "bearer " else ""
    return presence.authenticate(
        instance_of(request), receiver_of(request), token, station_id, address_of(request)
    )


StationDep = Annotated[Station, Depends(station_of)]


def _tus(request: Request) -> None:
    """A tus request must speak our version (412, with the versions we do speak)."""
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise UploadRefused(
            request.path_params.get("station_id", ""),
            f"需要 Tus-Resumable: {TUS_VERSION} (tus 1.0.0 only)",
        )


# ------------------------------------------------------------- register, keepalive, time


class Recorder(BaseModel):
    serial: str = Field("", max_length=200)
    officer_number: str = Field("", max_length=200)
    unit_number: str = Field("", max_length=200)


class Report(BaseModel):
    software_version: str = Field("", max_length=100)
    free_disk_bytes: int | None = Field(None, ge=0)
    queue_length: int | None = Field(None, ge=0)
    recorders: list[Recorder] = Field(default_factory=list, max_length=200)

    def domain(self) -> presence.StationReport:
        return presence.StationReport(
            self.software_version,
            self.free_disk_bytes,
            self.queue_length,
            tuple(r.model_dump() for r in self.recorders),
        )


@router.post("/register")
def register(request: Request, station: StationDep, report: Report) -> Any:
    """A station starting up: its state, and the server's clock and limits."""
    welcome = presence.keepalive(
        instance_of(request), station, report.domain(), register=True, address=address_of(request)
    )
    return plain(welcome)


@router.post("/keepalive")
def keepalive(request: Request, station: StationDep, report: Report) -> Any:
    """Every ``keepalive_s``: the station is online, with this much disk and queue."""
    welcome = presence.keepalive(
        instance_of(request), station, report.domain(), address=address_of(request)
    )
    return plain(welcome)


@router.get("/time")
def server_time(request: Request, station: StationDep) -> Any:
    """The server's clock, to set the recorders by."""
    return plain(presence.server_time(instance_of(request)))


class DriftIn(BaseModel):
    serial: str = Field(min_length=1, max_length=200)
    offset_s: float = Field(ge=-10 * 365 * 86400, le=10 * 365 * 86400)
    observed_at: datetime


class Drifts(BaseModel):
    drifts: list[DriftIn] = Field(max_length=1000)


@router.post("/time")
def report_drift(request: Request, station: StationDep, body: Drifts) -> Any:
    """The recorder clocks the station saw when it set them (positive: fast)."""
    for d in body.drifts:
        if d.observed_at.tzinfo is None:
            raise BadRequest("observed_at needs its zone (Z or +08:00)")
    drifts = [presence.Drift(d.serial, d.offset_s, d.observed_at) for d in body.drifts]
    return plain(presence.report_drift(instance_of(request), station, drifts))


class Digests(BaseModel):
    sha256: list[str] = Field(max_length=presence.MAX_DIGESTS)


@router.post("/have")
def have(request: Request, station: StationDep, body: Digests) -> Any:
    """Which of these digests the archive lacks: only those are sent."""
    return plain(dock.which_missing(instance_of(request), station, body.sha256))


class UploadIds(BaseModel):
    uploads: list[str] = Field(max_length=presence.MAX_DIGESTS)


@router.post("/status")
def statuses(request: Request, station: StationDep, body: UploadIds) -> Any:
    """Where each upload stands: a station frees a file only once it says ``verified``."""
    found = dock.upload_statuses(
        instance_of(request), receiver_of(request), station, body.uploads, address_of(request)
    )
    return {"uploads": plain(found)}


# -------------------------------------------------------------------------------- tus


@router.options("/uploads")
def tus_options(request: Request) -> Response:
    """What the server speaks (tus discovery); no token needed."""
    settings = instance_of(request).settings
    return Response(
        status_code=204,
        headers={
            **TUS_HEADERS,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,checksum,termination",
            "Tus-Checksum-Algorithm": ",".join(ALGORITHMS),
            "Tus-Max-Size": str(settings.dock.max_upload_bytes),
        },
    )


def parse_metadata(station_id: str, header: str) -> dict[str, str]:
    """``Upload-Metadata``: ``key base64,key base64`` (tus creation)."""
    found: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise UploadRefused(
                station_id, f"Upload-Metadata: {key[:40]!r} is not base64 of UTF-8 text"
            ) from None
    return found


@router.post("/uploads", status_code=201)
def create_upload(
    request: Request,
    station: StationDep,
    upload_length: Annotated[int, Header(ge=0)],
    upload_metadata: Annotated[str, Header()] = "",
) -> Response:
    """tus creation: a new upload (or the station's open one of the same bytes and path)."""
    _tus(request)
    status = dock.create_upload(
        instance_of(request),
        receiver_of(request),
        station,
        upload_length,
        parse_metadata(station.id, upload_metadata),
        address_of(request),
    )
    return Response(
        status_code=201,
        headers={
            **TUS_HEADERS,
            "Location": f"/api/v1/dock/{station.id}/uploads/{status.upload}",
            "Upload-Offset": str(status.offset),
        },
    )


@router.head("/uploads/{upload_id}")
def upload_offset(request: Request, station: StationDep, upload_id: str) -> Response:
    """tus core: the offset to resume from."""
    _tus(request)
    status = dock.upload_offset(instance_of(request), receiver_of(request), station, upload_id)
    return Response(
        status_code=200,
        headers={
            **TUS_HEADERS,
            "Upload-Offset": str(status.offset),
            "Upload-Length": str(status.size),
            "Cache-Control": "no-store",
        },
    )


def parse_checksum(station_id: str, header: str | None) -> tuple[str, bytes] | None:
    """``Upload-Checksum: <algorithm> <base64 of the digest>`` (tus checksum)."""
    if not header:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm not in ALGORITHMS:
        raise UploadRefused(
            station_id, f"不支持的校验算法 Upload-Checksum algorithm {algorithm[:20]!r}"
        )
    try:
        return algorithm, base64.b64decode(value.strip(), validate=True)
    except binascii.Error:
        raise UploadRefused(station_id, "Upload-Checksum is not base64") from None


@router.patch("/uploads/{upload_id}")
async def upload_chunk(
    request: Request,
    station: StationDep,
    upload_id: str,
    upload_offset: Annotated[int, Header(ge=0)],
    upload_checksum: Annotated[str | None, Header()] = None,
) -> Response:
    """tus core: one chunk of bytes at ``Upload-Offset``, taken whole or not at all."""
    _tus(request)
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise UploadRefused(station.id, "Content-Type must be application/offset+octet-stream")
    checksum = parse_checksum(station.id, upload_checksum)
    instance: Instance = instance_of(request)
    # The event loop reads the socket ahead (a few pieces, bounded) while the worker thread
    # hashes and writes the pieces before: the two overlap instead of taking turns.
    send, pieces = anyio.create_memory_object_stream[bytes | bytearray](READ_AHEAD)
    cut: list[BaseException] = []

    async def read() -> None:
        async with send:
            buffer = bytearray()
            try:
                async for data in request.stream():
                    buffer += data
                    if len(buffer) >= PIECE:
                        await send.send(buffer)
                        buffer = bytearray()
            except Exception as exc:  # the connection was cut: so is the chunk
                cut.append(exc)
                return
            if buffer:
                await send.send(buffer)

    def body() -> Iterator[bytes | bytearray]:
        while True:
            try:
                yield anyio.from_thread.run(pieces.receive)
            except anyio.EndOfStream:
                if cut:
                    raise cut[0] from None
                return

    reader = asyncio.ensure_future(read())
    try:
        status = await run_in_threadpool(
            dock.receive_chunk,
            instance,
            receiver_of(request),
            station,
            upload_id,
            upload_offset,
            checksum,
            body(),
            address_of(request),
        )
    finally:
        pieces.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    return Response(status_code=204, headers={**TUS_HEADERS, "Upload-Offset": str(status.offset)})


@router.delete("/uploads/{upload_id}", status_code=204)
def terminate(request: Request, station: StationDep, upload_id: str) -> Response:
    """tus termination: the station gives the upload up."""
    _tus(request)
    dock.terminate_upload(instance_of(request), receiver_of(request), station, upload_id)
    return Response(status_code=204, headers=TUS_HEADERS)


@router.get("/uploads/{upload_id}")
def upload_status(request: Request, station: StationDep, upload_id: str) -> Any:
    """Where the upload stands (receiving, received, verified, held, failed, terminated)."""
    return plain(
        dock.upload_status(
            instance_of(request), receiver_of(request), station, upload_id, address_of(request)
        )
    )
