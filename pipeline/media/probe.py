"""Say what a file is: kind, container, codecs, size, and when, where and on what it was recorded.

MediaInfo does the reading (pymediainfo's wheel bundles libmediainfo; there is no ffprobe).
Documents are recognised by their content, not their name, because the archive hands us
originals under their SHA-256 with no extension. Anything that is neither media nor a known
document raises :class:`UnreadableMedia` with a reason a person can act on.
"""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

from pymediainfo import MediaInfo

from pipeline.errors import EvidenceError, UnreadableMedia
from pipeline.models import MediaKind, ProbeResult

Track = dict[str, Any]

# Tag names as pymediainfo's ``to_data()`` spells them: MediaInfo lowercases keys and drops
# punctuation, so "com.apple.quicktime.make" arrives as "comapplequicktimemake". First hit wins.
_MAKE_KEYS = ("comapplequicktimemake", "comandroidmanufacturer", "make", "manufacturer")
_MODEL_KEYS = ("comapplequicktimemodel", "comandroidmodel", "model")
_SERIAL_KEYS = ("serial_number", "serialnumber", "camera_serial_number")
_LOCATION_KEYS = ("comapplequicktimelocationiso6709", "xyz", "location", "recorded_location")

# recorded_at, best source first: the camera's own capture stamp (QuickTime creationdate keeps
# the local offset; "recorded_date" is ©day in MP4, ICRD in WAV), then the container's creation
# time (ffmpeg's creation_time tag, MP4 mvhd "encoded_date"), then the last tagging time.
_RECORDED_KEYS = (
    "comapplequicktimecreationdate",
    "recorded_date",
    "creation_time",
    "encoded_date",
    "tagged_date",
)
# encoded_at is when the container was written: mvhd creation time (or Matroska DateUTC).
_ENCODED_KEYS = ("encoded_date", "tagged_date")

# General-track fields kept as strings in ``extra``, with the name they get there.
_EXTRA_FIELDS = {
    "format_profile": "format_profile",
    "codec_id": "brand",
    "writing_application": "writing_application",
    "encoder": "encoder",
    "writing_library": "writing_library",
    "overall_bit_rate": "overall_bit_rate",
    "title": "title",
    "comment": "comment",
    "general_compliance": "compliance",
    # Raw date strings, so a later step that knows the device's time zone can reinterpret
    # a stamp written without an offset (taken as UTC here).
    "recorded_date": "recorded_date",
    "encoded_date": "encoded_date",
    "comapplequicktimecreationdate": "creationdate",
}

_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Word/Excel/WPS compound files
_SNIFF_BYTES = 4096


def probe(path: Path) -> ProbeResult:
    """Read what MediaInfo knows about ``path``.

    Raises UnreadableMedia (with a specific reason) for an empty or unreadable file, a file
    MediaInfo cannot parse, a container cut off before its media, or a file that has no audio,
    video or image track and is not a known document.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise UnreadableMedia(path, f"cannot be read: {exc.strerror}") from exc
    if size == 0:
        raise UnreadableMedia(path, "empty file (0 bytes)")

    tracks = _parse(path)
    general = _first(tracks, "General") or {}
    video = _first(tracks, "Video")
    audio = _first(tracks, "Audio")
    image = _first(tracks, "Image")
    container = _text(general.get("format"))
    truncated = general.get("istruncated") == "Yes"

    # MediaInfo reads an MP4 header even when the file stops before any media data: nothing
    # behind the tracks it lists can be played, so the file is as good as empty.
    if truncated and container == "MPEG-4" and not general.get("datasize"):
        raise UnreadableMedia(path, f"MPEG-4 file cut off before its media data ({size} bytes)")

    if video is not None:
        if not (_int(video.get("width")) or _float(video.get("duration"))):
            reason = "has a video track with no picture size or duration (truncated?)"
            raise UnreadableMedia(path, f"{container or 'file'} {reason}")
        kind = MediaKind.VIDEO
    elif audio is not None:
        kind = MediaKind.AUDIO
    elif image is not None:
        kind = MediaKind.PHOTO
    else:
        document = _document_format(path, container)
        if document is None:
            raise UnreadableMedia(path, _no_media_reason(tracks, general, container, truncated))
        return ProbeResult(kind=MediaKind.DOCUMENT, container=document, extra=_extra(general))

    # An audio file's only image is its cover art: no picture size for it.
    picture = {MediaKind.VIDEO: video, MediaKind.PHOTO: image}.get(kind)
    location = _first_location(general)
    return ProbeResult(
        kind=kind,
        container=container,
        duration_s=_duration_s(general, tracks),
        video_codec=_text(video.get("format")) if video else None,
        audio_codec=_text(audio.get("format")) if audio else None,
        width=_int(picture.get("width")) if picture else None,
        height=_int(picture.get("height")) if picture else None,
        frame_rate=_float(video.get("frame_rate")) if video else None,
        encoded_at=_first_date(general, _ENCODED_KEYS),
        recorded_at=_first_date(general, _RECORDED_KEYS),
        make=_first_text(general, _MAKE_KEYS),
        model=_first_text(general, _MODEL_KEYS),
        serial=_first_text(general, _SERIAL_KEYS),
        latitude=location[0] if location else None,
        longitude=location[1] if location else None,
        extra=_extra(general, video, audio, truncated),
    )


def _parse(path: Path) -> list[Track]:
    """MediaInfo's tracks as plain dicts; its failures become our errors."""
    try:
        info = MediaInfo.parse(path, encoding_errors="replace")
    except FileNotFoundError as exc:
        raise UnreadableMedia(path, "file vanished before it could be probed") from exc
    except OSError as exc:
        # libmediainfo itself could not be loaded: a broken installation, not a bad file, so
        # this must not quarantine anything (it is not a MediaError).
        raise EvidenceError(f"MediaInfo library could not be loaded: {exc}") from exc
    except (RuntimeError, ValueError, ParseError) as exc:
        raise UnreadableMedia(path, f"MediaInfo could not parse the file ({exc})") from exc
    return [track.to_data() for track in info.tracks]


def _first(tracks: list[Track], track_type: str) -> Track | None:
    return next((t for t in tracks if t["track_type"] == track_type), None)


def _no_media_reason(
    tracks: list[Track], general: Track, container: str | None, truncated: bool
) -> str:
    if container is None:
        return "not a media file MediaInfo recognises"
    if truncated:
        return f"{container} file is truncated and has no audio, video or image track"
    others = [t["track_type"].lower() for t in tracks if t["track_type"] != "General"]
    if others:
        only = " and ".join(others) + (" tracks" if len(others) > 1 else " track")
        return f"{container} file has no audio, video or image track, only {only}"
    mime = _text(general.get("internet_media_type")) or ""
    if mime.startswith(("video/", "audio/")):
        return f"{container} container with no audio or video track (truncated?)"
    return f"{container} file is neither media nor a known document type"


def _document_format(path: Path, container: str | None) -> str | None:
    """The document format of a file without media tracks, judged by its first bytes."""
    if container == "PDF":
        return "PDF"
    try:
        with path.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError:
        return None
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head.startswith(b"{\\rtf"):
        return "RTF"
    if head.startswith(_OLE2_MAGIC):
        return "OLE2 compound document"
    if head.startswith(b"PK\x03\x04"):
        return _zip_document_format(path)
    if _is_utf8_text(head):
        return "Text"
    return None


def _zip_document_format(path: Path) -> str | None:
    """Office Open XML, OpenDocument and OFD (GB/T 33190, the Chinese fixed-layout format used
    for government documents) are ZIP packages, told apart by a marker entry."""
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "[Content_Types].xml" in names:
        return "Office Open XML"
    if "mimetype" in names:
        return "OpenDocument"
    if "OFD.xml" in names:
        return "OFD"
    return None


def _is_utf8_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    # The sniffed block may end inside a multi-byte character: drop up to 3 trailing bytes.
    for cut in range(4):
        try:
            head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return True
    return False


def _duration_s(general: Track, tracks: list[Track]) -> float | None:
    """MediaInfo durations are milliseconds; fall back to the longest track's."""
    ms = _float(general.get("duration"))
    if ms is None:
        found = [d for t in tracks if (d := _float(t.get("duration"))) is not None]
        ms = max(found, default=None)
    return ms / 1000 if ms else None


def _first_date(general: Track, keys: tuple[str, ...]) -> datetime | None:
    for key in keys:
        value = general.get(key)
        if value is not None and (parsed := parse_date(str(value))) is not None:
            return parsed
    return None


def parse_date(text: str) -> datetime | None:
    """A MediaInfo date as an aware UTC datetime, or None if it is not a full date and time.

    Accepts "2026-05-05 08:30:00 UTC", the older "UTC 2026-05-05 08:30:00", ISO 8601 with "Z"
    or an offset. A stamp without an offset is taken as UTC, as MP4 defines its times; the raw
    string stays in ``extra``. A bare date or year is refused: too coarse to attribute a
    recording to an officer's shift.
    """
    value = text.split(" / ")[0].strip().removeprefix("UTC ").removesuffix(" UTC")
    if len(value) <= len("YYYY-MM-DD"):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC)


def _first_location(general: Track) -> tuple[float, float] | None:
    for key in _LOCATION_KEYS:
        value = general.get(key)
        if value is not None and (parsed := parse_iso6709(str(value))) is not None:
            return parsed
    return None


_ISO6709 = re.compile(r"([+-]\d+(?:\.\d*)?)([+-]\d+(?:\.\d*)?)")


def parse_iso6709(text: str) -> tuple[float, float] | None:
    """Latitude and longitude from an ISO 6709 string such as "+39.9042+116.4074+044.000/".

    The standard writes each angle as degrees (±DD.D), degrees and minutes (±DDMM.M) or degrees,
    minutes and seconds (±DDMMSS.S); the count of integer digits says which. (0, 0) is refused:
    recorders write it when they have no GPS fix.
    """
    match = _ISO6709.match(text.strip())
    if match is None:
        return None
    lat = _angle(match[1], degree_digits=2)
    lon = _angle(match[2], degree_digits=3)
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or lat == lon == 0:
        return None
    return lat, lon


def _angle(text: str, degree_digits: int) -> float | None:
    sign = -1.0 if text[0] == "-" else 1.0
    digits = len(text[1:].partition(".")[0])
    value = float(text[1:])
    if digits == degree_digits:
        return sign * value
    if digits == degree_digits + 2:
        degrees, minutes = divmod(value, 100)
        return sign * (degrees + minutes / 60)
    if digits == degree_digits + 4:
        degrees, rest = divmod(value, 10000)
        minutes, seconds = divmod(rest, 100)
        return sign * (degrees + minutes / 60 + seconds / 3600)
    return None


def _extra(
    general: Track, video: Track | None = None, audio: Track | None = None, truncated: bool = False
) -> dict[str, str]:
    extra = {
        name: value
        for key, name in _EXTRA_FIELDS.items()
        if (value := _text(general.get(key))) is not None
    }
    if video is not None and _float(video.get("rotation")):
        # Phones and some recorders store portrait video sideways with a rotation flag.
        extra["rotation"] = str(video["rotation"])
    if audio is not None:
        for key, name in (
            ("channel_s", "audio_channels"),
            ("sampling_rate", "audio_sampling_rate"),
        ):
            if key in audio:
                extra[name] = str(audio[key])
    if truncated:
        extra["truncated"] = "yes"
    return extra


def _first_text(general: Track, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if (value := _text(general.get(key))) is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _float(value: Any) -> float | None:
    """MediaInfo gives numbers as int, or as strings such as "25.000" or "1000.000000"."""
    try:
        return float(str(value).split(" / ")[0]) if value is not None else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None else None
