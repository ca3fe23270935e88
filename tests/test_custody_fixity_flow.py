"""The `fixity-check` flow under the session's Prefect test server, and its served schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.catalog.schema import custody_checkpoints
from pipeline.custody import log as custody
from pipeline.errors import ConfigError
from pipeline.models import EventKind
from tests.custody_helpers import (
    EVERY,
    Archive,
    archive_settings,
    copy_archive,
    flip_byte,
    pins_of,
    template,
)


@pytest.fixture
def archive(
    prefect_api: str,
    tmp_path_factory: pytest.TempPathFactory,
    clips: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Archive]:
    copy = copy_archive(template(tmp_path_factory, clips), tmp_path / "home")
    # The flow reads its settings from the environment, as a served deployment does.
    monkeypatch.setenv("EVIDENCE_HOME", str(copy.home))
    monkeypatch.setenv("EVIDENCE_CUSTODY__CHECKPOINT_EVERY_EVENTS", str(EVERY))
    monkeypatch.setenv("EVIDENCE_CUSTODY__PINNED_KEYS", json.dumps(pins_of(copy.home)))
    yield copy
    copy.catalog.dispose()


def _events(archive: Archive, kind: EventKind) -> list[custody.CustodyEvent]:
    with archive.catalog.begin() as conn:
        return [e for e in custody.events(conn) if e.kind is kind]


def test_a_sample_then_a_full_pass_record_fixity_and_sign_what_is_due(archive: Archive) -> None:
    from flows.fixity import fixity_check

    sample = fixity_check(sample=2)
    full = fixity_check(sample=None)

    assert sample.ok and sample.originals == 2 and full.ok and full.originals == 3
    checked = _events(archive, EventKind.FIXITY_CHECKED)
    assert len([e for e in checked if e.details["run"] == sample.run]) == 2
    by_full = sorted(e.media_id for e in checked if e.details["run"] == full.run)
    assert by_full == sorted(i.id for i in archive.items.values())
    with archive.catalog.begin() as conn:
        signed = [r.seq for r in conn.execute(custody_checkpoints.select())]
    assert max(signed) == 25, "five fixity events after seq 20: the checkpoint at 25 is due"


def test_a_damaged_original_fails_the_run_and_is_recorded(archive: Archive) -> None:
    from flows.fixity import fixity_check

    pdf = archive.items["pdf"]
    flip_byte(archive.store.original_path(pdf.sha256))
    state = fixity_check(sample=None, return_state=True)  # type: ignore[call-overload]

    assert state.is_failed(), "operators see a red run"
    (failed,) = _events(archive, EventKind.FIXITY_FAILED)
    assert failed.media_id == pdf.id and failed.details["code"] == "E-FIXITY-MISMATCH"


def test_the_served_deployments_follow_the_settings(tmp_path: Path) -> None:
    from flows.fixity import deployments

    settings = archive_settings(tmp_path).model_copy(
        update={
            "custody": archive_settings(tmp_path).custody.model_copy(
                update={"fixity_sample_cron": "15 1 * * *", "fixity_sample": 7}
            )
        }
    )
    by_name = {d.name: d for d in deployments(settings)}
    assert set(by_name) == {"daily-sample", "monthly-full", "checkpoints"}
    daily, monthly = by_name["daily-sample"], by_name["monthly-full"]
    assert daily.parameters == {"sample": 7} and monthly.parameters == {"sample": None}
    assert [s.schedule.cron for s in daily.schedules] == ["15 1 * * *"]
    assert [s.schedule.cron for s in monthly.schedules] == ["0 3 1 * *"]
    assert daily.schedules[0].schedule.timezone == "Asia/Shanghai"
    interval = by_name["checkpoints"].schedules[0].schedule.interval
    assert interval.total_seconds() == 15 * 60


def test_a_bad_cron_is_a_config_error(tmp_path: Path) -> None:
    from flows.fixity import deployments

    base = archive_settings(tmp_path)
    bad = base.model_copy(
        update={"custody": base.custody.model_copy(update={"fixity_full_cron": "every day"})}
    )
    with pytest.raises(ConfigError, match="invalid custody schedule"):
        deployments(bad)
