"""The web application: one FastAPI app over one Instance, pages and ``/api/v1`` alike.

``create_app(instance)`` is all a server (``evidence web``) or a test needs. The routes call
the same use cases as the CLI; what is only the web's own is here and in ``security``:
cookies, CSRF, headers, and the one table from the domain's errors to HTTP statuses.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from interfaces.web import (
    api,
    approvals,
    audit,
    cases,
    dashboard,
    deps,
    dock,
    errors,
    holds,
    media,
    pages,
    quarantine,
    reports,
    retention,
    users,
)
from interfaces.web.security import Headers, check_csrf
from pipeline.instance import Instance
from pipeline.uploads.receive import Receiver

STATIC = Path(__file__).resolve().parent / "static"


class _ErrorPage(errors.PageRenderer):
    def __call__(self, request: Request, status: int, code: str, message: str) -> Response:
        context = {"status": status, "code": code, "message": message}
        return deps.render(request, "error.html", context, status_code=status)


def create_app(instance: Instance) -> FastAPI:
    app = FastAPI(
        title="Evidence archive 执法记录档案",
        version="1",
        docs_url=None,  # the interactive docs load scripts from a CDN; the schema stays
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        dependencies=[Depends(check_csrf)],
    )
    # The store opened once (an S3 store starts a client and checks its lock): each request's
    # instance (``acting``, a copy with the user acting) then shares it.
    app.state.instance = replace(instance, _store=instance.store)
    app.state.templates = deps.templates(instance.settings.zone)
    app.state.receiver = Receiver(instance.settings)  # uploads in progress (station API)
    app.add_middleware(Headers)
    errors.install(app, _ErrorPage())
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(media.router)
    app.include_router(cases.router)
    app.include_router(audit.router)
    app.include_router(users.router)
    app.include_router(quarantine.router)
    app.include_router(approvals.router)
    app.include_router(dashboard.router)
    app.include_router(reports.router)
    app.include_router(retention.router)
    app.include_router(holds.router)  # legal holds (issue 19)
    app.include_router(api.router)
    app.include_router(dock.router)
    return app
