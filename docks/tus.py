"""The station side of the station API (docs/station-api.md): a small tus 1.0.0 client.

tus core with the creation, checksum and termination extensions, plus the JSON calls of the
station API (register, keepalive, time, have, status), over the standard library's
``http.client`` so a station PC needs nothing beyond this package. Each thread keeps one
persistent connection (an upload worker is one thread); every request carries the station's
bearer token.

The server's refusals come back as the typed errors below, each naming what it concerns. This
module only says what the server answered; acting on it (the resumable loop, the waits, the
bandwidth cap) is docks.transfer's.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

from pipeline.errors import EvidenceError

TUS_VERSION = "1.0.0"
#: A PATCH body goes out in pieces this big: the rate cap and the count of bytes sent (what a
#: fault cost) follow the wire closely, and only one chunk is ever held in memory.
PIECE_BYTES = 64 << 10
#: What ``have`` takes at most per request.
HAVE_BATCH = 1000


# ------------------------------------------------------------------------------- errors


class DockError(EvidenceError):
    """The server refused a request, or could not be reached. ``status`` is the HTTP status
    (None when no answer came), ``error`` the server's stable code."""

    code = "dock"

    def __init__(self, message: str, *, status: int | None = None, error: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class Unreachable(DockError):
    """No answer: refused, reset, timed out, TLS failed. Retried, then resumed from HEAD."""

    code = "dock-unreachable"


class AuthRefused(DockError):
    """401 (unknown or revoked token) or 403 (a token of another station): the agent stops."""

    code = "dock-auth"


class OffsetMismatch(DockError):
    code = "offset-mismatch"


class AlreadyArchived(DockError):
    code = "already-archived"


class UploadTooLarge(DockError):
    code = "upload-too-large"


class UploadBusy(DockError):
    code = "upload-busy"


class TooManyUploads(DockError):
    code = "too-many-uploads"

    def __init__(self, message: str, *, retry_after: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ChunkMismatch(DockError):
    """460 checksum-mismatch: one chunk arrived damaged; it is sent again."""

    code = "checksum-mismatch"


class DigestMismatch(DockError):
    """460 digest-mismatch: the whole file did not match its sha256; the upload is dropped."""

    code = "digest-mismatch"


class UploadGone(DockError):
    """404/410 for an upload: the server no longer has it (dropped, terminated, expired)."""

    code = "upload-gone"


_BY_CODE: dict[str, type[DockError]] = {
    c.code: c for c in (OffsetMismatch, AlreadyArchived, UploadTooLarge, UploadBusy, ChunkMismatch)
}
_BY_CODE[DigestMismatch.code] = DigestMismatch


# ------------------------------------------------------------------------ small helpers


def encode_metadata(values: Mapping[str, str | bytes]) -> str:
    """tus ``Upload-Metadata``: ``key base64,key base64`` (text values as UTF-8)."""
    pairs = []
    for key, value in values.items():
        if not key or any(c in key for c in " ,") or not key.isascii():
            raise ValueError(f"metadata key {key!r}: ASCII without spaces or commas")
        raw = value.encode("utf-8") if isinstance(value, str) else value
        pairs.append(f"{key} {base64.b64encode(raw).decode('ascii')}" if raw else key)
    return ",".join(pairs)


def decode_metadata(header: str) -> dict[str, bytes]:
    """The inverse of :func:`encode_metadata` (a key without a value maps to b"")."""
    found: dict[str, bytes] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        found[key] = base64.b64decode(value, validate=True) if value else b""
    return found


def chunk_checksum(chunk: bytes | memoryview) -> str:
    """The ``Upload-Checksum`` of one PATCH: algorithm, then base64 of the raw digest."""
    return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode("ascii")


class Limiter(Protocol):
    """A bandwidth cap (docks.transfer.TokenBucket): ``take(n)`` returns once ``n`` bytes
    may go out."""

    def take(self, n: int) -> None: ...


@dataclass(frozen=True)
class Have:
    missing: tuple[str, ...]
    present: tuple[str, ...]


@dataclass
class _Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            raise DockError(
                f"服务器应答无效 the server answered {self.status} with no JSON", status=self.status
            ) from None


# ------------------------------------------------------------------------------- client


class DockClient:
    """The station API of one server, for one station. Thread-safe: each thread gets its own
    persistent connection. ``bytes_sent`` counts PATCH body bytes that left this process."""

    def __init__(
        self,
        server: str,
        station: str,
        token: str,
        *,
        cacert: Path | None = None,
        timeout: float = 120.0,
        limiter: Limiter | None = None,
    ) -> None:
        parts = urlsplit(server if "://" in server else f"http://{server}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DockError(f"服务器地址无效 not an http(s) server URL: {server}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.base = f"{parts.path.rstrip('/')}/api/v1/dock/{quote(station, safe='')}/"
        self.station = station
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._token = token
        self._timeout = timeout
        self._limiter = limiter
        self._tls: ssl.SSLContext | None = None
        if self._https:
            try:
                self._tls = ssl.create_default_context(cafile=str(cacert) if cacert else None)
            except (OSError, ssl.SSLError) as exc:
                raise DockError(f"CA 证书不可用 CA file {cacert} unusable: {exc}") from exc
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.bytes_sent = 0

    # ---- connections

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and _closed_by_peer(conn):
            # The server ends idle keep-alive connections (uvicorn after 5 s): found out only
            # by a PATCH, it would cost a whole chunk sent into a closed socket.
            self._drop()
            conn = None
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._tls
                )
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def url(self, relative: str) -> str:
        return urljoin(self.origin + self.base, relative)

    def _path(self, url: str) -> str:
        parts = urlsplit(urljoin(self.origin + self.base, url))
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise DockError(f"上传地址不属于本服务器 upload URL {url} is not on {self.origin}")
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def _request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | memoryview | None = None,
        headers: Mapping[str, str] | None = None,
        on_piece: Callable[[int], None] | None = None,
        subject: str = "",
    ) -> _Answer:
        """One request on this thread's connection. A connection the server closed while
        idle fails on its first use: an idempotent request is sent again once at once."""
        path = self._path(url)
        sent = {"Authorization": f"Bearer {self._token}", "Tus-Resumable": TUS_VERSION}
        sent.update(headers or {})
        attempts = 2 if method in ("GET", "HEAD") or on_piece is None else 1
        for attempt in range(attempts):
            conn = self._connection()
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for key, value in sent.items():
                    conn.putheader(key, value)
                conn.putheader("Content-Length", str(len(body) if body is not None else 0))
                conn.endheaders()
                if body is not None:
                    try:
                        self._send_body(conn, memoryview(body), on_piece)
                    except OSError:
                        # A server refusing early (401, 413, 423) answers and closes before
                        # reading the body: its answer is still there to read.
                        if not _answered(conn):
                            raise
                response = conn.getresponse()
                answer = _Answer(response.status, response.headers, response.read())
                if response.will_close:
                    self._drop()
                return answer
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                idle_close = isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError)
                if attempt + 1 < attempts and idle_close:
                    continue
                what = f" ({subject})" if subject else ""
                raise Unreachable(
                    f"服务器无法连接 cannot reach {self.origin}{what}: {exc or type(exc).__name__}"
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _send_body(
        self,
        conn: http.client.HTTPConnection,
        body: memoryview,
        on_piece: Callable[[int], None] | None,
    ) -> None:
        if on_piece is None:  # a JSON call: a few hundred bytes, never paced nor counted
            conn.send(body)
            return
        for start in range(0, len(body), PIECE_BYTES):
            piece = body[start : start + PIECE_BYTES]
            if self._limiter is not None:
                self._limiter.take(len(piece))
            conn.send(piece)
            with self._lock:
                self.bytes_sent += len(piece)
            on_piece(len(piece))

    def _json(self, method: str, relative: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        answer = self._request(method, self.url(relative), body=body, headers=headers)
        _check(answer, relative)
        return answer.json()

    # ---- JSON calls

    def register(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", "register", info))

    def keepalive(self, info: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", "keepalive", info))

    def server_time(self) -> dict[str, Any]:
        return dict(self._json("GET", "time"))

    def report_drift(self, drifts: Sequence[Mapping[str, Any]]) -> int:
        return int(self._json("POST", "time", {"drifts": list(drifts)}).get("recorded", 0))

    def have(self, digests: Sequence[str]) -> Have:
        """Which digests the archive holds verified; any number, asked ≤1000 at a time."""
        missing: list[str] = []
        present: list[str] = []
        for start in range(0, len(digests), HAVE_BATCH):
            answer = self._json(
                "POST", "have", {"sha256": list(digests[start : start + HAVE_BATCH])}
            )
            missing += [str(d) for d in answer.get("missing", [])]
            present += [str(d) for d in answer.get("present", [])]
        return Have(tuple(missing), tuple(present))

    def status(self, uploads: Sequence[str]) -> list[dict[str, Any]]:
        """Upload statuses by id or URL (the id is the URL's last segment)."""
        ids = [upload_id(u) for u in uploads]
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), HAVE_BATCH):
            answer = self._json("POST", "status", {"uploads": ids[start : start + HAVE_BATCH]})
            found += [dict(s) for s in answer.get("uploads", []) if isinstance(s, dict)]
        return found

    # ---- tus

    def create(
        self, length: int, metadata: Mapping[str, str | bytes], *, subject: str = ""
    ) -> tuple[str, int | None]:
        """POST uploads: the new upload's URL (or the one already open for this digest and
        path, which the server answers again) and its offset when the answer says it (then
        no HEAD is needed before the first PATCH)."""
        answer = self._request(
            "POST",
            self.url("uploads"),
            headers={"Upload-Length": str(length), "Upload-Metadata": encode_metadata(metadata)},
            subject=subject,
        )
        _check(answer, subject, expect=(200, 201))
        location = answer.headers.get("Location")
        if not location:
            raise DockError(f"服务器未给出上传地址 no Location for {subject}", status=answer.status)
        given = answer.headers.get("Upload-Offset")
        return self.url(location), int(given) if given and given.isdigit() else None

    def offset(self, url: str, *, subject: str = "") -> int:
        answer = self._request("HEAD", url, subject=subject)
        _check(answer, subject, upload=True)
        return _offset(answer, subject)

    def patch(
        self,
        url: str,
        offset: int,
        chunk: bytes | memoryview,
        *,
        on_piece: Callable[[int], None] | None = None,
        subject: str = "",
    ) -> int:
        """Send one chunk at ``offset``; the server's new offset."""
        headers = {
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
            "Upload-Checksum": chunk_checksum(chunk),
        }
        answer = self._request(
            "PATCH", url, body=chunk, headers=headers, on_piece=on_piece or _ignore,
            subject=subject,
        )  # fmt: skip
        _check(answer, subject, expect=(200, 204), upload=True)
        return _offset(answer, subject)

    def terminate(self, url: str, *, subject: str = "") -> None:
        answer = self._request("DELETE", url, subject=subject)
        if answer.status not in (404, 410):  # already gone is what was asked
            _check(answer, subject, expect=(200, 204))

    def upload_status(self, url: str) -> dict[str, Any]:
        answer = self._request("GET", url)
        _check(answer, upload_id(url), upload=True)
        return dict(answer.json())


def _ignore(_n: int) -> None:
    return None


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Between two requests nothing may be waiting to be read: anything readable is the
    server's end of the connection (EOF, a TLS close_notify)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _answered(conn: http.client.HTTPConnection) -> bool:
    sock = conn.sock
    if sock is None:
        return False
    try:
        sock.settimeout(1.0)
        return bool(sock.recv(1, socket.MSG_PEEK))
    except OSError:
        return False
    finally:
        sock.settimeout(conn.timeout)


def upload_id(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def _offset(answer: _Answer, subject: str) -> int:
    try:
        return int(answer.headers.get("Upload-Offset", ""))
    except ValueError:
        raise DockError(
            f"服务器未给出偏移 no Upload-Offset in the answer for {subject}", status=answer.status
        ) from None


def _check(
    answer: _Answer, subject: str, expect: tuple[int, ...] = (200,), *, upload: bool = False
) -> None:
    """Raise the typed error for a refusal; ``subject`` (a file, an endpoint) is named.
    ``upload``: the request named one upload, so 404/410 means the server dropped it."""
    if answer.status in expect or (expect == (200,) and 200 <= answer.status < 300):
        return
    status = answer.status
    try:
        body = json.loads(answer.body) if answer.body else {}
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error = str(body.get("error") or "")
    message = str(body.get("message") or answer.body[:200].decode("utf-8", "replace") or status)
    text = f"{subject}: {message}" if subject else message
    kw: dict[str, Any] = {"status": status, "error": error}
    if status in (401, 403):
        who = "令牌无效或已吊销 token unknown or revoked" if status == 401 else (
            "令牌不属于此采集站 token belongs to another station")  # fmt: skip
        raise AuthRefused(f"{who} ({status}): {message}", **kw)
    if status == 429:
        raise TooManyUploads(text, retry_after=_retry_after(answer), **kw)
    if status in (502, 503, 504):  # a proxy before a restarting server, the store down: retried
        raise Unreachable(f"服务器暂不可用 server unavailable ({status}): {text}", **kw)
    if status in (404, 410) and upload:
        raise UploadGone(text, **kw)
    if error in _BY_CODE:
        raise _BY_CODE[error](text, **kw)
    by_status = {409: OffsetMismatch, 413: UploadTooLarge, 423: UploadBusy, 460: ChunkMismatch}
    if status in by_status and not error:
        raise by_status[status](text, **kw)
    raise DockError(f"服务器拒绝 server answered {status} {error}: {text}".strip(), **kw)


def _retry_after(answer: _Answer) -> float:
    try:
        return max(0.0, float(answer.headers.get("Retry-After", "")))
    except ValueError:
        return 5.0
