"""`evidence web` serves the application with uvicorn on a real loopback port: sign in over
HTTP, and the session works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from pipeline.accounts import usecases as accounts
from pipeline.accounts.users import UserRole
from pipeline.catalog import Catalog
from pipeline.catalog import registry as registry_rows
from pipeline.instance import Instance
from pipeline.models import Officer
from pipeline.settings import Settings
from tests.conftest import REPO, free_port

PASSWORD = "correct horse 电池"


@pytest.fixture
def served(settings: Settings, catalog: Catalog) -> Iterator[str]:
    with catalog.begin() as conn:
        registry_rows.save_officer(
            conn, Officer("1023", "张伟", "11010012345", "治安大队"), datetime.now(UTC)
        )
    accounts.add_user(
        Instance(settings, catalog),
        "zhang.wei",
        officer_id="1023",
        roles=[UserRole.ARCHIVIST],
        password=PASSWORD,
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "web", "--port", str(port)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/signin", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    out = server.stdout.read() if server.stdout else ""
                    pytest.fail(f"evidence web did not start: {out}")
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_evidence_web_serves_sign_in_and_a_session(served: str) -> None:
    with httpx.Client(base_url=served, follow_redirects=False) as client:
        page = client.get("/signin")
        assert page.status_code == 200 and "登录" in page.text
        assert "server" not in page.headers, "uvicorn does not name itself"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        signed = client.post(
            "/signin",
            data={
                "login": "zhang.wei",
                "password": PASSWORD,
                "csrf_token": client.cookies["evidence_csrf"],
            },
        )
        assert signed.status_code == 303, signed.text
        me = client.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["user"]["login"] == "zhang.wei"
        assert me.json()["session"]["address"] == "127.0.0.1"
