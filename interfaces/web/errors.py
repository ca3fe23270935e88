"""One table from the domain's exception tree to HTTP statuses, and the handlers that use it.

``/api/v1/`` answers ``{"error": code, "message": …}`` with the error's stable code; a page
answers the error page in zh-CN with the same message. Neither ever shows a stack trace: an
error this project did not raise on purpose is logged here and answered as ``internal``.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from pipeline import errors as e

log = logging.getLogger(__name__)


class BadRequest(e.EvidenceError):
    """A request the web application cannot take as it is (a parameter out of its range)."""

    code = "bad-request"


#: First match wins: a family's members come before the family.
STATUS: tuple[tuple[type[e.EvidenceError], int], ...] = (
    # The station API (tus statuses: 460 is the checksum extension's "Checksum Mismatch").
    (e.StationTokenRefused, 401),
    (e.StationForbidden, 403),
    (e.UploadNotFound, 404),
    (e.UploadGone, 410),
    (e.AlreadyArchived, 409),
    (e.OffsetMismatch, 409),
    (e.UploadTooLarge, 413),
    (e.UploadBusy, 423),
    (e.TooManyUploads, 429),
    (e.ChunkChecksumMismatch, 460),
    (e.UploadDigestMismatch, 460),
    (e.StationApiError, 400),
    (e.NotSignedIn, 401),
    (e.AccountLocked, 429),  # rate-limited sign-in: try again when the lock ends
    (e.AddressThrottled, 429),
    (e.SignInFailed, 401),
    (e.PermissionDenied, 403),
    (e.ApprovalRequired, 403),  # the access policy asks approval first (调阅审批)
    (e.AccessRefused, 403),  # no reason given for a viewing
    (e.NotFound, 404),
    (BadRequest, 400),
    (e.QueryError, 400),
    (e.TagError, 400),
    (e.AccountError, 400),
    (e.RecordFileError, 400),
    (e.RegistryError, 400),
    (e.CaseError, 409),
    (e.RetentionError, 409),  # retention: marks, classes, holds (issue 19)
    (e.QuarantineError, 409),
    (e.ExportError, 409),
    (e.StationError, 409),
    (e.DeviceError, 409),
    (e.SourceError, 409),
    (e.MediaError, 422),
    (e.IntegrityError, 500),  # damage found: nothing the request could change
    (e.InstanceKeyError, 500),
    (e.ConfigError, 500),
    (e.CatalogError, 503),
    (e.StorageError, 503),
    (e.FfmpegNotFound, 503),
    (e.TranscoderUnusable, 503),
    (e.PrefectUnavailable, 503),
    (e.EvidenceError, 400),
)


#: What a server-side fault says to the browser: its code, and that it is logged.
SERVER_FAULT = (
    "服务端故障，已记录，请联系系统管理员 (a fault on the server, logged: tell the administrator)"
)


def status_of(exc: e.EvidenceError) -> int:
    return next(status for kind, status in STATUS if isinstance(exc, kind))


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def install(app: FastAPI, page: PageRenderer) -> None:
    """The handlers of ``app``: domain errors by the table, FastAPI's own as 400 and 404,
    anything else as a 500 without its trace."""

    @app.exception_handler(e.EvidenceError)
    async def _domain(request: Request, exc: e.EvidenceError) -> Response:
        status = status_of(exc)
        if isinstance(exc, e.NotSignedIn) and not is_api(request):
            return _to_sign_in(request)
        if status >= 500:
            # The message names the catalog's URL, files of the archive, SQL: for the log only.
            log.error("%s %s: %s", request.method, request.url.path, exc)
            return _answer(request, page, status, exc.code, SERVER_FAULT)
        return _answer(request, page, status, exc.code, str(exc), dock_headers(request, exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        wrong = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return _answer(request, page, 400, BadRequest.code, f"请求参数有误 (bad request): {wrong}")

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = "not-found" if exc.status_code == 404 else f"http-{exc.status_code}"
        message = "页面不存在 (no such page)" if exc.status_code == 404 else str(exc.detail)
        return _answer(request, page, exc.status_code, code, message)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return _answer(request, page, 500, "internal", "内部错误，已记录 (internal error, logged)")


class PageRenderer:
    """How an error is shown as a page (the templates live with the app)."""

    def __call__(self, request: Request, status: int, code: str, message: str) -> Response:
        raise NotImplementedError


def _to_sign_in(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards (a page, not a form's POST: the same
    route serves a page and its HTMX fragment). An HTMX request is told to go there as a whole
    page (``HX-Redirect``), not to swap the sign-in form into its target."""
    target = "/search"
    if request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/signin?next={quote(target, safe='')}"
    if request.headers.get("HX-Request") == "true":
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _answer(
    request: Request,
    page: PageRenderer,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    if is_api(request):
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)
    return page(request, status, code, message)


#: Every answer of the station API speaks tus 1.0.0 (docs/station-api.md).
TUS_VERSION = "1.0.0"


def dock_headers(request: Request, exc: e.EvidenceError) -> dict[str, str] | None:
    """What a station's client reads besides the status: the tus version, when to retry,
    the offset to resume from."""
    if not request.url.path.startswith("/api/v1/dock/"):
        return None
    headers = {"Tus-Resumable": TUS_VERSION}
    if isinstance(exc, e.TooManyUploads):
        headers["Retry-After"] = "2"
    if isinstance(exc, e.StationTokenRefused):
        headers["WWW-Authenticate"] = 'Bearer realm="evidence-dock"'
    if isinstance(exc, e.OffsetMismatch):
        headers["Upload-Offset"] = str(exc.offset)
    return headers
