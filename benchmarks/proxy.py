"""3. Proxy transcode: the pipeline's make_proxy versus the bare ffmpeg command it runs.

The bare command is not rebuilt here: it is the exact command line make_proxy passed to
subprocess.Popen on a first, untimed run (which also brings the input into the page cache),
rerun with only its output path changed. So the difference is what the pipeline adds around
ffmpeg: building the arguments, the progress pipe and its reader, the stderr drain, the
timeout timer and the rename of the finished proxy.

The input is 1080p30 H.264 + AAC at about the bit rate GA/T 947.2 allows a recorder
(2.6 GB/h ≈ 5.8 Mbit/s); the proxy uses the default transcode settings (720p, veryfast).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from benchmarks.report import Figure, Result, Target
from benchmarks.workbench import median, scratch
from pipeline.media import probe, transcode
from pipeline.models import ProbeResult
from pipeline.settings import TranscodeSettings

NUMBER, NAME = 3, "proxy transcode overhead"


@dataclass(frozen=True)
class Sizes:
    input_seconds: float
    repeats: int


FULL = Sizes(input_seconds=20.0, repeats=5)
QUICK = Sizes(input_seconds=1.0, repeats=1)


def run(work: Path, quick: bool) -> Result:
    sizes = QUICK if quick else FULL
    settings = TranscodeSettings()
    with scratch(work / "proxy") as root:
        source = _recorder_clip(root / "input.mp4", sizes.input_seconds, settings)
        probed = probe.probe(source)
        command = _command_of_make_proxy(source, root / "warm-up.mp4", probed, settings)
        seconds: dict[str, list[float]] = {"pipeline": [], "bare": []}
        for r in range(sizes.repeats):
            for way in ("pipeline", "bare")[:: 1 if r % 2 == 0 else -1]:
                output = root / f"{way}-{r}.mp4"
                started = time.perf_counter()
                if way == "pipeline":
                    transcode.make_proxy(source, output, probed, settings)
                else:
                    subprocess.run(
                        # At the pipeline's niceness (transcode.nice), so only overhead differs.
                        ["nice", "-n", str(settings.nice), *command[:-1], str(output)],
                        check=True,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                seconds[way].append(time.perf_counter() - started)
                output.unlink()
    return _result(seconds, sizes, command)


def _recorder_clip(path: Path, seconds: float, settings: TranscodeSettings) -> Path:
    exe = transcode.find_ffmpeg(settings.ffmpeg)
    subprocess.run(
        [
            exe,
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "5600k",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            str(path),
        ],
        check=True,
    )
    return path


def _command_of_make_proxy(
    source: Path, output: Path, probed: ProbeResult, settings: TranscodeSettings
) -> list[str]:
    with mock.patch.object(subprocess, "Popen", wraps=subprocess.Popen) as popen:
        transcode.make_proxy(source, output, probed, settings)
    output.unlink()
    return [str(arg) for arg in popen.call_args.args[0]]


def _result(seconds: dict[str, list[float]], sizes: Sizes, command: list[str]) -> Result:
    per_minute = 60.0 / sizes.input_seconds
    overhead = [
        (p / b - 1) * 100 for p, b in zip(seconds["pipeline"], seconds["bare"], strict=True)
    ]
    pipeline = median(seconds["pipeline"])
    figures = (
        Figure("proxy.pipeline", "pipeline, per minute of 1080p30", pipeline * per_minute, "s"),
        Figure(
            "proxy.bare",
            "bare ffmpeg, per minute of 1080p30",
            median(seconds["bare"]) * per_minute,
            "s",
        ),
        Figure(
            "proxy.overhead",
            "pipeline overhead over bare ffmpeg",
            median(overhead),
            "%",
            Target("<=", 5),
        ),
        Figure(
            "proxy.realtime",
            "pipeline speed, multiple of real time",
            sizes.input_seconds / pipeline,
            "×",
        ),
    )
    notes = (
        f"{sizes.input_seconds:g} s of 1080p30 input, {sizes.repeats} run(s) of each way, "
        "alternating; overhead is the median of per-pair differences",
    )
    return Result(NUMBER, NAME, figures, notes, samples={"seconds": seconds, "command": command})
