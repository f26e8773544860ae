"""``python -m supervisor tune`` on the three functions of the audio/video workflow.

Generates a short and a long test video (make_videos.py) and their 16 kHz audio tracks
(FFmpeg), then tunes each function of workflow.yaml on the inputs it receives in the
workflow: av-ffmpeg the videos, av-audio2srt the audio, av-detect the video (it asks for a
GPU, so it is reported, not measured).  Each function's tune.json and tune.png go to
OUT/FUNCTION/; a table beside the memory sizes the paper chose is printed at the end.  The
largest input to expect is a 10-minute one (``--longest``), the paper's longest audio.
Needs root (tune's cgroups), FFmpeg, espeak-ng and the `examples` extra:

    sudo .venv/bin/python examples/av-workflow/tune_functions.py --runs 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_videos import main as make_videos  # noqa: E402

# What the paper deployed (Risco & Moltó, 2021, section 5.4), and the Batch instance each
# function's jobs would run on here (the paper's m3.medium is a previous generation).
PAPER = {
    "av-ffmpeg": "lambda-batch, 1024 MB",
    "av-audio2srt": "lambda-batch, 1024 MB",
    "av-detect": "batch, 128 MB (g3s.xlarge)",
}
INSTANCES = {"av-ffmpeg": "m5.large", "av-audio2srt": "m5.large", "av-detect": "g3s.xlarge"}
INPUTS = {"av-ffmpeg": "mp4", "av-audio2srt": "wav", "av-detect": "avi"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Tune the three functions of the audio/video workflow on test videos."
    )
    parser.add_argument("--runs", default="3", help="runs per input and size (default 3)")
    parser.add_argument(
        "--memory",
        default="128,256,512,1024,1769,3008,10240",
        help="the Lambda memory sizes (default: 128 to 10240)",
    )
    parser.add_argument(
        "--seconds",
        default="6,24",
        help="the test videos' lengths in seconds, comma-separated (default 6,24)",
    )
    parser.add_argument(
        "--longest",
        type=float,
        default=10.0,
        help="the longest video to expect, in minutes: its size, at the test videos' bytes "
        "per second, is the largest input (default 10, the paper's longest audio)",
    )
    parser.add_argument("--strategy", default="cost", help="cost, speed or balanced")
    parser.add_argument(
        "--out", type=Path, default=Path.cwd() / "demo-output" / "av-tune", help="output folder"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()
    lengths = [float(s) for s in args.seconds.split(",")]
    inputs = _inputs(out / "inputs", lengths)
    rows = []
    for function, kind in INPUTS.items():
        folder = out / function
        shutil.rmtree(folder, ignore_errors=True)
        command = [
            sys.executable,
            "-m",
            "supervisor",
            "tune",
            str(HERE / "workflow.yaml"),
            "--function",
            function,
            "--memory",
            args.memory,
            "--runs",
            args.runs,
            "--strategy",
            args.strategy,
            "--batch-instance",
            INSTANCES[function],
            "--output-dir",
            str(folder),
        ]
        for path in inputs[kind]:
            command += ["--input", str(path)]
        command += ["--largest-size", f"{_largest_mb(inputs[kind], lengths, args.longest):.1f}"]
        print(f"== {' '.join(command[1:])}", flush=True)
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            print(f"tune {function} exited with {done.returncode}", file=sys.stderr)
            return done.returncode
        advice = json.loads((folder / "tune.json").read_text())["recommendation"]
        memory = "" if advice["memory_mb"] is None else f", {advice['memory_mb']} MB"
        rows.append((function, PAPER[function], f"{advice['execution_mode']}{memory}"))
    print(f"\n{'function':<14} {'the paper':<28} tune ({args.strategy})")
    for function, paper, found in rows:
        print(f"{function:<14} {paper:<28} {found}")
    return 0


def _largest_mb(paths: list[Path], lengths: list[float], minutes: float) -> float:
    """The size in MB of a ``minutes``-long input, at the longest sample's bytes per second."""
    longest = max(zip(lengths, paths, strict=True))
    per_second = longest[1].stat().st_size / longest[0]
    return per_second * minutes * 60 / (1 << 20)


def _inputs(folder: Path, lengths: list[float]) -> dict[str, list[Path]]:
    """Test videos of the given lengths, each with its audio track and its video alone."""
    shutil.rmtree(folder, ignore_errors=True)
    found: dict[str, list[Path]] = {"mp4": [], "wav": [], "avi": []}
    for seconds in lengths:
        prefix = f"video-{seconds:g}s"
        code = make_videos(
            [str(folder), "--count", "1", "--seconds", str(seconds), "--prefix", prefix]
        )
        if code:
            raise SystemExit(code)
        video = folder / f"{prefix}-01.mp4"
        found["mp4"].append(video)
        for suffix, options in (
            ("wav", ["-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le"]),
            ("avi", ["-an", "-c:v", "mpeg4", "-q:v", "3", "-vtag", "XVID"]),
        ):
            target = video.with_suffix(f".{suffix}")
            ffmpeg = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video)]
            subprocess.run([*ffmpeg, *options, str(target)], check=True)
            found[suffix].append(target)
    return found


if __name__ == "__main__":
    raise SystemExit(main())
