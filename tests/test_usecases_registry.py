"""The registry's use cases: the CLI prints what they return, and they work on an Instance alone
(real SQLite or PostgreSQL catalog, real folders)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.catalog import Catalog, open_catalog
from pipeline.custody import log as custody
from pipeline.errors import NotFound, QuarantineError, RegistryError
from pipeline.ingest import quarantine
from pipeline.instance import Instance
from pipeline.models import Device, DeviceKind, DeviceStatus, EventKind, Officer, plain
from pipeline.registry import usecases as registry
from pipeline.settings import Settings, load_settings
from tests.conftest import REPO
from tests.test_cli import cli  # noqa: F401  (the fixture)

SH = ZoneInfo("Asia/Shanghai")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def instance(settings: Settings, catalog: Catalog) -> Instance:
    """An instance on the test catalog; A001 acts (the first officer it registers)."""
    return Instance(settings, catalog, actor="A001")


@pytest.fixture
def registered(instance: Instance) -> Instance:
    registry.add_officer(instance, Officer("A001", "王芳", "62010029001", "法制审核科"))
    registry.add_officer(instance, Officer("1023", "张伟", "62010023001", "市场监管"))
    registry.add_device(instance, Device("BWC0017", DeviceKind.BODY_WORN, vendor="ZFJLY"))
    return instance


def test_cli_show_prints_the_plain_of_the_use_case(cli) -> None:  # noqa: F811  # type: ignore[no-untyped-def]
    for args in (
        ["officers", "add", "A001", "--name", "王芳", "--cert", "62010029001", "--as", "A001"],
        ["officers", "add", "1023", "--name", "张伟", "--cert", "62010023001", "--as", "A001"],
        ["devices", "add", "BWC0017", "--vendor", "ZFJLY", "--as", "A001"],
        ["devices", "assign", "BWC0017", "1023", "--from", "2026-11-01T08:00", "--as", "A001"],
        ["devices", "unassign", "BWC0017", "--at", "2026-11-01T18:00", "--as", "A001"],
        ["devices", "assign", "BWC0017", "A001", "--from", "2026-11-02T08:00", "--as", "A001"],
    ):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
    shown_device = cli("devices", "show", "BWC0017", "--json")
    shown_officer = cli("officers", "show", "1023", "--json")
    assert shown_device.returncode == 0 and shown_officer.returncode == 0, shown_device.stderr

    settings = load_settings(home=cli.home)
    inst = Instance(settings, open_catalog(settings.catalog_url))
    try:
        device = registry.device_detail(inst, "BWC0017")
        officer = registry.officer_detail(inst, "1023")
    finally:
        inst.close()
    assert json.loads(shown_device.stdout) == plain(device)
    assert json.loads(shown_officer.stdout) == plain(officer)
    assert [a.officer_id for a in device.assignments] == ["1023", "A001"]
    assert [(a.device_serial, a.end) for a in officer.assignments] == [
        ("BWC0017", _t("2026-11-01T18:00"))
    ]
    missing = cli("devices", "show", "NOPE", "--json")
    assert missing.returncode == 2 and "device not found: NOPE" in missing.stderr


def test_assignments_give_the_holder_and_end(registered: Instance) -> None:
    change = registry.assign_device(registered, "BWC0017", "1023", _t("2026-11-01T08:00"))
    assert (change.entity, change.action) == ("assignment", "added")
    assert [(d.serial, d.holder) for d in registry.list_devices(registered)] == [
        ("BWC0017", "1023")
    ]
    ended = registry.unassign_device(registered, "BWC0017", _t("2026-11-01T18:00"))
    assert (ended.officer_id, ended.end) == ("1023", _t("2026-11-01T18:00"))
    assert registry.list_devices(registered)[0].holder is None
    assert plain(registry.list_devices(registered)[0]) == {
        "serial": "BWC0017",
        "kind": "body-worn",
        "status": "active",
        "vendor": "ZFJLY",
        "model": "",
        "clock_offset_s": 0.0,
        "holder": None,
    }


def test_every_change_is_made_by_a_registered_officer(registered: Instance, dock: Path) -> None:
    stranger = registered.acting("nobody")
    with pytest.raises(RegistryError, match="not a registered officer"):
        registry.add_device(stranger, Device("BWC0099", DeviceKind.BODY_WORN))
    with pytest.raises(RegistryError, match="not a registered officer"):
        registry.set_device_status(stranger, "BWC0017", DeviceStatus.LOST)
    with pytest.raises(RegistryError, match="not a registered officer"):
        registry.add_station(stranger, "D9", dock)
    with pytest.raises(RegistryError, match="needs a named actor"):
        registry.assign_device(replace(registered, actor=None), "BWC0017", "1023")
    assert [d.serial for d in registry.list_devices(registered)] == ["BWC0017"]
    assert registry.list_stations(registered) == []


def test_lost_status_is_an_alert_naming_the_actor(registered: Instance) -> None:
    change = registry.set_device_status(registered, "BWC0017", DeviceStatus.LOST, "reported")
    assert change.action == "changed"
    assert registry.device_detail(registered, "BWC0017").device.status is DeviceStatus.LOST
    with registered.catalog.read() as conn:
        alert = [e for e in custody.events(conn) if e.kind is EventKind.ALERT][-1]
    assert (alert.actor, alert.details["reason"]) == ("A001", "reported")
    with pytest.raises(NotFound, match="device not found: NOPE"):
        registry.set_device_status(registered, "NOPE", DeviceStatus.LOST)


def test_lookups_do_not_wait_for_a_writer(registered: Instance, dock: Path) -> None:
    """An ingest holds the write lock for a while: a lookup reads beside it (SQLite's WAL)."""
    registry.add_station(registered, "DOCK-01", dock, name="一中队")
    with registered.catalog.begin():
        assert registry.device_detail(registered, "BWC0017").assignments == ()
        assert registry.officer_detail(registered, "1023").officer.name == "张伟"
        assert registry.station_detail(registered, "DOCK-01").health.quarantined == 0
        assert [d.serial for d in registry.health_report(registered).devices] == ["BWC0017"]
        assert [o.id for o in registry.list_officers(registered)] == ["1023", "A001"]
        assert quarantine.list_entries(registered) == []
        assert registry.export_registry(registered).devices[0]["serial"] == "BWC0017"


def test_import_then_export_then_import_changes_nothing(instance: Instance, tmp_path: Path) -> None:
    dock = tmp_path / "DOCK-01"
    dock.mkdir()
    path = tmp_path / "registry.yaml"
    text = (REPO / "config/registry.example.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("/srv/docks/DOCK-01", str(dock)), encoding="utf-8")
    assert {c.action for c in registry.import_registry(instance, path)} == {"added"}
    exported = registry.export_registry(instance)
    assert plain(exported) == {s: plain(t) for s, t in exported.tables().items()}
    again = tmp_path / "again.yaml"
    from pipeline.registry.bulk import to_yaml

    again.write_text(to_yaml(exported.tables()), encoding="utf-8")
    assert {c.action for c in registry.import_registry(instance, again)} == {"unchanged"}
    detail = registry.station_detail(instance, "DOCK-01")
    assert (detail.station.root, detail.health.unregistered_serials) == (dock.resolve(), ())


def test_releasing_a_device_with_nothing_in_quarantine_says_so(registered: Instance) -> None:
    with pytest.raises(QuarantineError, match="BWC0017 has no files in quarantine"):
        quarantine.release_entries(registered, device="BWC0017")
    kept = quarantine.release_entries(registered, [999])
    assert plain(kept) == [
        {
            "entry": 999,
            "code": "not-found",
            "error": "quarantine entry not found: 999",
            "released": False,
        }
    ]
