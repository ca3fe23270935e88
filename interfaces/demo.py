"""``evidence demo``: realistic recorder dumps, ingested through the flow, then checked.

Two docking stations; body-worn recorders with video and audio, an audio recorder, photos,
scanned text records (PDF), a file name with spaces and Chinese characters, the same clip
docked twice, a recorder whose clock runs slow, and a truncated recording. Afterwards every
archived original is re-hashed from the store, every proxy is decoded end to end by ffmpeg,
and the docks are listed to show what was released. Five case files then give every figure
of the compliance dashboard something to count.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.table import Table

from interfaces import output, synth
from interfaces.commands.devices import print_health
from pipeline.catalog import Catalog
from pipeline.ingest.quarantine import list_entries
from pipeline.instance import Instance, open_instance
from pipeline.models import FileReport, MediaStatus, Outcome, SweepReport
from pipeline.registry import health
from pipeline.search.usecases import media_list
from pipeline.settings import Settings

# 09:30 in Shanghai (UTC+8): recorder clocks, file names and the registry run on local time.
SHIFT_START = datetime(2026, 11, 27, 1, 30, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _dumps(docks: Path, now: datetime) -> dict[str, Path]:
    """Write the recorders' files as docking stations receive them, with mtimes of the
    moment each recording ended (as a recorder's clock stamps them). Most were recorded on
    27 November; a photo three hours before ``now`` is the one docked in time."""
    d1, d2 = docks / "DOCK-01", docks / "DOCK-02"
    t = SHIFT_START
    files: list[tuple[Path, datetime]] = []

    def add(path: Path, when: datetime) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.append((path, when))
        return path

    # GA/T 947-style names: <device id>_<officer no>_<YYYYMMDDhhmmss>_<seq>.<ext>
    v1 = add(d1 / "BWC-0017" / "BWC0017_1023_20261127093000_0001.mp4", t)
    synth.make_video(
        v1, seconds=2.0, width=640, height=360, creation_time=t, make="ZFJLY", model="DSJ-A9"
    )
    v2 = add(d1 / "BWC-0017" / "BWC0017_1023_20261127094500_0002.mp4", t + timedelta(minutes=15))
    synth.make_video(
        v2,
        seconds=1.5,
        width=1280,
        height=720,
        creation_time=t + timedelta(minutes=15),
        make="ZFJLY",
        model="DSJ-A9",
    )
    photo = add(d1 / "BWC-0017" / "IMG_20261127_093500.jpg", t + timedelta(minutes=5))
    synth.make_photo(photo, width=640, height=480)
    a1 = add(d1 / "REC-0031" / "REC0031_1023_20261127100000_0001.m4a", t + timedelta(minutes=30))
    synth.make_audio(a1, seconds=2.0, creation_time=t + timedelta(minutes=30))
    pdf = add(d1 / "SCAN" / "现场笔录 2026-0113.pdf", t + timedelta(hours=1))
    synth.make_pdf(pdf, "On-site record 2026-0113")

    # BWC0022's clock runs 40 minutes slow: the file's time on the dock says so.
    v3 = add(d2 / "BWC-0022" / "现场 执法 记录 0001.mp4", t + timedelta(hours=4, minutes=41))
    synth.make_video(
        v3,
        seconds=1.0,
        width=1920,
        height=1080,
        creation_time=t + timedelta(hours=4),
        make="ZFJLY",
        model="DSJ-V7",
    )
    bad = add(
        d2 / "BWC-0022" / "BWC0022_1023_20261127133500_0002.mp4", t + timedelta(hours=4, minutes=5)
    )
    synth.make_truncated_mp4(bad)
    # A photo taken this morning, docked within hours: on time (上传及时).
    taken = (now - timedelta(hours=3)).astimezone(SHANGHAI).replace(microsecond=0)
    fresh = add(d2 / "BWC-0022" / f"IMG_{taken:%Y%m%d_%H%M%S}.jpg", taken)
    synth.make_photo(fresh, width=800, height=600)
    # Two more scanned records: an interrogation record the party did not sign (and nobody
    # noted the refusal), and the on-site record of an inspection filed after its deadline.
    unsigned = add(d2 / "SCAN" / "询问笔录 2026-0121.pdf", t + timedelta(hours=5))
    synth.make_pdf(unsigned, "Interrogation record 2026-0121")
    late = add(d2 / "SCAN" / "现场笔录 2026-0087.pdf", t + timedelta(hours=5, minutes=10))
    synth.make_pdf(late, "On-site record 2026-0087")
    # The first recorder docked again at the second station: the same bytes, seen twice.
    again = add(d2 / "BWC-0017" / v1.name, t)
    again.write_bytes(v1.read_bytes())
    # A recorder nobody registered: its dump is quarantined until someone does.
    stray = add(
        d2 / "BWC0099" / "BWC0099_1088_20261127150000_0001.mp4", t + timedelta(hours=5, minutes=30)
    )
    synth.make_video(
        stray, seconds=1.0, width=640, height=360, creation_time=t + timedelta(hours=5, minutes=30)
    )

    for path, when in files:
        os.utime(path, (when.timestamp(), when.timestamp()))
    return {"DOCK-01": d1, "DOCK-02": d2}


def demo_home(home: Path | None) -> Path:
    """Where the demo puts its data: ``--home``, else ``EVIDENCE_HOME`` (``make demo`` passes
    it through), else a new temporary folder. A named one must be new or empty: the demo
    registers its own stations and devices."""
    named = home or (Path(os.environ["EVIDENCE_HOME"]) if os.environ.get("EVIDENCE_HOME") else None)
    if named is None:
        return Path(tempfile.mkdtemp(prefix="evidence-demo-")).resolve()
    named = named.expanduser().resolve()
    if named.exists() and (not named.is_dir() or any(named.iterdir())):
        raise DemoHomeTaken(named)
    return named


class DemoHomeTaken(Exception):
    """The demo's data directory holds something already."""

    def __init__(self, home: Path) -> None:
        super().__init__(
            f"{home} is not empty: the demo needs a new or empty data directory "
            "(set EVIDENCE_HOME or --home to another, or remove this one)"
        )


#: How the demo ingests its stations: each station's sweep report, ``on_file`` called with
#: each file's report as it ends.
Ingest = Callable[[Settings, list[str], Callable[[FileReport], None]], list[SweepReport]]


def show_file(report: FileReport) -> None:
    output.console.print(output.line("  ", output.file_line(report)))


def ingest_through_flows(
    settings: Settings, stations: list[str], on_file: Callable[[FileReport], None]
) -> list[SweepReport]:
    """Each station swept as a flow run, as the docks' schedules do, on the local Prefect
    server (started once; later commands reuse it)."""
    from flows.runtime import stop_server, use_prefect

    console = output.console
    console.print("starting the local Prefect server (once; later commands reuse it) …")
    server = use_prefect(settings)
    # Only now: Prefect reads its API URL once, when first imported.
    from flows.ingest import run_ingest

    console.print(f"Prefect UI: {server.ui_url}")
    reports: list[SweepReport] = []
    try:
        for station_id in stations:
            console.rule(f"flow run ingest-station: {station_id}")
            report = run_ingest(settings, station_id, on_file=on_file)
            reports.append(report)
            console.print(output.sweep_table(report))
            console.print(output.sweep_summary(report))
    finally:
        if server.started:
            stop_server(settings)
    return reports


def run_demo(home: Path | None, ingest: Ingest | None = None) -> int:
    """The demo in ``home``; ``ingest`` sweeps its stations (by default through the flows;
    the web's tests sweep without Prefect, which builds the same catalog)."""
    started = time.monotonic()
    console = output.console
    try:
        home = demo_home(home)
    except DemoHomeTaken as exc:
        output.err_console.print(output.text(f"error: {exc}"), soft_wrap=True)
        return 2
    os.environ["EVIDENCE_HOME"] = str(home)
    console.rule("[bold]Evidence pipeline demo (执法全过程记录)")
    console.print(f"data directory: {home}")

    from pipeline.catalog import open_catalog
    from pipeline.custody.keys import create_instance_key
    from pipeline.registry.stations import add_station
    from pipeline.settings import load_settings

    # As `evidence init` does: the key signs custody checkpoints. As a deployment does, the
    # key is pinned, and checkpoints witnessed, outside the data directory.
    key_id = create_instance_key(home).key_id
    trust = _trust_config(home, key_id)
    os.environ["EVIDENCE_CONFIG"] = str(trust)
    console.print(f"trust anchors (pinned key, checkpoint witness): {trust.parent}")
    settings = load_settings()
    catalog = open_catalog(settings.catalog_url)
    console.print("synthesizing recorder dumps with ffmpeg …")
    docks = _dumps(home / "docks", datetime.now(UTC))
    for station_id, root in docks.items():
        # The demo's docks keep the recorders' mtimes (as rsync -t would): drift is checked.
        add_station(
            catalog, station_id, root, "A001", name=f"采集站 {station_id}", preserves_mtimes=True
        )
    _import_registry(home, catalog, settings)
    for path in sorted(p for root in docks.values() for p in root.rglob("*") if p.is_file()):
        console.print(f"  {path.relative_to(home / 'docks')}  ({path.stat().st_size:,} bytes)")

    reports = (ingest or ingest_through_flows)(settings, list(docks), show_file)
    _register_the_stray(settings)
    _report_the_slow_clock(settings, catalog)
    ok = _check(settings, catalog, docks, reports)
    ok = _cases(settings, catalog) and ok
    everything = media_list(Instance(settings, catalog), limit=100_000)
    archived = sum(m.status is MediaStatus.ARCHIVED for m in everything)
    quarantined = sum(m.status is MediaStatus.QUARANTINED for m in everything)
    console.rule("summary")
    console.print(
        f"{archived} archived, {quarantined} quarantined, "
        f"{output.plural(sum(r.count(Outcome.DUPLICATE) for r in reports), 'duplicate sighting')}, "
        f"{sum(r.count(Outcome.FAILED) for r in reports)} failed; "
        f"{time.monotonic() - started:.0f} s in all"
    )
    ok = _verify(Instance(settings, catalog)) and ok
    _demo_user(Instance(settings, catalog))
    console.rule("web application 网页")
    console.print(
        output.text(
            f"start it: EVIDENCE_CONFIG={trust} evidence --home {home} web   → "
            f"http://{settings.web.host}:{settings.web.port}/   "
            f"demo login 演示账号: {DEMO_LOGIN} / {DEMO_PASSWORD} (王芳, 法制审核 legal reviewer)"
        ),
        soft_wrap=True,
    )
    console.print(
        f"dashboard 统计: http://{settings.web.host}:{settings.web.port}/dashboard"
        f"?from={DASHBOARD_FROM}   (the CLI: evidence --home {home} compliance dashboard "
        f"--from {DASHBOARD_FROM})"
    )
    console.print(f"look around: export EVIDENCE_CONFIG={trust}")
    console.print(f"             evidence --home {home} media list")
    console.print(f"             evidence --home {home} devices health")
    console.print(f"             evidence --home {home} verify")
    console.print(
        output.text(
            f"the demo's data is in {home}, its trust anchors in {trust.parent}: they stay "
            f"for you to look around; remove both when done (rm -rf {home} {trust.parent})"
        ),
        soft_wrap=True,
    )
    return 0 if ok else 1


#: The first day of the demo's data: its dashboard's period starts there.
DASHBOARD_FROM = date(2026, 11, 1)

#: The demo's web sign-in, printed at its end: a demo archive has no secret worth keeping.
DEMO_LOGIN = "wang.fang"
DEMO_PASSWORD = "demo-2026-wangfang"


def _demo_user(instance: Instance) -> None:
    """An account for 王芳 (A001, legal reviewer and archivist), to sign in to the web with."""
    from pipeline.accounts.usecases import add_user
    from pipeline.accounts.users import UserRole

    add_user(
        instance.acting("A001"),
        DEMO_LOGIN,
        officer_id="A001",
        roles=(UserRole.LEGAL_REVIEWER, UserRole.ARCHIVIST),
        password=DEMO_PASSWORD,
    )


def _trust_config(home: Path, key_id: str) -> Path:
    """The demo's stand-in for /etc/evidence/config.toml: beside the data directory, never in
    it (an instance must not be able to rewrite what it is checked against)."""
    folder = home.parent / f"{home.name}-trust"
    (folder / "witness").mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    config.write_text(
        "# Written by `evidence demo`. In a deployment this file is owned by root.\n"
        "[custody]\n"
        f'pinned_keys = ["{key_id}"]\n'
        f'witness_dir = "{folder / "witness"}"\n',
        encoding="utf-8",
    )
    return config


def _verify(instance: Instance) -> bool:
    """`evidence verify` over the demo archive: every original, the chain, the witness."""
    from pipeline.custody.usecases import sign_checkpoints, verify

    sign_checkpoints(instance, force=True)  # what `evidence serve` does every 15 minutes
    report = verify(instance, record=False)
    verdict = "[green]clean[/]" if report.ok else f"[red]{len(report.problems)} problems[/]"
    output.console.rule("evidence verify")
    for p in report.problems:
        output.console.print(output.text(f"{p.code}  {p.subject}: {p.message}", style="red"))
    output.console.print(
        f"{report.originals} originals re-hashed, {report.events} custody events recomputed, "
        f"{report.checkpoints} signed checkpoints checked against the pinned key and the "
        f"witness {', '.join(report.witnesses)}: {verdict}"
    )
    return report.ok


DEMO_REGISTRY = """\
officers:
  - {id: "1023", name: 张伟, cert_no: "62010023001", department: 市场监管执法大队}
  - {id: "1088", name: 李娜, cert_no: "62010023017", department: 城市管理执法大队}
  - {id: A001, name: 王芳, cert_no: "62010029001", department: 法制审核科,
     roles: [legal-reviewer, archivist]}
devices:
  - {serial: BWC0017, kind: body-worn, vendor: ZFJLY, model: DSJ-A9}
  - {serial: BWC0022, kind: body-worn, vendor: ZFJLY, model: DSJ-V7}
  - {serial: REC0031, kind: audio-recorder, vendor: ZFJLY, model: R-10}
  - {serial: BWC0040, kind: body-worn, vendor: ZFJLY, model: DSJ-A9}
assignments:
  - {device: BWC0017, officer: "1023", from: 2026-11-27T08:00:00}
  - {device: REC0031, officer: "1023", from: 2026-11-27T08:00:00}
  - {device: BWC0022, officer: "1088", from: 2026-11-27T08:00:00, to: 2026-11-27T12:00:00}
  - {device: BWC0022, officer: "1023", from: 2026-11-27T12:00:00}
  - {device: BWC0040, officer: "1088", from: 2026-11-20T08:00:00}
"""


def _import_registry(home: Path, catalog: Catalog, settings: Settings) -> None:
    """The registry as an agency would load it: a YAML file through the importer."""

    from pipeline.registry import bulk as registry_io

    path = home / "registry.yaml"
    path.write_text(DEMO_REGISTRY, encoding="utf-8")
    changes = registry_io.apply(catalog, registry_io.read_file(path, settings.zone), path, "A001")
    output.console.print(
        f"registry imported from {path.name}: {len(changes)} records (3 officers, "
        "4 devices, 5 assignments); recorder BWC0099 is deliberately missing, and BWC0040 "
        "is never docked"
    )


def _local(hhmmss: str, day: str = "2026-11-27") -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmmss}+08:00")


def _cases(settings: Settings, catalog: Catalog) -> bool:
    """Five case files: a seizure fully recorded and sealed on time, a forced demolition
    with a coverage gap and an unsigned interrogation record, an inspection nobody filed
    within 15 days, one filed after them, and one whose deadline is days away. Every step is
    the use case the CLI's commands call. Then the compliance dashboard's figures."""
    from interfaces.commands.compliance import print_dashboard, print_report
    from interfaces.common import officer_names
    from pipeline.cases import usecases
    from pipeline.models import RecordType, Signature
    from pipeline.supervision import usecases as supervision

    console = output.console
    console.rule("case files (案卷) and the 15-day rule")
    archivist = Instance(settings, catalog).acting("A001")
    officer = archivist.acting("1023")
    soon = _ending_due_soon(settings)
    demo_cases = [
        ("2026-0113", "查封某仓库涉嫌假冒商品", "seizure", "市场监管执法大队", "1023",
         _local("09:30:00"), _local("09:30:02")),
        ("2026-0121", "强制拆除违法建筑", "forced-demolition", "城市管理执法大队", "1023",
         _local("13:25:00"), _local("13:35:00")),
        ("2026-0098", "餐饮门店现场检查", "on-site-inspection", "市场监管执法大队", "1088",
         _local("10:00:00", "2026-11-05"), _local("11:00:00", "2026-11-05")),
        ("2026-0087", "农贸市场现场检查", "on-site-inspection", "市场监管执法大队", "1088",
         _local("09:00:00", "2026-11-03"), _local("10:00:00", "2026-11-03")),
        ("2026-0130", "夜市占道经营检查", "on-site-inspection", "城市管理执法大队", "1088",
         soon - timedelta(hours=1), soon),
    ]  # fmt: skip
    made: list[tuple[str, int]] = []
    for number, title, category, department, held_by, start, end in demo_cases:
        saved = usecases.add_case(
            archivist,
            number,
            title=title,
            category=category,
            department=department,
            officers=[held_by],
            action_start=start,
            action_end=end,
        )
        made += [(number, media) for media in saved.linked]
    made += [(link.case, link.media) for link in usecases.autolink_cases(archivist)]
    console.print(
        f"{len(demo_cases)} cases registered; the linking rule linked {len(made)} records:"
    )
    for number, media_id in made:
        console.print(f"  {number} ← media {media_id}")
    records = {
        "2026-0113": (RecordType.ON_SITE, Signature.SIGNED),
        "2026-0121": (RecordType.INTERROGATION, Signature.MISSING),  # 未签字且未注明
        "2026-0087": (RecordType.ON_SITE, Signature.SIGNED),
    }
    for number, (record_type, signature) in records.items():
        for item in usecases.case_detail(archivist, number).items:
            if item.kind == "document":
                usecases.set_text_record(archivist, item.media_id, record_type, signature)
    for item in usecases.case_detail(archivist, "2026-0113").items:
        if item.kind in ("video", "audio"):
            usecases.describe_media(
                officer, item.media_id, "执法人员表明身份，告知事由，查封仓库货物"
            )
    for number, *_ in demo_cases:
        usecases.conclude_case(archivist, number)
    for number in ("2026-0113", "2026-0087"):
        sealed = usecases.archive_case(archivist, number, "case file complete")
        console.print(
            f"sealed {number}: {sealed.items} records in a signed BagIt bag "
            f"({sealed.bytes:,} bytes, {sealed.key[:16]}…): "
            f"{sealed.state.value} {sealed.state.label_zh}"
        )
    report = usecases.compliance_report(archivist)
    print_report(report, officer_names(archivist))
    dash = supervision.dashboard(archivist, None, DASHBOARD_FROM, supervision.today_of(archivist))
    print_dashboard(dash, settings, officer_names(archivist), brief=True)
    states = {c.number: c.state.value for c in report.cases}
    expected = {
        "2026-0113": "archived-on-time",
        "2026-0121": "open",
        "2026-0098": "overdue",
        "2026-0087": "archived-late",
        "2026-0130": "due-soon",
    }
    gap = usecases.case_detail(archivist, "2026-0121").coverage
    return states == expected and gap is not None and bool(gap.gaps)


def _ending_due_soon(settings: Settings) -> datetime:
    """An act that ended about two weeks ago at 17:00, late enough that its 15 days end
    within cases.due_soon_days from today (a rest day moves the deadline on)."""
    from pipeline.cases.records import due_of

    today = datetime.now(settings.zone).date()
    for back in (14, 13, 15, 12, 11):
        day = today - timedelta(days=back)
        ended = datetime(day.year, day.month, day.day, 17, 0, tzinfo=settings.zone)
        due, _ = due_of(settings, ended)
        if due is not None and 0 <= (due - today).days <= settings.cases.due_soon_days:
            return ended
    return ended


def _report_the_slow_clock(settings: Settings, catalog: Catalog) -> None:
    """DOCK-02's software set BWC0022's clock when it was docked, and says how far off it
    was (what a pushing station reports over the station API)."""
    from pipeline.registry.stations import get_station
    from pipeline.uploads.presence import Drift, report_drift

    seen = SHIFT_START + timedelta(hours=5)
    drift = Drift("BWC0022", -(40 * 60 + 12), seen)
    report_drift(Instance(settings, catalog), get_station(catalog, "DOCK-02"), [drift])
    output.console.print("DOCK-02 set BWC0022's clock: it was 40 min 12 s slow (reported)")


def _register_the_stray(settings: Settings) -> None:
    """An archivist registers the unknown recorder and releases its quarantined dump."""
    from pipeline.ingest.quarantine import Released, release_entries
    from pipeline.models import Device, DeviceKind
    from pipeline.registry import usecases as registry

    console = output.console
    console.rule("unknown recorder BWC0099: register, then release from quarantine")
    archivist = open_instance(settings).acting("A001")
    registry.add_device(archivist, Device("BWC0099", DeviceKind.BODY_WORN, vendor="ZFJLY"))
    registry.assign_device(archivist, "BWC0099", "1088", SHIFT_START)
    console.print("  registered BWC0099, assigned to 1088; releasing its files from quarantine")
    for result in release_entries(archivist, device="BWC0099"):
        if isinstance(result, Released):
            console.print(
                f"  [green]released[/] quarantine {result.entry} by A001: media {result.media} "
                f"{result.status.value}, officer {result.officer}"
            )
        else:
            console.print(output.text(f"  kept quarantine {result.entry}: {result.error}"))
    archivist.close()


def _check(
    settings: Settings, catalog: Catalog, docks: dict[str, Path], reports: list[SweepReport]
) -> bool:
    """Prove what the demo claims: hashes re-verified, proxies decode, sources released."""
    from pipeline.errors import EvidenceError
    from pipeline.media.transcode import check_decodes

    console = output.console
    instance = Instance(settings, catalog)
    store = instance.store
    items = list(media_list(instance, limit=1000))
    entries = list_entries(instance)
    ok = all(r.ok for r in reports)
    table = Table(title="archive check: stored originals re-hashed, proxies decoded")
    for col in ("id", "file", "kind", "status", "sha256 re-verified", "proxy"):
        table.add_column(col, overflow="fold")
    for item in sorted(items, key=lambda m: m.id):
        try:
            store.verify_original(item.sha256)
            verified = f"[green]✓[/] {item.sha256[:16]}…"
        except EvidenceError as exc:
            verified, ok = f"[red]✗ {exc}[/]", False
        proxy = "—"
        if item.proxy_key:
            try:
                check_decodes(store.derived_path(item.proxy_key), settings.transcode)
                proxy = "[green]decodes[/] " + item.proxy_key.rsplit("/", 1)[-1]
            except EvidenceError as exc:
                proxy, ok = f"[red]✗ {exc}[/]", False
        elif item.status is MediaStatus.ARCHIVED and item.kind.value in ("video", "audio"):
            proxy, ok = "[red]missing[/]", False
        table.add_row(
            str(item.id),
            item.original_name,
            f"{item.kind.value} {item.kind.label_zh}",
            item.status.value,
            verified,
            proxy,
        )
    console.print(table)
    console.print(output.quarantine_table(entries))
    print_health(health.report(catalog, settings.devices, datetime.now(UTC)), settings.zone)
    console.print("[bold]docks after ingest[/] (released sources are under .ingested/):")
    for station_id, root in docks.items():
        left = [p for p in root.rglob("*") if p.is_file() and ".ingested" not in p.parts]
        released = [p for p in root.rglob("*") if p.is_file() and ".ingested" in p.parts]
        console.print(f"  {station_id}: {len(released)} released, {len(left)} left on the dock")
        for p in left:
            console.print(f"    left: {p.relative_to(root)}")
    return ok
