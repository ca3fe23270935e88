"""Derived files made with ffmpeg: browser proxies, thumbnails, and a decode check.

Command lines are built with ffmpeg-python (``get_args()``) and run by :func:`run_ffmpeg`, the
one place that starts ffmpeg: it enforces the timeout, reports progress and turns every failure
into a TranscodeError naming the file. Derived files are written under a temporary name beside
their target and renamed on success, so a half-written proxy never appears under its real name.

When ffmpeg fails on a recording, :class:`SelfTests` tells the file's fault from the system's:
the same binary with the same settings makes the same derivative of a clip ffmpeg generates
itself. If that fails too, the binary or a setting is wrong and the recording is not to blame.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import ffmpeg
import imageio_ffmpeg

from pipeline.errors import FfmpegNotFound, TranscodeError, TranscoderUnusable
from pipeline.models import MediaKind, ProbeResult
from pipeline.settings import TranscodeSettings

# Every run: never read the terminal, overwrite the (temporary) output, machine-readable
# progress on stdout, and only real errors on stderr, so its tail is a usable reason.
#: Where a proxy's progress goes when its caller passes no ``on_progress``: set by whoever
#: runs one file's steps and shows their progress (flows/ingest.py around each job), so the
#: steps in between (ingest, derive) need not carry it.
proxy_progress: ContextVar[Callable[[float], None] | None] = ContextVar(
    "proxy_progress", default=None
)

_GLOBAL_FLAGS = ("-nostdin", "-y", "-progress", "pipe:1", "-loglevel", "error")
_STDERR_TAIL_LINES = 12
_REASON_CHARS = 300  # a quarantine reason is read by a person, not parsed
# ffmpeg prefixes messages with "[h264 @ 0x55d0c3a4b2c0]" or "[in#0]": noise to a reader.
_ADDRESS = re.compile(r"^\[[^\]]*\]\s*|\s@ 0x[0-9a-f]+")

_PROXY_SUFFIX = {MediaKind.VIDEO: ".mp4", MediaKind.AUDIO: ".m4a"}
_THUMBNAIL_SEEK = 0.1  # fraction of a video's duration: past a black first frame or a slate


class Derivative(Enum):
    """What ffmpeg makes of an original; the value names it in a sentence."""

    VIDEO_PROXY = "a video proxy"
    AUDIO_PROXY = "an audio proxy"
    THUMBNAIL = "a thumbnail"

    @classmethod
    def proxy_of(cls, kind: MediaKind) -> Derivative:
        if kind is MediaKind.VIDEO:
            return cls.VIDEO_PROXY
        if kind is MediaKind.AUDIO:
            return cls.AUDIO_PROXY
        raise ValueError(f"{kind} media gets no proxy")


def find_ffmpeg(configured: str) -> str:
    """The ffmpeg binary: ``configured`` (a path or a name on PATH) if set, else the static
    build shipped by imageio-ffmpeg."""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise FfmpegNotFound(f"configured ffmpeg not found or not executable: {configured}")
        return found
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise FfmpegNotFound(f"no ffmpeg configured and imageio-ffmpeg has none: {exc}") from exc


def proxy_suffix(kind: MediaKind) -> str | None:
    """The file suffix of a kind's browser proxy, or None if it gets no proxy."""
    return _PROXY_SUFFIX.get(kind)


def wants_thumbnail(kind: MediaKind) -> bool:
    return kind in (MediaKind.VIDEO, MediaKind.PHOTO)


def metadata_options(tags: Mapping[str, str]) -> dict[str, str]:
    """Output options setting global tags. ffmpeg-python 0.2.0 takes options as keyword
    arguments and so cannot repeat ``-metadata``; distinct specifiers (``-metadata:g:0``,
    ``-metadata:g:1``) all mean the global tags to ffmpeg."""
    return {f"metadata:g:{i}": f"{key}={value}" for i, (key, value) in enumerate(tags.items())}


def make_proxy(
    src: Path,
    dst: Path,
    probe: ProbeResult,
    settings: TranscodeSettings,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """A browser-playable proxy: H.264 + AAC in MP4 for video, AAC in MP4 (``.m4a``) for audio.

    Video is scaled down to at most ``settings.max_height`` lines (never up), keeping the aspect
    ratio with even dimensions as yuv420p requires. The moov box goes first (``+faststart``) so
    a browser can start playing before the whole file has arrived. The original's recording
    time is written as the proxy's creation_time: a transcode would otherwise stamp it anew.
    """
    if proxy_suffix(probe.kind) is None:
        raise ValueError(f"{probe.kind} media gets no proxy")
    source = ffmpeg.input(str(src))
    video = source["v:0"] if probe.kind is MediaKind.VIDEO else None
    has_audio = probe.kind is MediaKind.AUDIO or probe.audio_codec is not None
    audio = source["a:0"] if has_audio else None
    stamp = probe.recorded_at or probe.encoded_at
    exe = find_ffmpeg(settings.ffmpeg)
    with _replacing(dst) as tmp:
        run_ffmpeg(
            [exe, *_proxy_args(video, audio, tmp, stamp, settings)],
            timeout_s=settings.timeout_s,
            on_progress=on_progress or proxy_progress.get(),
            duration_s=probe.duration_s,
            subject=src,
            nice=settings.nice,
        )


def _proxy_args(
    video: Any, audio: Any, dst: Path, stamp: datetime | None, settings: TranscodeSettings
) -> list[str]:
    """ffmpeg's arguments for a proxy of these streams (no video stream: an audio proxy).
    One builder for recordings and the self-test, so the test runs the very same command."""
    options: dict[str, str | int] = {
        "format": "mp4",
        "movflags": "+faststart",
        "acodec": "aac",
        "audio_bitrate": settings.audio_bitrate,
    }
    if stamp is not None:
        when = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        options.update(metadata_options({"creation_time": when}))
    streams = [audio] if audio is not None else []
    if video is not None:
        height = f"trunc(min(ih,{settings.max_height})/2)*2"
        streams.insert(0, video.filter("scale", w=-2, h=height))
        options.update(
            vcodec="libx264", pix_fmt="yuv420p", crf=settings.crf, preset=settings.preset
        )
    return list(ffmpeg.output(*streams, str(dst), **options).get_args())


def make_thumbnail(src: Path, dst: Path, probe: ProbeResult, settings: TranscodeSettings) -> None:
    """A JPEG ``settings.thumbnail_width`` wide: a video's frame ~10% in, or the photo itself."""
    if not wants_thumbnail(probe.kind):
        raise ValueError(f"{probe.kind} media gets no thumbnail")
    seek = None
    if probe.kind is MediaKind.VIDEO and probe.duration_s:
        seek = probe.duration_s * _THUMBNAIL_SEEK
    source = ffmpeg.input(str(src), ss=f"{seek:.3f}") if seek else ffmpeg.input(str(src))
    exe = find_ffmpeg(settings.ffmpeg)
    with _replacing(dst) as tmp:
        args = _thumbnail_args(source["v:0"], tmp, settings)
        run_ffmpeg([exe, *args], timeout_s=settings.timeout_s, subject=src, nice=settings.nice)


def _thumbnail_args(picture: Any, dst: Path, settings: TranscodeSettings) -> list[str]:
    scaled = picture.filter("scale", w=settings.thumbnail_width, h=-2)
    # One picture to a plain file name, not a numbered image sequence: hence -update 1.
    options = {"format": "image2", "vcodec": "mjpeg", "frames:v": 1, "q:v": 3, "update": 1}
    return list(scaled.output(str(dst), **options).get_args())


# The self-test's clip: small and short, so the test costs a fraction of a second.
_TEST_PICTURE = "testsrc=size=160x120:rate=25:duration=0.5"
_TEST_FRAME = "testsrc=size=160x120:rate=1:duration=1"
_TEST_TONE = "sine=frequency=440:duration=0.5"
_TEST_STAMP = datetime(2026, 1, 1, tzinfo=UTC)  # proxies carry a creation_time: so does the test's
# The settings each derivative's command line uses, named in TranscoderUnusable.
_SETTINGS_USED = {
    Derivative.VIDEO_PROXY: ("preset", "crf", "max_height", "audio_bitrate", "timeout_s"),
    Derivative.AUDIO_PROXY: ("audio_bitrate", "timeout_s"),
    Derivative.THUMBNAIL: ("thumbnail_width", "timeout_s"),
}
#: How long a self-test's verdict stands: long enough that a batch of failing files runs one
#: test, short enough that a setting or binary fixed on the fly is seen soon. The key already
#: changes with the settings and the binary; this bounds what the key cannot see (a full disk).
SELF_TEST_TTL_S = 30.0

_VerdictKey = tuple[str, tuple[int, ...], str, Derivative]


class SelfTests:
    """Whether ffmpeg, as configured, can make a derivative at all, cached per process.

    A verdict is kept per (binary, its inode/size/mtime, settings, derivative) for ``ttl_s``
    by ``clock``. One test runs at a time: the workers of a batch that all fail at once wait
    for the first verdict instead of each running their own.
    """

    def __init__(
        self, ttl_s: float = SELF_TEST_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.runs = 0
        self._verdicts: dict[_VerdictKey, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def check(self, derivative: Derivative, settings: TranscodeSettings, scratch: Path) -> None:
        """Raise TranscoderUnusable unless the configured ffmpeg makes ``derivative`` of a
        test clip it generates itself, writing under ``scratch`` (FfmpegNotFound if there is
        no ffmpeg at all)."""
        exe = find_ffmpeg(settings.ffmpeg)
        key = (exe, _identity(exe), settings.model_dump_json(), derivative)
        with self._lock:
            cached = self._verdicts.get(key)
            if cached is not None and self.clock() - cached[0] <= self.ttl_s:
                reason = cached[1]
            else:
                reason = self._run(exe, derivative, settings, scratch)
                self._verdicts[key] = (self.clock(), reason)
        if reason is not None:
            used = _changed_settings(derivative, settings)
            raise TranscoderUnusable(exe, derivative.value, used, reason)

    def _run(
        self, exe: str, derivative: Derivative, settings: TranscodeSettings, scratch: Path
    ) -> str | None:
        """ffmpeg's reason for failing the self-test, or None if it passed."""
        self.runs += 1
        name = "thumbnail.jpg" if derivative is Derivative.THUMBNAIL else "proxy.mp4"
        with tempfile.TemporaryDirectory(dir=scratch, prefix=".self-test-") as tmp:
            try:
                with _replacing(Path(tmp) / name) as out:
                    run_ffmpeg(
                        [exe, *_test_args(derivative, out, settings)],
                        timeout_s=settings.timeout_s,
                        subject=Path("test clip"),
                        nice=settings.nice,
                    )
            except TranscodeError as exc:
                return exc.reason
        return None


def _test_args(derivative: Derivative, out: Path, settings: TranscodeSettings) -> list[str]:
    """The command line of a recording's derivative, with a generated clip as its input."""
    if derivative is Derivative.THUMBNAIL:
        return _thumbnail_args(ffmpeg.input(_TEST_FRAME, format="lavfi"), out, settings)
    picture = None
    if derivative is Derivative.VIDEO_PROXY:
        picture = ffmpeg.input(_TEST_PICTURE, format="lavfi")
    tone = ffmpeg.input(_TEST_TONE, format="lavfi")
    return _proxy_args(picture, tone, out, _TEST_STAMP, settings)


def _identity(exe: str) -> tuple[int, ...]:
    """Which binary is at ``exe`` now: an ffmpeg replaced in place is tested anew."""
    try:
        st = os.stat(exe)
    except OSError:
        return ()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _changed_settings(derivative: Derivative, settings: TranscodeSettings) -> str:
    """The settings this derivative uses that differ from their defaults: an operator's change
    is the likely culprit. ``the defaults`` when there is none."""
    fields = type(settings).model_fields
    values = {name: getattr(settings, name) for name in _SETTINGS_USED[derivative]}
    changed = [
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in values.items()
        if value != fields[name].default
    ]
    return ", ".join(changed) or "the defaults"


#: This process's self-tests (see SelfTests): derivation asks it when ffmpeg fails on a file.
SELF_TESTS = SelfTests()


def check_decodes(path: Path, settings: TranscodeSettings) -> None:
    """Decode the whole file to the null muxer; raise TranscodeError at the first error.

    ``-xerror`` makes ffmpeg stop with a failure status on a corrupt packet or frame, which it
    otherwise logs and conceals. It is a global option, so it goes right after the binary
    (ffmpeg-python would append its global_args after the output, where ffmpeg ignores them).
    """
    exe = find_ffmpeg(settings.ffmpeg)
    args = ffmpeg.input(str(path)).output("-", format="null").get_args()
    run_ffmpeg([exe, "-xerror", *args], timeout_s=settings.timeout_s, subject=path)


def run_ffmpeg(
    args: list[str],
    *,
    timeout_s: float,
    on_progress: Callable[[float], None] | None = None,
    duration_s: float | None = None,
    subject: Path,
    nice: int = 0,
) -> None:
    """Run one ffmpeg command and raise TranscodeError(subject, reason) unless it succeeds.

    ``args[0]`` is the binary (from :func:`find_ffmpeg`), the rest are its arguments as
    ``get_args()`` builds them; as always with ffmpeg the last one is the output. The run fails
    when ffmpeg exits non-zero, outlives ``timeout_s`` (it is killed), or leaves its output
    file empty. ``on_progress`` gets increasing fractions of ``duration_s`` done, and 1.0 once
    the run has succeeded. ``nice`` lowers ffmpeg's CPU priority by that much.
    """
    command = [args[0], *_GLOBAL_FLAGS, *args[1:]]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    except OSError as exc:
        raise FfmpegNotFound(f"cannot start ffmpeg {args[0]}: {exc.strerror}") from exc
    if nice:
        # After the start rather than in a preexec_fn, which is unsafe with threads; ffmpeg
        # runs its first milliseconds at normal priority.
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, process.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
    assert process.stdout is not None and process.stderr is not None
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    drain = threading.Thread(target=stderr_tail.extend, args=(process.stderr,), daemon=True)
    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout_s, kill_on_timeout)
    drain.start()
    timer.start()
    try:
        reported = _follow_progress(process.stdout, on_progress, duration_s)
        returncode = process.wait()
    finally:
        timer.cancel()
        if process.poll() is None:  # on_progress raised: do not leave ffmpeg running
            process.kill()
            process.wait()
        drain.join()
        process.stdout.close()
        process.stderr.close()

    tail = _summarize(stderr_tail, command)
    if returncode != 0:
        if timed_out.is_set():
            reason = f"ffmpeg did not finish within {timeout_s:g} s and was stopped"
        else:
            reason = f"ffmpeg failed (exit status {returncode})"
        raise TranscodeError(subject, f"{reason}: {tail}" if tail else reason)
    output = Path(args[-1])
    if output.is_file() and output.stat().st_size == 0:
        detail = f": {tail}" if tail else ""
        raise TranscodeError(subject, f"ffmpeg wrote an empty output{detail}")
    if on_progress is not None and reported < 1.0:
        on_progress(1.0)


def _summarize(stderr_lines: Iterable[str], command: list[str]) -> str:
    """The gist of ffmpeg's complaint for a quarantine reason a person reads: its first
    distinct lines, without the archive's file paths (they say nothing about the media)."""
    paths = [a for a in command if "/" in a]
    kept: list[str] = []
    for raw in stderr_lines:
        line = _ADDRESS.sub("", raw).strip().rstrip(".")
        if line and line not in kept and not any(p in line for p in paths):
            kept.append(line)
    text = "; ".join(kept[:2])
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _follow_progress(
    lines: Iterable[str], on_progress: Callable[[float], None] | None, duration_s: float | None
) -> float:
    """Read ``-progress`` key=value lines to the end; report each new fraction done.
    Returns the last fraction reported."""
    reported = 0.0
    for line in lines:  # read even with no callback, or ffmpeg blocks on a full pipe
        key, _, value = line.strip().partition("=")
        if on_progress is None or not duration_s or key != "out_time_us" or not value.isdigit():
            continue  # "N/A" or negative before the first frame
        fraction = min(int(value) / 1e6 / duration_s, 1.0)
        if fraction > reported:
            reported = fraction
            on_progress(fraction)
    return reported


@contextmanager
def _replacing(dst: Path) -> Iterator[Path]:
    """A fresh temporary path beside ``dst`` that becomes ``dst`` if the block succeeds and is
    removed if it fails. A unique name lets two workers derive the same file safely."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
