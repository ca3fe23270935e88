"""Reports to take away (issue 18, part 3): the audit trail of an item, a person or a case
(CSV, PDF), the case-file inventory (卷内目录, PDF) and the compliance report (XLSX, PDF).

``pdf`` lays pages out with a Chinese font embedded, ``xlsx`` writes a workbook from a
report's JSON; ``audit_trail``, ``inventory`` and ``compliance_report`` are the use cases. A
report of evidence metadata is an access: its custody event, naming who, why and what it
shows, is committed before its bytes are returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ExportError


@dataclass(frozen=True)
class Report:
    """A report made: its bytes and what ``--json`` says of it."""

    filename: str  # what to call it (may hold Chinese: a download says it RFC 5987's way)
    media_type: str
    data: bytes = field(repr=False)
    pages: int | None = None  # a PDF's
    event: int | None = None  # the seq of the custody event recording it (None: not evidence)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def bytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Written:
    """A report written to a file: the JSON ``evidence reports … --json`` prints."""

    path: str
    bytes: int
    pages: int | None
    sha256: str
    media_type: str
    event: int | None


def writable(path: Path) -> Path:
    """``path`` if a report may be written there (checked before the report is made and
    recorded): a report never overwrites a file."""
    if path.exists() or path.is_symlink():
        raise ExportError(path, "exists; a report never overwrites a file")
    if not path.parent.is_dir():
        raise ExportError(path, "its folder does not exist")
    return path


def write(report: Report, path: Path) -> Written:
    """Write ``report`` to a new file at ``path`` (ExportError if it exists)."""
    try:
        with path.open("xb") as out:
            out.write(report.data)
    except FileExistsError:
        raise ExportError(path, "exists; a report never overwrites a file") from None
    except OSError as exc:
        raise ExportError(path, f"cannot write the report: {exc.strerror or exc}") from exc
    return Written(
        str(path), report.bytes, report.pages, report.sha256, report.media_type, report.event
    )
