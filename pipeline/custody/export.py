"""Court export: a BagIt bag (RFC 8493) that verifies on a machine that never saw the catalog.

    bagit.txt  bag-info.txt  manifest-sha256.txt  tagmanifest-sha256.txt
    bag-signature.json              the instance key's signature of the tag manifest
    README.txt                      what is inside, and how to verify it
    verify_bag.py                   the standalone verifier (pipeline/custody/verify_bag.py)
    data/originals/<id>_<name>      the originals, bit for bit
    data/proxies/<id>_<name>        browser proxies (--with-proxies)
    data/metadata/<id>.json         the catalog's record of each item
    data/custody/export.json        what was exported, by whom, why; the segment's bounds
    data/custody/events.jsonl       every custody event of the exported items
    data/custody/chain.jsonl        the chain from the checkpoint before the items' first
                                    event to the one signed after this export; events of
                                    other media only as links (their content withheld)
    data/custody/checkpoints.jsonl  the signed checkpoints in that stretch
    data/custody/keys/<key id>.pem  the public key(s) that signed them (information: a
                                    verifier trusts only the keys it is given)
    data/case/case.json …           the case's record (export --case, a sealed case), or
                                    other extra files of the caller

Every file is vouched for by a signature (the rules are at the top of verify_bag.py). The
export is itself recorded — an EXPORTED event per item with who, why, and the SHA-256 of
every payload file written so far (originals, proxies, metadata, extra files) — and the head
is signed right after, so the signed chain carries the export and its contents. The files
written after those events (export.json, the custody files) are covered by the bag signature:
the instance key signs the tag manifest, which covers the payload manifest. Files are copied
and hashed in one read; the bag is written under a temporary name and renamed when complete
(the staging folder of an export killed midway is removed by the next export to the same
place).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from pipeline.catalog import Catalog
from pipeline.catalog import cases as case_rows
from pipeline.catalog import media as media_db
from pipeline.catalog.schema import custody_events
from pipeline.custody import checkpoints
from pipeline.custody import log as custody
from pipeline.custody import verify_bag as rules
from pipeline.custody.access import case_media, purpose
from pipeline.custody.keys import Signer, public_pem
from pipeline.errors import ChecksumMismatch, CustodyBroken, ExportError
from pipeline.models import EventKind, MediaItem, plain
from pipeline.storage.hashing import ALGORITHM, copy_and_hash
from pipeline.storage.local import ArchiveStore, writer_gone

VERIFIER = Path(rules.__file__)
TAG_FILES = rules.TAG_FILES


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    path: Path
    media_ids: tuple[int, ...]
    files: int
    bytes: int
    segment: tuple[int, int]  # first and last seq of the chain segment
    key_ids: tuple[str, ...]


class _Payload:
    """Writes files under ``data/``, keeping each one's SHA-256 for the manifest."""

    def __init__(self, bag: Path, block_size: int) -> None:
        self.bag = bag
        self.block_size = block_size
        self.manifest: list[tuple[str, str]] = []
        self.bytes = 0

    def _target(self, relative: str) -> Path:
        path = inside(self.bag / "data", relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def copy(self, relative: str, source: Path, expected: str | None = None) -> str:
        with self._target(relative).open("xb") as out:
            digest = copy_and_hash(source, out, self.block_size)
        if expected is not None and digest.sha256 != expected:
            raise ChecksumMismatch(source, ALGORITHM, expected, digest.sha256)
        return self._note(relative, digest.sha256, digest.size)

    def write(self, relative: str, data: bytes) -> str:
        self._target(relative).write_bytes(data)
        return self._note(relative, hashlib.sha256(data).hexdigest(), len(data))

    def write_lines(self, relative: str, records: Iterable[dict[str, Any]]) -> str:
        """JSON Lines, streamed: a long chain segment never sits in memory whole."""
        digest, size = hashlib.sha256(), 0
        with self._target(relative).open("wb") as out:
            for record in records:
                line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
                out.write(line)
                digest.update(line)
                size += len(line)
        return self._note(relative, digest.hexdigest(), size)

    def _note(self, relative: str, sha256: str, size: int) -> str:
        self.manifest.append((f"data/{relative}", sha256))
        self.bytes += size
        return f"data/{relative}"


def export_bag(
    catalog: Catalog,
    store: ArchiveStore,
    checkpointer: checkpoints.Checkpointer,
    *,
    media_keys: Sequence[str],
    out: Path,
    actor: str | None,
    reason: str | None,
    case: str | None = None,
    with_proxies: bool = False,
    block_size: int = 4 << 20,
    extra_files: Mapping[str, bytes] | None = None,
    now: datetime | None = None,
    approve: Callable[[Sequence[MediaItem]], Mapping[int, int]] | None = None,
) -> ExportResult:
    """Write the bag of the given media items (ids or SHA-256 prefixes), and of the records
    linked to ``case``, to ``out``. ``approve`` is asked, once the items are known and before
    any is copied, for the grant each one's export uses (``pipeline.approvals``; it raises
    when one is missing); each item's EXPORTED event names its grant."""
    out = out.expanduser().resolve()
    who, why = purpose(f"export to {out}", actor, reason)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(out, "exists and is not an empty folder")
    now = now or datetime.now(UTC)
    with catalog.read() as conn:
        keys = [*media_keys, *(str(i) for i in (case_media(conn, case) if case else ()))]
        items = list({i.id: i for i in (media_db.get(conn, k) for k in keys)}.values())
        if case is not None and extra_files is None:
            extra_files = {"case/case.json": _case_record(conn, case, who, why, now)}
    if not items:
        raise ExportError(out, f"case {case} has no linked records" if case else "no media given")
    grants = approve(items) if approve is not None else {}
    export_id = uuid.uuid4().hex
    _remove_abandoned(out)
    # Named as the store names its temporaries (host-pid-token), shorter: out's name is the
    # user's, and the whole must stay within a file name's 255 bytes.
    owner = f"{socket.gethostname()}-{os.getpid()}-{export_id[:8]}"
    staging = out.parent / f"{_staging_prefix(out)}{owner}"
    try:
        staging.mkdir(parents=True)
        payload = _Payload(staging, block_size)
        listed = [_add_item(payload, store, item, with_proxies) for item in items]
        if any(Path(name).parts[:1] == ("custody",) for name in extra_files or {}):
            raise ExportError(out, "extra files may not be written under data/custody/")
        extras = {  # e.g. a sealed case's case.json
            payload.write(relative, data): hashlib.sha256(data).hexdigest()
            for relative, data in (extra_files or {}).items()
        }
        files = dict(payload.manifest)  # every payload file so far: the events name them
        details = {"export": export_id, "reason": why, "to": str(out), "items": len(items),
                   "proxies": with_proxies, **({"case": case} if case else {}),
                   "contents": rules.contents_sha256(listed, files)}  # fmt: skip
        _record(catalog, items, who, details, _own_files(listed, files, extras), now, grants)
        checkpointer.sign_due(catalog, force=True)  # the bag ends on a signature
        segment, key_ids = _add_custody(payload, catalog, checkpointer, items)
        export = {
            "format": rules.EXPORT_FORMAT,
            "export_id": export_id,
            "created_at": custody.canonical_time(now),
            "exported_by": who,
            "reason": why,
            "items": listed,
            "files": files,
            "segment": segment,
            "key_ids": key_ids,
            **({"case": case} if case else {}),
        }
        payload.write("custody/export.json", _json(export))
        _write_tags(staging, payload, export, now)
        sign_bag(staging, export_id, checkpointer.signer)
        staging.rename(out)  # POSIX rename replaces an empty folder
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ExportError(out, f"cannot write the bag: {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(
        export_id,
        out,
        tuple(i.id for i in items),
        len(payload.manifest),
        payload.bytes,
        (segment["anchor"]["seq"] + 1, segment["last_seq"]),
        tuple(key_ids),
    )


def _case_record(conn: Connection, number: str, who: str, why: str, now: datetime) -> bytes:
    """What the court reads of the case beside its records, as a sealed bag holds it
    (data/case/case.json): the case as catalogued and every link, by rule or by hand."""
    record = {
        "case": plain(case_rows.get(conn, number)),
        "exported_by": who,
        "reason": why,
        "exported_at": custody.canonical_time(now),
        "links": [plain(link) for link in case_rows.links_of_case(conn, number)],
    }
    return json.dumps(record, ensure_ascii=False, indent=2).encode()


def _staging_prefix(out: Path) -> str:
    return f".{out.name}.partial-"


def _remove_abandoned(out: Path) -> None:
    """Remove the staging folders that exports to ``out`` killed midway left: copies of
    archived originals, never a bag (a bag is only ever ``out``, renamed into place whole).
    The staging name tells which process wrote it; a live one's is left alone."""
    prefix = _staging_prefix(out)
    for leftover in out.parent.glob(glob.escape(prefix) + "*"):
        with contextlib.suppress(FileNotFoundError):
            if writer_gone(leftover.name[len(prefix) :], leftover.stat().st_mtime):
                shutil.rmtree(leftover, ignore_errors=True)


def _own_files(
    listed: Sequence[Mapping[str, Any]], files: Mapping[str, str], extras: Mapping[str, str]
) -> dict[int, dict[str, str]]:
    """Per item, the digests its EXPORTED event names: its own files and the extra ones (the
    whole listing is in every event's ``contents``; naming each file once keeps the events
    small however many items an export holds)."""
    own: dict[int, dict[str, str]] = {}
    for entry in listed:
        paths = [
            entry["original"],
            entry["metadata"],
            *([entry["proxy"]] if entry["proxy"] else []),
        ]
        own[int(entry["media_id"])] = {**{p: files[p] for p in paths}, **extras}
    return own


def _record(
    catalog: Catalog,
    items: Sequence[MediaItem],
    who: str,
    details: dict[str, Any],
    files: Mapping[int, dict[str, str]],
    now: datetime,
    grants: Mapping[int, int],
) -> None:
    """One EXPORTED event per item, all in one transaction: the export is in every history
    before the bag holding those histories is closed."""
    with catalog.begin() as conn:
        for item in items:
            granted = {"grant": grants[item.id]} if item.id in grants else {}
            custody.append(
                conn,
                EventKind.EXPORTED,
                who,
                media_id=item.id,
                station_id=item.station_id,
                subject=item.sha256,
                details={**details, "files": files[item.id], **granted},
                now=now,
            )


def _add_item(
    payload: _Payload, store: ArchiveStore, item: MediaItem, with_proxies: bool
) -> dict[str, Any]:
    """Copy the original (refusing one that no longer hashes right), its proxy, its record."""
    with store.original_file(item.sha256) as source:
        original = payload.copy(
            f"originals/{item.id}_{safe_name(item.original_name)}", source, item.sha256
        )
    proxy = None
    if with_proxies and item.proxy_key:
        source = store.derived_path(item.proxy_key)
        proxy = payload.copy(f"proxies/{item.id}_{safe_name(source.name)}", source)
    metadata = payload.write(f"metadata/{item.id}.json", _json(dataclasses.asdict(item)))
    return {
        "media_id": item.id,
        "sha256": item.sha256,
        "size": item.size,
        "original_name": item.original_name,
        "original": original,
        "proxy": proxy,
        "metadata": metadata,
    }


def _add_custody(
    payload: _Payload,
    catalog: Catalog,
    checkpointer: checkpoints.Checkpointer,
    items: Sequence[MediaItem],
) -> tuple[dict[str, Any], list[str]]:
    """The items' events, and the chain segment around them between two signed checkpoints."""
    ids = {i.id for i in items}
    with catalog.read() as conn:
        closing = checkpoints.latest(conn)
        assert closing is not None, "sign_due(force=True) signed the head"
        anchor = checkpoints.before(conn, _first_seq(conn, ids))
        low = anchor.seq if anchor else 0
        signed = checkpoints.listing(conn, low, closing.seq)
    mine: list[dict[str, Any]] = []

    def segment() -> Iterable[dict[str, Any]]:
        # The stretch ends on a signed checkpoint, so it is fixed: read it in chunks (short
        # transactions), and ingest goes on meanwhile.
        for event in custody.Scan(catalog, after=low, through=closing.seq):
            record = event.record()
            if event.media_id in ids:
                mine.append(record)
                yield record
            else:
                yield rules.withheld(record)

    chain = payload.write_lines("custody/chain.jsonl", segment())
    anchor_hash = anchor.hash if anchor else rules.GENESIS
    _refuse_broken(payload.bag / chain, low, anchor_hash, signed, checkpointer)
    payload.write_lines("custody/events.jsonl", mine)
    payload.write_lines("custody/checkpoints.jsonl", (cp.record() for cp in signed))
    # The bag signer's key too: it signed the closing checkpoint, so it is normally there.
    key_ids = sorted({cp.key_id for cp in signed} | {checkpointer.signer.key_id})
    for kid in key_ids:
        if kid in checkpointer.trusted:
            pem = public_pem(checkpointer.trusted[kid]).encode("ascii")
            payload.write(f"custody/keys/{kid}.pem", pem)
    bounds = {
        "anchor": {"seq": low, "hash": anchor_hash},
        "last_seq": closing.seq,
    }
    return bounds, key_ids


def _refuse_broken(
    chain: Path,
    low: int,
    anchor_hash: str,
    signed: Sequence[checkpoints.Checkpoint],
    checkpointer: checkpoints.Checkpointer,
) -> None:
    """Check the segment as the court's verifier will: a bag that would fail is not handed
    over (damage in an older, already signed stretch shows only here or in `verify`)."""
    with chain.open(encoding="utf-8") as lines:
        result = rules.check_chain(
            (json.loads(line) for line in lines),
            start_seq=low + 1,
            start_hash=anchor_hash,
            keep={cp.seq for cp in signed},
        )
    records = [cp.record() for cp in signed]
    problems = result.problems + rules.check_checkpoints(records, checkpointer.trusted, result)
    if problems:
        p = problems[0]
        raise CustodyBroken(
            f"custody log {p.subject}: {p.message} ({p.code}); nothing exported, "
            "run `evidence verify`"
        )


def _first_seq(conn: Connection, media_ids: set[int]) -> int:
    first = conn.execute(
        select(func.min(custody_events.c.seq)).where(custody_events.c.media_id.in_(media_ids))
    ).scalar_one()
    return int(first)


def _write_tags(bag: Path, payload: _Payload, export: dict[str, Any], now: datetime) -> None:
    manifest = "".join(f"{sha}  {path}\n" for path, sha in sorted(payload.manifest))
    # bag-info values are single lines: a newline in who or why would forge another field
    reason = " ".join(str(export["reason"]).split())
    who = " ".join(str(export["exported_by"]).split())
    count = len(export["items"])
    case = " ".join(str(export.get("case", "")).split())
    of_case, of_case_en = (f"（案件 {case}）", f" of case {case}") if case else ("", "")
    files = {
        "bagit.txt": "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
        "bag-info.txt": (
            "Bag-Software-Agent: evidence-pipeline\n"
            f"Bagging-Date: {now.astimezone(UTC):%Y-%m-%d}\n"
            f"External-Identifier: {export['export_id']}\n"
            f"External-Description: 执法音视频电子证据导出，共 {count} 件{of_case}，"
            f"导出人 {who}，事由：{reason}\n"
            f"External-Description: Evidence export of {_items_en(count)}{of_case_en} "
            f"by {who}: {reason}\n"
            f"Payload-Oxum: {payload.bytes}.{len(payload.manifest)}\n"
        ),
        "manifest-sha256.txt": manifest,
        "README.txt": _readme(export),
    }
    for name, text in files.items():
        (bag / name).write_text(text, encoding="utf-8")
    shutil.copyfile(VERIFIER, bag / "verify_bag.py")
    tags = "".join(f"{rules.file_sha256(bag / name)}  {name}\n" for name in TAG_FILES)
    (bag / rules.TAG_MANIFEST).write_text(tags, encoding="utf-8")


def sign_bag(bag: Path, export_id: str, signer: Signer) -> None:
    """The last file of a bag: the signer's signature of its tag manifest, which covers the
    payload manifest and so every file. Domain-separated (``type``) and bound to the export,
    so no other signature of the key can stand in for it."""
    signature: dict[str, Any] = {
        "type": rules.BAG_SIGNATURE_TYPE,
        "export_id": export_id,
        "tagmanifest_sha256": rules.file_sha256(bag / rules.TAG_MANIFEST),
        "key_id": signer.key_id,
    }
    signature["signature"] = signer.sign(rules.bag_signature_message(signature))
    (bag / rules.BAG_SIGNATURE).write_text(
        json.dumps(signature, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def _items_en(n: int) -> str:
    return "1 media item" if n == 1 else f"{n} media items"


def _readme(export: dict[str, Any]) -> str:
    """The bag's README.txt: zh-CN first (the agency, the court), then English."""
    return _readme_zh(export) + "\n" + "=" * 72 + "\n\n" + _readme_en(export)


def _readme_zh(export: dict[str, Any]) -> str:
    rows = "\n".join(
        f"  媒体 {i['media_id']}：{i['original']}\n    SHA-256 {i['sha256']}"
        for i in export["items"]
    )
    keys = "\n".join(f"  {k}" for k in export["key_ids"])
    seg = export["segment"]
    case = (
        f"\n案件 {export['case']} 的案件信息及关联记录见 data/case/case.json。\n"
        if export.get("case")
        else ""
    )
    return f"""电子证据导出 {export["export_id"]}

导出时间 {export["created_at"]}（UTC），导出人 {export["exported_by"]}。
导出事由：{export["reason"]}

导出的原始文件（与归档时逐位一致）：
{rows}
{case}
这些记录的保管事件（监管链）见 data/custody/events.jsonl，位于链段
data/custody/chain.jsonl（序号 {seg["anchor"]["seq"] + 1} 至 {seg["last_seq"]}）之中；该链段以本单位
Ed25519 密钥签名的检查点结束。包内签名密钥编号如下（请与本单位公布的编号核对）：
{keys}
其他媒体的事件在链段中只以链接出现（内容不予提供）。

校验方法（任何计算机均可，无需访问本单位系统）

1. 通过可信渠道向本单位索取其公钥（PEM，即 `evidence keys export` 的输出），不要使用本包中
   data/custody/keys/ 下的密钥：那里只供参考，伪造者也可放入自己的密钥。

2. 一次完成全部校验（Python 3.11 以上，pip install cryptography）：
     python3 verify_bag.py . --key 本单位公钥.pem
   （如本单位更换过密钥，可重复 --key 给出旧密钥。）校验包括：包签名（bag-signature.json）、
   签名监管链中的导出事件（记录导出人、事由、时间及每个文件的 SHA-256）、原始文件与入库事件
   的哈希、每个事件的哈希与链接、每个检查点的签名，以及这些记录的事件是否有遗漏。退出码 0
   表示全部通过；每个问题都以固定代码列出。

3. 仅校验文件完整性（不证明来源），可用标准工具：
     sha256sum -c manifest-sha256.txt          （在本文件夹内运行）
     bagit.py --validate .                     （pip install bagit）

哈希的计算方法写在 verify_bag.py 开头。
"""


def _readme_en(export: dict[str, Any]) -> str:
    rows = "\n".join(
        f"  media {i['media_id']}: {i['original']}\n    SHA-256 {i['sha256']}"
        for i in export["items"]
    )
    keys = "\n".join(f"  {k}" for k in export["key_ids"])
    seg = export["segment"]
    start = (
        "starts at the chain's first event"
        if seg["anchor"]["seq"] == 0
        else f"starts right after the signed checkpoint at seq {seg['anchor']['seq']}"
    )
    case = (
        f"\nThe record of case {export['case']} and its links is in data/case/case.json.\n"
        if export.get("case")
        else ""
    )
    return f"""EVIDENCE EXPORT {export["export_id"]}

Exported {export["created_at"]} by {export["exported_by"]}.
Reason: {export["reason"]}

Items (originals bit for bit, as archived):
{rows}
{case}
The custody events of these items are in data/custody/events.jsonl. They sit in the chain
segment data/custody/chain.jsonl (seq {seg["anchor"]["seq"] + 1} to {seg["last_seq"]}),
which {start} and ends on a checkpoint signed with the agency's Ed25519 key. Key ids
in the bag (compare them with the id the agency publishes):
{keys}
Events about other media appear in the segment as links only (their content withheld).

HOW TO VERIFY (on any machine; no access to the agency's systems is needed)

1. Get the agency's public key (PEM) from the agency itself, through a channel you trust
   (its published key, `evidence keys export`), not from this bag: the keys in
   data/custody/keys/ are only shown, and anyone who forged the bag could have put their
   own key there.

2. Everything, in one run (Python 3.11+, pip install cryptography):
     python3 verify_bag.py . --key AGENCY-PUBLIC-KEY.pem
   (repeat --key for an older key the agency rotated from). It checks that every file is
   the one the agency signed: the bag signature (bag-signature.json) over the manifests,
   and the EXPORTED events of the signed custody chain, which record who exported, why,
   when, and the SHA-256 of every original, proxy and metadata file; a file nothing signed
   accounts for is refused. It re-hashes the originals against their ingest events,
   recomputes every event's hash and link, checks each checkpoint's signature with the
   given key(s) only, and checks that no event about these items was withheld. Exit status
   0 means every check passed; each problem is printed with a stable code.

3. File fixity alone, with standard tools (either one; they prove integrity, not origin):
     sha256sum -c manifest-sha256.txt          (run inside this folder)
     bagit.py --validate .                     (pip install bagit)

How hashes are computed is written at the top of verify_bag.py.
"""


#: Bytes of a name safe_name keeps: file systems allow 255 (NAME_MAX), and a bag's names get
#: prefixes ("<media id>_", ".partial-…"); a dock's longest CJK name is 85 characters.
NAME_BYTES = 200


def safe_name(name: str) -> str:
    """A file name that is the same on every file system and in a BagIt manifest: letters,
    digits, '.', '_', '-', at most NAME_BYTES in UTF-8, its extension kept."""
    cleaned = re.sub(r"[^\w.\-]+", "_", name).strip("._") or "file"
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot or not stem or len(suffix) > 16:
        stem, suffix = cleaned, ""
    else:
        suffix = "." + suffix
    room = NAME_BYTES - len(suffix.encode())
    return (stem.encode()[:room].decode(errors="ignore").rstrip("._-") or "file") + suffix


def inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, refused unless it stays inside ``folder``: names in a bag come
    from stored text, and no stored text may place a file elsewhere."""
    path = folder / relative
    base = folder.resolve()
    if not path.resolve().is_relative_to(base) or path.resolve() == base:
        raise ExportError(folder, f"{relative!r} would be written outside it")
    return path


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=_plain).encode(
        "utf-8"
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__} as JSON")
