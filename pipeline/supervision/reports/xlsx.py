"""A report's tables as a workbook (openpyxl): a sheet per section, its header row in zh-CN
and the JSON's key, numbers as numbers, shares as percentages.

The cells hold the JSON's values unchanged (a share 0.875 is the number 0.875, formatted
87.5%), so that the workbook says exactly what ``--json`` says. Text is always written as
text: a department or a problem that begins with "=" is never a formula.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from pipeline.supervision.reports.tables import Section

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: Characters a sheet's name may not hold, and its longest length (Excel's rules).
_NOT_IN_NAME = re.compile(r"[\[\]:*?/\\]")
_NAME_MAX = 31
_HEAD_FILL = PatternFill("solid", fgColor="34495E")
_HEAD_FONT = Font(bold=True, color="FFFFFF")
_WRAP = Alignment(wrap_text=True, vertical="top")


def sheet_name(section: Section, taken: set[str]) -> str:
    """The section's title as a sheet name Excel takes, unique in the workbook."""
    base = _NOT_IN_NAME.sub("_", section.title)[:_NAME_MAX] or "sheet"
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        suffix = f" {n}"
        name = base[: _NAME_MAX - len(suffix)] + suffix
    taken.add(name.casefold())
    return name


def workbook(sections: Sequence[Section], *, title: str, made_at: datetime) -> bytes:
    """The workbook's bytes: a sheet per section, in order."""
    book = Workbook()
    book.remove(book.active)
    book.properties.title = title
    book.properties.creator = "evidence-pipeline"
    # The file says when it was made, not when openpyxl ran: the same report, the same date.
    book.properties.created = book.properties.modified = made_at.astimezone(UTC).replace(
        tzinfo=None
    )
    taken: set[str] = set()
    for section in sections:
        sheet = book.create_sheet(sheet_name(section, taken))
        widths = [len(c.label) for c in section.columns]
        for col, column in enumerate(section.columns, 1):
            cell = sheet.cell(1, col, column.label)
            cell.fill, cell.font, cell.alignment = _HEAD_FILL, _HEAD_FONT, _WRAP
        for r, row in enumerate(section.rows):
            for c, value in enumerate(row):
                cell = sheet.cell(r + 2, c + 1)
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever the text begins with
                    cell.alignment = _WRAP
                    widths[c] = max(widths[c], *(len(line) for line in value.splitlines() or [""]))
                elif section.percent(r, c) and isinstance(value, int | float):
                    cell.number_format = "0.0%"
                else:
                    widths[c] = max(widths[c], len(str(value)))
        for c, width in enumerate(widths, 1):
            # CJK characters are about twice as wide as Latin ones.
            sheet.column_dimensions[get_column_letter(c)].width = min(60, 4 + width * 1.6)
        sheet.freeze_panes = "A2"
        if section.rows:
            last = get_column_letter(len(section.columns))
            sheet.auto_filter.ref = f"A1:{last}{len(section.rows) + 1}"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
