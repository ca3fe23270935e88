"""Printable pages: the layout every PDF report shares, with a Chinese font embedded.

A report is read on paper, in court, on a machine that has no Chinese font: the font's glyphs
go into the file (reportlab embeds the subset of a TrueType font the text uses, as
``/FontFile2``). It is a file on this machine, named by ``reports.font_file`` or found among
the usual Debian fonts, never fetched from anywhere; without one the report is refused with
what to install (:class:`FontMissing`). PostScript-flavoured OpenType (the ``.otf``/``.ttc``
of Noto Sans CJK) cannot be embedded by reportlab and is passed over, said so in the error.

Every page carries the agency and the report's title at the top, and at the bottom the time
the report was made, in local time with the zone named, and "第 N 页 / 共 M 页" (the total
is known only once every page is laid out: the pages are kept and numbered at the end).
Tables wrap long text (hashes and Latin without spaces too) and repeat their header on each
page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from pipeline.errors import ConfigError
from pipeline.settings import Settings

#: Fonts tried, in order, when ``reports.font_file`` is empty: Debian's packages of
#: TrueType fonts with Chinese glyphs. (Noto Sans CJK is listed for the error's sake: its
#: outlines are PostScript, which reportlab does not embed.)
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
)

INSTALL_HINT = "apt-get install fonts-wqy-microhei"

#: The font is known to the PDFs by this name (one font: headings differ by size).
FONT = "ReportCJK"

PORTRAIT = A4
LANDSCAPE = landscape(A4)
MARGIN = 15 * mm

# What a PDF cannot show and a paragraph parser must not see: C0/C1 controls, lone
# surrogates (a file name's undecodable bytes), bidirectional controls.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


#: Lines a table's cell holds at most (at a CJK character per font size of its width): a
#: row must fit on one page, at most 48 lines of a landscape page.
CELL_LINES = 36


def _cut(value: object, cap: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= cap else text[: max(cap - 8, 1)] + "…（截断 cut）"


class FontMissing(ConfigError):
    """No usable font with Chinese glyphs: a PDF report would print boxes, or nothing."""

    code = "font-missing"


def font_file(settings: Settings) -> Path:
    """The font file reports embed: ``reports.font_file``, else the first usable candidate;
    FontMissing names what was tried and what to install."""
    named = settings.reports.font_file.strip()
    tried = [Path(named).expanduser()] if named else list(FONT_CANDIDATES)
    problems = []
    for path in tried:
        if not path.is_file():
            problems.append(f"{path}: not found")
            continue
        try:
            _register(str(path))
        except (TTFError, OSError, ValueError) as exc:
            problems.append(f"{path}: cannot be embedded ({exc})")
            continue
        return path
    where = "reports.font_file" if named else "none of the usual fonts"
    raise FontMissing(
        f"PDF 报表需要中文字体 (a PDF report needs a font with Chinese glyphs): {where} is "
        f"usable: {'; '.join(problems)}. Install one: `{INSTALL_HINT}`, or name a TrueType "
        "font (.ttf/.ttc) in reports.font_file"
    )


@cache
def _register(path: str) -> str:
    """Register the font at ``path`` (the first face of a collection) once per process."""
    name = f"{FONT}-{len(pdfmetrics.getRegisteredFontNames())}"
    pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
    return name


def safe(value: object) -> str:
    """Stored text as a paragraph's markup: escaped, controls shown as ``\\xNN``."""
    text = _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if value is None else str(value))
    return escape(text).replace("\n", "<br/>")


@dataclass(frozen=True)
class Styles:
    """The paragraph styles of one font."""

    font: str

    def _style(self, name: str, size: float, **more: Any) -> ParagraphStyle:
        # CJK wrapping breaks between any two characters: Chinese has no spaces, and a
        # SHA-256 or a file name must wrap inside its cell rather than overflow it.
        return ParagraphStyle(
            name, fontName=self.font, fontSize=size, leading=size * 1.3, wordWrap="CJK", **more
        )

    @property
    def title(self) -> ParagraphStyle:
        return self._style("title", 16, spaceAfter=4 * mm)

    @property
    def heading(self) -> ParagraphStyle:
        return self._style("heading", 12, spaceBefore=4 * mm, spaceAfter=2 * mm)

    @property
    def body(self) -> ParagraphStyle:
        return self._style("body", 9.5, spaceAfter=1.5 * mm)

    @property
    def cell(self) -> ParagraphStyle:
        return self._style("cell", 7.5)

    @property
    def head(self) -> ParagraphStyle:
        return self._style("head", 7.5, textColor=colors.white)


@dataclass(frozen=True)
class Layout:
    """What every page of one report says around its content."""

    title: str  # zh-CN first: "监督日志 Audit trail"
    agency: str
    generated_at: datetime
    zone: ZoneInfo
    pagesize: tuple[float, float] = PORTRAIT

    @property
    def generated(self) -> str:
        local = self.generated_at.astimezone(self.zone)
        return f"生成于 generated {local:%Y-%m-%d %H:%M:%S} {self.zone.key}（UTC{local:%z}）"


class Pages:
    """A report being laid out: paragraphs and tables in order, then :meth:`render`."""

    def __init__(self, layout: Layout, font: str) -> None:
        self.layout = layout
        self.styles = Styles(font)
        self.font = font
        self.story: list[Flowable] = []

    @property
    def width(self) -> float:
        """The width between the margins."""
        return self.layout.pagesize[0] - 2 * MARGIN

    def title(self, text: str) -> None:
        self.story.append(Paragraph(safe(text), self.styles.title))

    def heading(self, text: str) -> None:
        # Never alone at the foot of a page: a new page unless some lines fit below it.
        self.story.append(CondPageBreak(30 * mm))
        self.story.append(Paragraph(safe(text), self.styles.heading))

    def text(self, text: str, *, color: str | None = None) -> None:
        shown = safe(text)
        if color:
            shown = f'<font color="{color}">{shown}</font>'
        self.story.append(Paragraph(shown, self.styles.body))

    def space(self, height: float = 3 * mm) -> None:
        self.story.append(Spacer(1, height))

    def fields(self, rows: Sequence[tuple[str, object]], label_share: float = 0.25) -> None:
        """A table of label and value, e.g. a case's header."""
        cell = self.styles.cell
        data = [[Paragraph(safe(k), cell), Paragraph(safe(v), cell)] for k, v in rows]
        table = Table(
            data,
            colWidths=[self.width * label_share, self.width * (1 - label_share)],
            hAlign="LEFT",
        )
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),  # else Helvetica, not embedded
                    ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                    ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eef1f5")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        self.story.append(KeepTogether(table))

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[object]], shares: Sequence[float]
    ) -> None:
        """A table whose header repeats on every page, each column ``shares`` of the width
        (normalised), every cell wrapped, and cut (…) where it would be taller than a page:
        a table's row cannot go on over the next page, so a report prints long text whole
        below its table (:meth:`text`)."""
        total = sum(shares)
        widths = [self.width * s / total for s in shares]
        cell, head = self.styles.cell, self.styles.head
        caps = [int(CELL_LINES * w / cell.fontSize) for w in widths]
        data: list[list[Any]] = [[Paragraph(safe(h), head) for h in header]]
        data += [
            [Paragraph(safe(_cut(v, cap)), cell) for v, cap in zip(row, caps, strict=True)]
            for row in rows
        ]
        if not rows:
            data.append([Paragraph("（无 none）", cell)] + [""] * (len(header) - 1))
        # (reportlab's splitInRow, which would split a tall row, draws the header a second
        # time on the page where it splits one.)
        table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
        style = [
            ("FONTNAME", (0, 0), (-1, -1), self.font),  # else Helvetica, not embedded
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#34495e")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ]
        style += [
            ("BACKGROUND", (0, r), (-1, r), colors.HexColor("#f6f7f9"))
            for r in range(2, len(data), 2)
        ]
        if not rows:
            style.append(("SPAN", (0, 1), (-1, 1)))
        table.setStyle(TableStyle(style))
        self.story.append(table)

    def render(self) -> tuple[bytes, int]:
        """The PDF's bytes and its number of pages."""
        out = io.BytesIO()
        layout, font = self.layout, self.font
        pages: list[int] = []

        def canvas(*args: Any, **kwargs: Any) -> Canvas:
            return _NumberedCanvas(*args, layout=layout, font=font, counted=pages, **kwargs)

        doc = SimpleDocTemplate(
            out,
            pagesize=layout.pagesize,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN + 8 * mm,
            bottomMargin=MARGIN + 6 * mm,
            title=layout.title,
            author=layout.agency or "evidence-pipeline",
            subject=layout.generated,
            creator="evidence-pipeline (执法全过程记录)",
            lang="zh-CN",
            # The initial font is ours: no page refers to a standard font it does not embed.
            initialFontName=font,
            initialFontSize=9,
        )
        doc.build(list(self.story), canvasmaker=canvas)
        return out.getvalue(), pages[0]


class _NumberedCanvas(Canvas):
    """Keeps every page until the end, then draws each page's header and footer knowing how
    many pages there are ("第 N 页 / 共 M 页")."""

    def __init__(
        self, *args: Any, layout: Layout, font: str, counted: list[int], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._layout = layout
        self._font = font
        self._counted = counted
        self._kept: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._kept.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._kept)
        for state in self._kept:
            self.__dict__.update(state)
            self._decorate(total)
            super().showPage()
        self._counted.append(total)
        super().save()

    def _decorate(self, total: int) -> None:
        layout = self._layout
        width, height = layout.pagesize
        top, bottom = height - MARGIN, MARGIN
        self.saveState()
        self.setFont(self._font, 9)
        self.setFillColor(colors.HexColor("#333333"))
        self.drawString(MARGIN, top, _plain(layout.agency))
        self.drawRightString(width - MARGIN, top, _plain(layout.title))
        self.setStrokeColor(colors.grey)
        self.setLineWidth(0.5)
        self.line(MARGIN, top - 2 * mm, width - MARGIN, top - 2 * mm)
        self.line(MARGIN, bottom + 4 * mm, width - MARGIN, bottom + 4 * mm)
        self.setFont(self._font, 8)
        self.drawString(MARGIN, bottom, layout.generated)
        self.drawRightString(width - MARGIN, bottom, f"第 {self._pageNumber} 页 / 共 {total} 页")
        self.restoreState()


def _plain(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def pages_for(settings: Settings, title: str, now: datetime, *, wide: bool = False) -> Pages:
    """A report laid out with the instance's font and agency, made at ``now``
    (FontMissing before anything is recorded, when there is no font)."""
    font = _register(str(font_file(settings)))
    layout = Layout(
        title, settings.reports.agency, now, settings.zone, LANDSCAPE if wide else PORTRAIT
    )
    return Pages(layout, font)
