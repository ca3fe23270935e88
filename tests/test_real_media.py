"""Real, odd media files from another project's test suite (../shared/samples/real-media):
every one ends archived or quarantined with a clear reason, none crashes the pipeline.

The folder is not part of this project and users do not have it: the test runs when it is
present (or named by EVIDENCE_TEST_REAL_MEDIA) and is skipped otherwise. The files are copied into
a temporary dock only, never into the project.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from docks.sweep import sweep_station
from pipeline.catalog import media as media_db
from pipeline.ingest.steps import IngestContext
from pipeline.models import MediaStatus, Outcome, Station
from tests.conftest import REPO

SAMPLES = Path(
    os.environ.get("EVIDENCE_TEST_REAL_MEDIA", REPO.parent / "shared/samples/real-media")
)
MEDIA = (
    sorted(p for p in SAMPLES.glob("*") if p.is_file() and p.suffix not in (".md", ""))
    if SAMPLES.is_dir()
    else []
)


@pytest.mark.skipif(not MEDIA, reason=f"no real-media samples at {SAMPLES}")
def test_every_real_sample_ends_archived_or_quarantined_with_a_reason(
    ctx: IngestContext, station: Station, dock: Path
) -> None:
    for sample in MEDIA:
        shutil.copyfile(sample, dock / sample.name)

    report = sweep_station(ctx, station)

    by_name = {Path(f.path).name: f for f in report.files}
    assert sorted(by_name) == sorted(p.name for p in MEDIA), "no file silently skipped"
    with ctx.catalog.begin() as conn:
        for sample in MEDIA:
            f = by_name[sample.name]
            assert f.outcome in (Outcome.ARCHIVED, Outcome.QUARANTINED), f"{sample.name}: {f}"
            item = media_db.get(conn, f.sha256 or "")
            assert ctx.store.verify_original(item.sha256).size == sample.stat().st_size
            if item.status is MediaStatus.QUARANTINED:
                assert item.quarantine_reason and len(item.quarantine_reason) > 10, sample.name
            elif item.kind.value in ("video", "audio"):
                assert item.proxy_key, f"{sample.name}: archived A/V has a proxy"
    # The truncated, header-only MP4 and the Matroska file with no A/V are the known bad ones.
    assert by_name["mpeg4.mp4"].outcome is Outcome.QUARANTINED
    assert by_name["sample.mkv"].outcome is Outcome.QUARANTINED
    assert by_name["sample.mp4"].outcome is Outcome.ARCHIVED
