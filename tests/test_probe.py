"""probe() on tiny real files made by ffmpeg, and on broken ones made the way recorders break."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import ffmpeg
import pytest

from interfaces import synth
from pipeline.errors import UnreadableMedia
from pipeline.media.probe import parse_date, parse_iso6709, probe
from pipeline.media.transcode import find_ffmpeg, run_ffmpeg
from pipeline.models import MediaKind

RECORDED = datetime(2026, 5, 5, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def test_video_with_tags_and_a_chinese_name(media: Path) -> None:
    clip = synth.make_video(
        media / "执法 记录 001.mp4", creation_time=RECORDED, make="Hikvision", model="DSJ-V5"
    )

    result = probe(clip)

    assert result.kind is MediaKind.VIDEO
    assert result.container == "MPEG-4"
    assert result.duration_s == pytest.approx(1.0, abs=0.05)
    assert (result.video_codec, result.audio_codec) == ("AVC", "AAC")
    assert (result.width, result.height) == (320, 240)
    assert result.frame_rate == pytest.approx(25.0)
    assert result.recorded_at == RECORDED
    assert result.encoded_at == RECORDED
    assert result.recorded_at is not None and result.recorded_at.tzinfo is not None
    assert (result.make, result.model) == ("Hikvision", "DSJ-V5")
    assert result.extra["brand"] == "isom"


def test_quicktime_tags_give_device_place_and_capture_time(media: Path) -> None:
    # The camera's own capture stamp (local time with offset) wins over the file's creation time.
    clip = synth.make_video(
        media / "iphone.mov",
        seconds=0.5,
        creation_time=datetime(2026, 5, 5, 9, 0, tzinfo=UTC),
        tags={
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 15",
            "com.apple.quicktime.location.ISO6709": "+39.9042+116.4074+044.000/",
            "com.apple.quicktime.creationdate": "2026-05-05T16:30:00+0800",
        },
    )

    result = probe(clip)

    assert (result.make, result.model) == ("Apple", "iPhone 15")
    assert result.latitude == pytest.approx(39.9042)
    assert result.longitude == pytest.approx(116.4074)
    assert result.recorded_at == RECORDED
    assert result.encoded_at == datetime(2026, 5, 5, 9, 0, tzinfo=UTC)


def test_video_without_audio(media: Path) -> None:
    result = probe(synth.make_video(media / "silent.mp4", seconds=0.5, audio=False))

    assert result.kind is MediaKind.VIDEO
    assert result.audio_codec is None
    assert result.recorded_at is None


@pytest.mark.parametrize(("name", "codec"), [("voice.m4a", "AAC"), ("voice.wav", "PCM")])
def test_audio(media: Path, name: str, codec: str) -> None:
    result = probe(synth.make_audio(media / name, creation_time=RECORDED))

    assert result.kind is MediaKind.AUDIO
    assert result.audio_codec == codec
    assert result.video_codec is None and result.width is None
    assert result.duration_s == pytest.approx(1.0, abs=0.05)
    assert result.recorded_at == RECORDED


def test_photo(media: Path) -> None:
    result = probe(synth.make_photo(media / "scene.jpg", width=160, height=120))

    assert result.kind is MediaKind.PHOTO
    assert result.container == "JPEG"
    assert (result.width, result.height) == (160, 120)
    assert result.duration_s is None


def test_documents_are_known_by_content_not_name(media: Path) -> None:
    # The archive probes originals stored under their hash, with no extension.
    pdf = synth.make_pdf(media / "a1b2c3", "现场笔录 No. 2026-0113")
    text = media / "d4e5f6"
    text.write_text("文字说明：执法记录仪 BWC-17，2026年5月5日。\n", encoding="utf-8")
    docx = media / "0a9b8c"
    with zipfile.ZipFile(docx, "w") as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        package.writestr("word/document.xml", "<w:document/>")

    found = {path.name: probe(path) for path in (pdf, text, docx)}

    assert {name: r.kind for name, r in found.items()} == dict.fromkeys(found, MediaKind.DOCUMENT)
    assert [r.container for r in found.values()] == ["PDF", "Text", "Office Open XML"]


def _random_bytes(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


@pytest.mark.parametrize(
    ("make", "name", "reason"),
    [
        (synth.make_truncated_mp4, "cut.mp4", "MPEG-4 file is truncated and has no audio, video"),
        (synth.make_header_only_mp4, "header.mp4", "MPEG-4 container with no audio or video"),
        (synth.make_empty, "empty.mp4", "empty file (0 bytes)"),
        (_random_bytes, "noise.mp4", "not a media file MediaInfo recognises"),
        (_random_bytes, "noise.pdf", "not a media file MediaInfo recognises"),
    ],
)
def test_unreadable_files_say_why(
    media: Path, make: Callable[[Path], Path], name: str, reason: str
) -> None:
    path = make(media / name)

    with pytest.raises(UnreadableMedia) as caught:
        probe(path)

    assert caught.value.reason.startswith(reason)
    assert caught.value.path == path
    assert name in str(caught.value)


def test_mp4_cut_before_its_media_data(tmp_path: Path) -> None:
    # A faststart MP4 (moov first) cut inside moov: MediaInfo still lists a video track,
    # but there is nothing behind it to play.
    clip = synth.make_video(tmp_path / "clip.mp4", seconds=0.5)
    faststart = tmp_path / "faststart.mp4"
    remux = ffmpeg.input(str(clip)).output(str(faststart), c="copy", movflags="+faststart")
    run_ffmpeg([find_ffmpeg(""), *remux.get_args()], timeout_s=30, subject=clip)
    os.truncate(faststart, 1000)

    with pytest.raises(UnreadableMedia, match="cut off before its media data"):
        probe(faststart)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableMedia, match="cannot be read"):
        probe(tmp_path / "gone.mp4")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-05 08:30:00 UTC", RECORDED),
        ("UTC 2026-05-05 08:30:00", RECORDED),
        ("2026-05-05T08:30:00Z", RECORDED),
        ("2026-05-05T16:30:00+0800", RECORDED),
        ("2026-05-05 16:30:00+08:00", RECORDED),
        ("2026-05-05 08:30:00", RECORDED),  # no offset: UTC, as MP4 defines it
        ("2026-05-05 08:30:00 UTC / 2026-05-05 08:30:00 UTC", RECORDED),
        ("2026-05-05", None),
        ("2026", None),
        ("yesterday", None),
    ],
)
def test_parse_date(text: str, expected: datetime | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+39.9042+116.4074/", (39.9042, 116.4074)),
        ("+39.9042+116.4074+044.000/", (39.9042, 116.4074)),
        ("-33.8688+151.2093/", (-33.8688, 151.2093)),
        ("+3954.252+11624.444/", (39.9042, 116.4074)),  # degrees and minutes
        ("+395415.12-0122432.4/", (39.9042, -12.409)),  # degrees, minutes, seconds
        ("+00.0000+000.0000/", None),  # no GPS fix
        ("+91.0+116.0/", None),
        ("somewhere", None),
    ],
)
def test_parse_iso6709(text: str, expected: tuple[float, float] | None) -> None:
    found = parse_iso6709(text)
    if expected is None:
        assert found is None
    else:
        assert found == pytest.approx(expected, abs=1e-5)
