"""A property of every sweep: whatever a dock holds, every good file ends archived and every
bad entry ends with a line saying why, and the station never stops.

Hypothesis draws a dock: good files (real PDFs, now and then a real clip) under ordinary,
Chinese, GBK-encoded, undecodable, markup-like and control-character names, mixed with
links (to files and folders outside, dangling), FIFOs, sockets, sparse files, text files named
.mp4, empty files, and a stray ``.ingested``. Derandomized, so a run is the same on every
machine (a failure is a defect, never noise); ``EVIDENCE_TEST_PROPERTY_EXAMPLES`` runs more.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docks.sweep import sweep_station
from interfaces import synth
from pipeline.catalog import media as media_db
from pipeline.catalog import open_catalog
from pipeline.catalog.jobs import new_owner
from pipeline.ingest.steps import IngestContext
from pipeline.models import Outcome
from pipeline.registry.stations import add_station
from pipeline.storage.local import LocalStore
from tests.conftest import make_settings

EXAMPLES = int(os.environ.get("EVIDENCE_TEST_PROPERTY_EXAMPLES", "30"))

GOOD = "good"
BAD_KINDS = (
    "link-to-file",
    "link-to-folder",
    "dangling-link",
    "fifo",
    "socket",
    "sparse",
    "text-named-mp4",
    "empty",
)
NAMES = st.sampled_from(
    [
        b"a.pdf",
        "现场笔录.pdf".encode(),
        "执法记录.pdf".encode("gbk"),
        b"\xff\xfe\x80.pdf",
        b"[bold]x[red]y[link=file:x].pdf",
        b"esc\x1b[2J\x07.pdf",
        b"new\nline.pdf",
        b" lead and trail .pdf",
        "名".encode() * 80 + b".pdf",
    ]
)
FOLDERS = st.sampled_from([b"", b"BWC-1/", b"BWC-2/sub/", "中队/".encode(), b"\xc4\xe3/"])


@dataclass(frozen=True)
class Entry:
    kind: str
    folder: bytes
    name: bytes
    variant: int  # which content a good file has (equal variants: duplicates)


ENTRIES = st.builds(
    Entry,
    kind=st.sampled_from((GOOD, GOOD, GOOD, *BAD_KINDS)),
    folder=FOLDERS,
    name=NAMES,
    variant=st.integers(0, 3),
)


@contextmanager
def _instance(home: Path) -> Iterator[IngestContext]:
    settings = make_settings(home)
    catalog = open_catalog(settings.catalog_url)
    try:
        yield IngestContext(
            catalog,
            LocalStore(settings.archive_dir, settings.ingest.block_size),
            settings,
            new_owner(),
        )
    finally:
        catalog.dispose()


def _write_dock(
    dock: Path, outside: Path, entries: list[Entry], stray_ingested: bool, stack: ExitStack
) -> dict[bytes, str]:
    """Lay the entries out; the good files' paths (bytes) and SHA-256."""
    good: dict[bytes, str] = {}
    base = os.fsencode(dock)
    for n, entry in enumerate(entries):
        folder = base + b"/" + entry.folder
        os.makedirs(folder, exist_ok=True)
        path = folder + b"%d-" % n + entry.name
        if entry.kind == GOOD:
            content = synth.make_pdf(outside / f"v{entry.variant}.pdf", f"记录 {entry.variant}")
            data = content.read_bytes()
            with open(path, "wb") as f:
                f.write(data)
            good[path] = hashlib.sha256(data).hexdigest()
        elif entry.kind == "link-to-file":
            os.symlink(os.fsencode(outside / "secret"), path)
        elif entry.kind == "link-to-folder":
            os.symlink(os.fsencode(outside), path)
        elif entry.kind == "dangling-link":
            os.symlink(b"/nonexistent/evidence", path)
        elif entry.kind == "fifo":
            os.mkfifo(path)
        elif entry.kind == "socket":
            sock = stack.enter_context(socket.socket(socket.AF_UNIX))
            try:
                sock.bind(path)
            except OSError:  # a socket path is limited to 108 bytes: a FIFO instead
                os.mkfifo(path)
        elif entry.kind == "sparse":
            with open(path, "wb") as f:
                f.write(b"x")
                f.truncate(8 << 20)
        elif entry.kind == "text-named-mp4":
            with open(path + b".mp4", "wb") as f:
                f.write("不是视频 not a video\n".encode() * 20)
        elif entry.kind == "empty":
            open(path, "wb").close()
    if stray_ingested:
        (dock / ".ingested").write_bytes(b"")
    return good


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(entries=st.lists(ENTRIES, min_size=1, max_size=10), stray_ingested=st.booleans())
def test_every_good_file_is_archived_and_every_bad_entry_reported(
    entries: list[Entry], stray_ingested: bool
) -> None:
    with tempfile.TemporaryDirectory(prefix="evidence-prop-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        dock, outside = root / "dock", root / "outside"
        dock.mkdir()
        outside.mkdir()
        (outside / "secret").write_bytes(b"not the dock's")
        good = _write_dock(dock, outside, entries, stray_ingested, stack)
        with _instance(root / "home") as ctx:
            station = add_station(ctx.catalog, "P", dock, "tester")

            report = sweep_station(ctx, station)

            lines = {os.fsencode(f.path) for f in report.files}
            bad_lines = [f for f in report.files if f.outcome in (Outcome.REFUSED,)]
            for f in report.files:
                assert f.reason or f.outcome in (Outcome.ARCHIVED, Outcome.DUPLICATE), f
            with ctx.catalog.read() as conn:
                archived = {m.sha256 for m in media_db.listing(conn, limit=1000)}
            assert set(good.values()) <= archived
            assert all(ctx.store.has_original(sha) for sha in good.values())
            assert hashlib.sha256(b"not the dock's").hexdigest() not in archived
            # Every entry has its line: good files by their path, bad ones too (a text file
            # named .mp4 is archived and quarantined, so it is found by its digest).
            expected_refusals = sum(
                e.kind in ("link-to-file", "link-to-folder", "dangling-link", "fifo", "socket")
                for e in entries
            )
            assert len(bad_lines) >= expected_refusals
            assert len(report.files) >= len(entries)
            readable_good = {os.fsencode(_readable(p)) for p in good}
            assert readable_good <= lines, readable_good - lines
            if not stray_ingested:
                for path in good:  # released: gone from where the dock wrote it
                    assert not os.path.lexists(path)
            else:
                for path in good:  # the release waits for the operator: nothing is lost
                    assert os.path.exists(path)
    shutil.rmtree(tmp, ignore_errors=True)


def _readable(path: bytes) -> str:
    from pipeline.names import readable

    return readable(path)
