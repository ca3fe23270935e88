"""Small, realistic recorder media made with the real ffmpeg, for the demo and the tests.

Each file is tiny and quick to make. Videos are written the way recorders write them: the moov
box at the end (no faststart), creation time and device tags in the container. The broken ones
are broken the way real ones are: a recording cut off before its moov box was written, a file
that is only a header, an empty file.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import ffmpeg

from pipeline.media.transcode import find_ffmpeg, metadata_options, run_ffmpeg

_TIMEOUT_S = 60.0


def make_video(
    path: Path,
    seconds: float = 1.0,
    width: int = 320,
    height: int = 240,
    audio: bool = True,
    creation_time: datetime | None = None,
    make: str | None = None,
    model: str | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """An H.264 (+ AAC tone) MP4 of a test pattern. ``tags`` adds container tags by their
    ffmpeg names, e.g. ``{"com.apple.quicktime.location.ISO6709": "+39.9042+116.4074/"}``."""
    picture = ffmpeg.input(
        f"testsrc2=size={width}x{height}:rate=25:duration={seconds}", format="lavfi"
    )
    streams = [picture]
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency=440:duration={seconds}", format="lavfi"))
    device = {key: value for key, value in (("make", make), ("model", model)) if value}
    all_tags = {**_stamp(creation_time), **device, **(tags or {})}
    # MP4 keeps tags it has no atom for (make, model, ...) only with use_metadata_tags.
    options = {
        "vcodec": "libx264",
        "preset": "ultrafast",
        "pix_fmt": "yuv420p",
        "acodec": "aac",
        "movflags": "+use_metadata_tags",
        **metadata_options(all_tags),
    }
    _run(ffmpeg.output(*streams, str(path), **options), path)
    return path


def make_audio(path: Path, seconds: float = 1.0, creation_time: datetime | None = None) -> Path:
    """A tone: AAC in an MP4 container (``.m4a``), or 16-bit PCM if ``path`` ends in ``.wav``."""
    tone = ffmpeg.input(f"sine=frequency=440:duration={seconds}", format="lavfi")
    if path.suffix.lower() == ".wav":
        # WAV has no creation time; its INFO "date" (ICRD) is what MediaInfo calls recorded date.
        date = _stamp(creation_time).get("creation_time")
        options = {"acodec": "pcm_s16le", **metadata_options({"date": date} if date else {})}
    else:
        options = {"format": "mp4", "acodec": "aac", **metadata_options(_stamp(creation_time))}
    _run(tone.output(str(path), **options), path)
    return path


def make_photo(path: Path, width: int = 320, height: int = 240) -> Path:
    """A JPEG of the test pattern."""
    pattern = ffmpeg.input(f"testsrc2=size={width}x{height}:rate=1", format="lavfi")
    options = {"format": "image2", "vcodec": "mjpeg", "frames:v": 1, "update": 1}
    _run(pattern.output(str(path), **options), path)
    return path


def make_truncated_mp4(path: Path) -> Path:
    """A recording cut off mid-way, as when a recorder loses power: a real MP4 whose moov box
    (written last) never made it, cut in the middle of its media data."""
    make_video(path)
    offsets = dict(top_level_boxes(path))
    with path.open("r+b") as f:
        f.truncate(offsets["moov"] // 2)
    return path


def make_header_only_mp4(path: Path) -> Path:
    """Only an ftyp box (32 bytes): the first write of a recording and nothing after it."""
    compatible = b"isomiso2avc1mp41"
    header = struct.pack(">I4s4sI", 16 + len(compatible), b"ftyp", b"isom", 0x200)
    path.write_bytes(header + compatible)
    return path


def make_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def make_pdf(path: Path, text: str) -> Path:
    """A valid one-page A4 PDF showing ``text`` in one line, written by hand.

    The text is set in STSong-Light, one of the CJK fonts every PDF reader must supply
    (no embedding), so Chinese as well as Latin text shows: UCS-2 hex, so the BMP only.
    """
    shown = text.encode("utf-16-be", errors="replace").hex().upper()
    content = f"BT /F1 14 Tf 56 780 Td <{shown}> Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 7 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H "
        b"/DescendantFonts [5 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /FontDescriptor 6 0 R "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 2 >> >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    path.write_bytes(bytes(out))
    return path


def top_level_boxes(path: Path) -> list[tuple[str, int]]:
    """The top-level boxes of an MP4 file, as (type, offset), in file order. Stops at a box
    that runs past the end of the file (a truncated one)."""
    boxes: list[tuple[str, int]] = []
    size = path.stat().st_size
    with path.open("rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            length, kind = struct.unpack(">I4s", f.read(8))
            if length == 1:  # 64-bit size follows the type
                (length,) = struct.unpack(">Q", f.read(8))
            elif length == 0:  # box runs to the end of the file
                length = size - offset
            if length < 8 or offset + length > size:
                break
            boxes.append((kind.decode("latin-1"), offset))
            offset += length
    return boxes


def _stamp(creation_time: datetime | None) -> dict[str, str]:
    if creation_time is None:
        return {}
    return {"creation_time": creation_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def _run(stream: ffmpeg.nodes.OutputStream, path: Path) -> None:
    args = [find_ffmpeg(""), *stream.get_args()]
    run_ffmpeg(args, timeout_s=_TIMEOUT_S, subject=path)
