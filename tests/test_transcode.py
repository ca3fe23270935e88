"""Proxies, thumbnails and the decode check, made by the real ffmpeg from tiny synthetic clips."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ffmpeg
import pytest

from interfaces import synth
from pipeline.errors import FfmpegNotFound, TranscodeError, TranscoderUnusable
from pipeline.media import transcode
from pipeline.media.probe import probe
from pipeline.models import MediaKind, ProbeResult
from pipeline.settings import TranscodeSettings

RECORDED = datetime(2026, 5, 5, 8, 30, tzinfo=UTC)
# model_validate rather than the constructor: mypy without the pydantic plugin takes fields
# declared as Field(<default>, ...) for required ones.
SETTINGS = TranscodeSettings.model_validate({"max_height": 144, "thumbnail_width": 160})


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def hd_clip(media: Path) -> Path:
    """A 1280x720 recorder clip with a creation time, under a name with spaces and Chinese."""
    return synth.make_video(
        media / "执法 记录 001.mp4", width=1280, height=720, creation_time=RECORDED
    )


def test_video_proxy_is_small_h264_aac_faststart_and_keeps_the_time(
    hd_clip: Path, tmp_path: Path
) -> None:
    proxy = tmp_path / "proxy.mp4"
    fractions: list[float] = []

    transcode.make_proxy(hd_clip, proxy, probe(hd_clip), SETTINGS, on_progress=fractions.append)

    result = probe(proxy)
    assert (result.width, result.height) == (256, 144)
    assert (result.video_codec, result.audio_codec) == ("AVC", "AAC")
    boxes = [name for name, _ in synth.top_level_boxes(proxy)]
    assert boxes.index("moov") < boxes.index("mdat")
    assert result.recorded_at == RECORDED
    assert fractions[-1] == 1.0
    assert sorted(tmp_path.iterdir()) == [proxy]  # no temporary file left beside it
    transcode.check_decodes(proxy, SETTINGS)


@pytest.mark.parametrize(
    ("size", "max_height", "expected"),
    [
        ((320, 240), 720, (320, 240)),  # never upscaled
        ((240, 426), 144, (82, 144)),  # portrait: height bounded, width kept even
    ],
)
def test_proxy_size(
    tmp_path: Path, size: tuple[int, int], max_height: int, expected: tuple[int, int]
) -> None:
    src = synth.make_video(tmp_path / "src.mp4", seconds=0.5, width=size[0], height=size[1])
    proxy = tmp_path / "proxy.mp4"

    settings = SETTINGS.model_copy(update={"max_height": max_height})
    transcode.make_proxy(src, proxy, probe(src), settings)

    assert (probe(proxy).width, probe(proxy).height) == expected


def test_video_without_audio_gets_a_silent_proxy(tmp_path: Path) -> None:
    src = synth.make_video(tmp_path / "silent.mp4", seconds=0.5, audio=False)
    proxy = tmp_path / "proxy.mp4"

    transcode.make_proxy(src, proxy, probe(src), SETTINGS)

    assert probe(proxy).audio_codec is None
    assert probe(proxy).video_codec == "AVC"


@pytest.mark.parametrize("name", ["voice.wav", "voice.m4a"])
def test_audio_proxy_is_aac_in_mp4(media: Path, tmp_path: Path, name: str) -> None:
    src = synth.make_audio(media / name, creation_time=RECORDED)
    proxy = tmp_path / "proxy.m4a"

    transcode.make_proxy(src, proxy, probe(src), SETTINGS)

    result = probe(proxy)
    assert result.kind is MediaKind.AUDIO
    assert (result.container, result.audio_codec) == ("MPEG-4", "AAC")
    assert result.recorded_at == RECORDED
    transcode.check_decodes(proxy, SETTINGS)


def test_thumbnail_of_a_video(hd_clip: Path, tmp_path: Path) -> None:
    thumb = tmp_path / "thumbnail.jpg"

    transcode.make_thumbnail(hd_clip, thumb, probe(hd_clip), SETTINGS)

    assert thumb.read_bytes()[:2] == b"\xff\xd8"
    result = probe(thumb)
    assert (result.kind, result.container) == (MediaKind.PHOTO, "JPEG")
    assert (result.width, result.height) == (160, 90)


def test_thumbnail_of_a_photo(tmp_path: Path) -> None:
    photo = synth.make_photo(tmp_path / "scene.jpg", width=320, height=240)
    thumb = tmp_path / "thumbnail.jpg"

    transcode.make_thumbnail(photo, thumb, probe(photo), SETTINGS)

    assert (probe(thumb).width, probe(thumb).height) == (160, 120)


def test_undecodable_input_names_the_file_and_leaves_nothing(tmp_path: Path) -> None:
    src = synth.make_truncated_mp4(tmp_path / "cut off.mp4")
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(TranscodeError) as caught:
        transcode.make_proxy(src, out / "proxy.mp4", ProbeResult(kind=MediaKind.VIDEO), SETTINGS)

    assert caught.value.path == src
    assert "cut off.mp4" in str(caught.value)
    assert "moov atom not found" in caught.value.reason
    assert list(out.iterdir()) == []


def test_check_decodes_rejects_a_corrupt_file(tmp_path: Path) -> None:
    clip = synth.make_video(tmp_path / "corrupt.mp4", seconds=0.5)
    data = bytearray(clip.read_bytes())
    mdat = dict(synth.top_level_boxes(clip))["mdat"]
    for i in range(mdat + 2000, mdat + 20000, 97):  # damage the media data, not the index
        data[i] ^= 0xFF
    clip.write_bytes(bytes(data))

    with pytest.raises(TranscodeError, match=r"corrupt\.mp4"):
        transcode.check_decodes(clip, SETTINGS)


def test_timeout_stops_ffmpeg(hd_clip: Path, tmp_path: Path) -> None:
    hasty = SETTINGS.model_copy(update={"timeout_s": 0.001})

    with pytest.raises(TranscodeError, match=r"did not finish within 0\.001 s") as caught:
        transcode.make_proxy(hd_clip, tmp_path / "proxy.mp4", probe(hd_clip), hasty)

    assert caught.value.path == hd_clip
    assert list(tmp_path.iterdir()) == []


def test_progress_fractions_increase_to_one() -> None:
    # Read a 1 s pattern at real time (after ffmpeg's 0.5 s initial burst), reporting every 0.1 s.
    pattern = ffmpeg.input("testsrc2=size=64x48:rate=25:duration=1", format="lavfi", re=None)
    args = pattern.output("-", format="null").get_args()
    fractions: list[float] = []

    transcode.run_ffmpeg(
        [transcode.find_ffmpeg(""), "-stats_period", "0.1", *args],
        timeout_s=10,
        on_progress=fractions.append,
        duration_s=1.0,
        subject=Path("pattern"),
    )

    assert len(fractions) >= 3
    assert fractions == sorted(set(fractions))
    assert fractions[0] > 0 and fractions[-1] == 1.0


def test_empty_output_is_a_failure(tmp_path: Path) -> None:
    out = tmp_path / "frames.raw"
    pattern = ffmpeg.input("testsrc2=size=64x48:duration=1", format="lavfi")
    args = pattern.output(str(out), t=0, format="rawvideo").get_args()

    with pytest.raises(TranscodeError, match="empty output"):
        transcode.run_ffmpeg([transcode.find_ffmpeg(""), *args], timeout_s=10, subject=out)


def test_bogus_configured_ffmpeg(tmp_path: Path) -> None:
    with pytest.raises(FfmpegNotFound, match="no-such-ffmpeg"):
        transcode.find_ffmpeg(str(tmp_path / "no-such-ffmpeg"))


def test_default_ffmpeg_is_imageio_build() -> None:
    assert Path(transcode.find_ffmpeg("")).is_file()


@pytest.mark.parametrize(
    ("kind", "suffix", "thumbnail"),
    [
        (MediaKind.VIDEO, ".mp4", True),
        (MediaKind.AUDIO, ".m4a", False),
        (MediaKind.PHOTO, None, True),
        (MediaKind.DOCUMENT, None, False),
        (MediaKind.OTHER, None, False),
    ],
)
def test_what_each_kind_gets(kind: MediaKind, suffix: str | None, thumbnail: bool) -> None:
    assert transcode.proxy_suffix(kind) == suffix
    assert transcode.wants_thumbnail(kind) is thumbnail


# ------------------------------------------------------------------------------ self-test


@pytest.mark.parametrize("derivative", list(transcode.Derivative))
def test_the_self_test_passes_with_a_working_ffmpeg_and_leaves_nothing(
    tmp_path: Path, derivative: transcode.Derivative
) -> None:
    tests = transcode.SelfTests()

    tests.check(derivative, SETTINGS, tmp_path)

    assert tests.runs == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("derivative", "changes", "complaint"),
    [
        (transcode.Derivative.VIDEO_PROXY, {"preset": "nonsense"}, "invalid preset 'nonsense'"),
        (transcode.Derivative.AUDIO_PROXY, {"audio_bitrate": "abc"}, 'value "abc"'),
        (transcode.Derivative.THUMBNAIL, {"timeout_s": 0.001}, "did not finish within 0.001 s"),
    ],
)
def test_the_self_test_names_the_binary_the_setting_and_the_complaint(
    tmp_path: Path,
    derivative: transcode.Derivative,
    changes: dict[str, object],
    complaint: str,
) -> None:
    settings = SETTINGS.model_copy(update=changes)

    with pytest.raises(TranscoderUnusable) as caught:
        transcode.SelfTests().check(derivative, settings, tmp_path)

    (name, value), *_ = changes.items()
    exe = transcode.find_ffmpeg("")
    assert str(caught.value).startswith(
        f"ffmpeg {exe} cannot make {derivative.value} of a test clip with these settings ("
    )
    assert f"{name}={value}" in caught.value.settings
    assert complaint in caught.value.reason
    assert list(tmp_path.iterdir()) == []


def _fake_ffmpeg(path: Path, log: Path) -> str:
    path.write_text(f'#!/bin/sh\necho "$*" >> {log}\necho "no encoders" >&2\nexit 1\n')
    path.chmod(0o755)
    return str(path)


def test_a_verdict_stands_for_its_time_and_its_settings_only(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    fake = _fake_ffmpeg(tmp_path / "ffmpeg", log)
    now = [0.0]
    tests = transcode.SelfTests(ttl_s=30, clock=lambda: now[0])
    settings = SETTINGS.model_copy(update={"ffmpeg": fake})
    video = transcode.Derivative.VIDEO_PROXY

    for moment in (0.0, 29.0):
        now[0] = moment
        with pytest.raises(TranscoderUnusable, match="no encoders"):
            tests.check(video, settings, tmp_path)
    assert tests.runs == 1, "a batch's failures share one verdict"
    with pytest.raises(TranscoderUnusable):
        tests.check(video, settings.model_copy(update={"crf": 30}), tmp_path)
    assert tests.runs == 2, "other settings, another verdict"
    now[0] = 31.0
    with pytest.raises(TranscoderUnusable):
        tests.check(video, settings, tmp_path)
    assert tests.runs == 3, "an old verdict is not trusted"
    assert len(log.read_text().splitlines()) == 3


def test_an_ffmpeg_fixed_in_place_is_tested_again_at_once(tmp_path: Path) -> None:
    fake = Path(_fake_ffmpeg(tmp_path / "ffmpeg", tmp_path / "calls.log"))
    tests = transcode.SelfTests(ttl_s=3600)
    settings = SETTINGS.model_copy(update={"ffmpeg": str(fake)})
    with pytest.raises(TranscoderUnusable):
        tests.check(transcode.Derivative.THUMBNAIL, settings, tmp_path)

    fake.write_text(f'#!/bin/sh\nexec "{transcode.find_ffmpeg("")}" "$@"\n')

    tests.check(transcode.Derivative.THUMBNAIL, settings, tmp_path)
    assert tests.runs == 2
