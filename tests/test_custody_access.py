"""Access supervision (调阅监督): viewing needs who and why, each viewing is a custody event,
and `evidence audit` lists the history. Through the CLI, then the catalog reopened."""

from __future__ import annotations

import hashlib
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.custody import log as custody
from pipeline.custody.access import View, audit, open_media
from pipeline.errors import AccessRefused, NotFound
from pipeline.models import EventKind
from tests.custody_helpers import Archive, copy_archive, make_case, template


@pytest.fixture
def archive(
    tmp_path_factory: pytest.TempPathFactory, clips: dict[str, Path], tmp_path: Path
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    yield copy
    copy.catalog.dispose()


def _viewed(archive: Archive, media_id: int) -> list[custody.CustodyEvent]:
    with archive.catalog.begin() as conn:
        return [e for e in custody.events(conn, media_id=media_id) if e.kind is EventKind.VIEWED]


def test_opening_the_proxy_is_recorded_with_who_and_why(archive: Archive) -> None:
    video = archive.items["video"]
    result = archive.cli(
        "media", "open", str(video.id), "--reason", "复核 2026-0113", "--as", "1023"
    )
    assert result.returncode == 0, result.stderr
    proxy = Path(result.stdout.strip())
    assert proxy.is_file() and proxy.name.startswith("proxy")
    (event,) = _viewed(archive, video.id)
    assert event.actor == "1023"
    assert event.details["reason"] == "复核 2026-0113" and event.details["view"] == "proxy"


@pytest.mark.parametrize(
    ("actor", "reason", "message"),
    [
        ("1023", None, "a reason is required (--reason)"),
        ("1023", "   ", "a reason is required (--reason)"),
        (None, "复核", "who is asking is required (--as)"),
        (" ", "复核", "who is asking is required (--as)"),
    ],
)
def test_a_viewing_without_who_or_why_is_refused_and_not_recorded(
    archive: Archive, actor: str | None, reason: str | None, message: str
) -> None:
    video = archive.items["video"]
    with pytest.raises(AccessRefused, match=re.escape(message)):
        open_media(archive.catalog, archive.store, str(video.id), actor=actor, reason=reason)
    assert _viewed(archive, video.id) == []


def test_the_cli_refuses_a_viewing_without_a_reason_in_one_clean_line(archive: Archive) -> None:
    result = archive.cli("media", "open", str(archive.items["video"].id), "--as", "1023")
    assert result.returncode == 2
    assert "a reason is required (--reason)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_download_is_the_original_and_is_recorded(archive: Archive, tmp_path: Path) -> None:
    photo = archive.items["photo"]
    out = tmp_path / "out"
    out.mkdir()
    result = archive.cli(
        "media", "open", photo.sha256[:8], "--view", "original", "--out", str(out),
        "--reason", "庭审", "--as", "1023", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    copy = Path(json.loads(result.stdout)["path"])
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == photo.sha256
    assert not stat.S_IMODE(copy.stat().st_mode) & 0o222, "handed over read-only"
    assert _viewed(archive, photo.id) == [], "a copy that leaves the archive is an export"
    with archive.catalog.read() as conn:
        (event,) = [
            e for e in custody.events(conn, media_id=photo.id) if e.kind is EventKind.EXPORTED
        ]
    assert (event.actor, event.details) == (
        "1023",
        {"view": "original", "reason": "庭审", "to": str(copy)},
    )


def test_a_photo_has_no_proxy_and_says_what_to_open_instead(archive: Archive) -> None:
    with pytest.raises(NotFound, match="has none; open --view original or --view metadata"):
        open_media(
            archive.catalog, archive.store, str(archive.items["photo"].id), actor="a", reason="r"
        )


def test_audit_lists_history_by_media_and_by_actor(archive: Archive) -> None:
    video, pdf = archive.items["video"], archive.items["pdf"]
    for item, who in ((video, "1023"), (pdf, "1088"), (video, "1088")):
        open_media(
            archive.catalog, archive.store, str(item.id), actor=who, reason="核查",
            view=View.METADATA,
        )  # fmt: skip

    by_media = json.loads(archive.cli("audit", "--media", str(video.id), "--json").stdout)
    assert {e["media_id"] for e in by_media} == {video.id}
    assert by_media[0]["kind"] == "ingested", "the whole history, oldest first"
    assert [e["actor"] for e in by_media if e["kind"] == "viewed"] == ["1023", "1088"]

    by_actor = audit(archive.catalog, actor="1088")
    assert [(e.media_id, e.details["reason"]) for e in by_actor] == [
        (pdf.id, "核查"),
        (video.id, "核查"),
    ]
    newest = audit(archive.catalog, kinds=(EventKind.VIEWED,), limit=2)
    assert [(e.media_id, e.actor) for e in newest] == [(pdf.id, "1088"), (video.id, "1088")]
    table = archive.cli("audit", "--media", str(video.id))
    assert table.returncode == 0 and "核查" in table.stdout


def test_a_case_audit_holds_the_case_and_its_records_history(archive: Archive) -> None:
    make_case(archive, "2026-0113", "video", "pdf")
    video, pdf, photo = (archive.items[n].id for n in ("video", "pdf", "photo"))
    history = audit(archive.catalog, case="2026-0113")
    assert {e.media_id for e in history} == {None, video, pdf}, "not the unlinked photo"
    assert [e.kind for e in history if e.media_id is None] == [EventKind.CASE_CHANGED]
    assert {e.media_id for e in history if e.kind is EventKind.LINKED} == {video, pdf}
    assert EventKind.INGESTED in {e.kind for e in history if e.media_id == video}
    assert photo not in {e.media_id for e in history}
    with pytest.raises(NotFound, match="case not found: 2099-0001"):
        audit(archive.catalog, case="2099-0001")
