"""The audio/video workflow on this machine: test videos in, subtitles and detections out.

Generates test videos (make_videos.py), runs workflow.yaml on them with
``python -m supervisor workflow run`` (or ``replay``: the paper's upload schedule, minutes
shrunk to seconds), and checks the results as a user would (check_results.py).  Run it
with ``./build.sh demo-workflow`` (which installs FFmpeg, espeak-ng and the Python
packages first); everything goes to ./demo-output/av-workflow.

    python examples/av-workflow/run_demo.py                  # 2 videos, uploaded at once
    python examples/av-workflow/run_demo.py --replay         # 10 videos, on the paper's schedule
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check_results import check_with_notes  # noqa: E402
from make_videos import main as make_videos  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the audio/video workflow on generated test videos and check the results."
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="upload on the paper's schedule (1 video at 0, 1 at 1 min, 3 at 5, 5 at 10)",
    )
    parser.add_argument("--videos", type=int, help="how many videos (default 2, 10 with --replay)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each video")
    parser.add_argument(
        "--time-scale", default="60", help="with --replay: a minute lasts 60/SCALE seconds"
    )
    parser.add_argument(
        "--out", type=Path, default=Path.cwd() / "demo-output" / "av-workflow", help="output folder"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    count = args.videos or (10 if args.replay else 2)
    out: Path = args.out.resolve()
    for folder in ("videos", "storage", "work"):
        shutil.rmtree(out / folder, ignore_errors=True)
    videos = out / "videos"
    print(f"generating {count} test video(s) of {args.seconds:g} s in {videos}", flush=True)
    started = time.monotonic()
    code = make_videos([str(videos), "--count", str(count), "--seconds", str(args.seconds)])
    if code:
        return code
    print(f"generated in {time.monotonic() - started:.1f} s\n", flush=True)

    action = ["replay", "--time-scale", args.time_scale] if args.replay else ["run"]
    command = [
        sys.executable, "-m", "supervisor", "workflow", *action,
        str(HERE / "workflow.yaml"),
        "--upload", *sorted(str(path) for path in videos.glob("*.mp4")),
        "--storage-root", str(out / "storage"),
        "--work-dir", str(out / "work"),
    ]  # fmt: skip
    print("$ python -m supervisor workflow " + " ".join(action) + " workflow.yaml ...", flush=True)
    status = subprocess.run(command, check=False).returncode

    print("\nchecking the results against what the videos hold:")
    problems = 0
    results = out / "storage" / "av-workflow"
    for truth_file in sorted(videos.glob("*.json")):
        truth = json.loads(truth_file.read_text())
        found, notes = check_with_notes(truth, results)
        problems += len(found)
        print(f"  {truth['video']}: " + ("ok" if not found else "PROBLEMS"))
        for line in [*notes, *(f"problem: {problem}" for problem in found)]:
            print(f"    {line}")
    if args.replay:
        print("\nfrom each upload to its last result:")
        for line in latencies(out / "work" / "timeline.json"):
            print(f"  {line}")
    print(f"\nresults: {results / 'result'}")
    print(f"chart:   {out / 'work' / 'timeline.png'}")
    if status != 0:
        print(f"the workflow run failed (exit code {status})", file=sys.stderr)
        return status
    return 1 if problems else 0


def latencies(timeline_file: Path) -> list[str]:
    """For each video, when it was uploaded and when the last of its results was written
    (its results share its name)."""
    invocations = json.loads(timeline_file.read_text())["invocations"]
    lines = []
    for first in invocations:
        if first["function"] != "av-ffmpeg":
            continue
        stem = Path(first["key"]).stem
        ends = [
            item["batch_ended"] if item["job_id"] else item["lambda_end"]
            for item in invocations
            if Path(item["key"]).stem == stem
        ]
        if None in ends:
            lines.append(f"{stem}: unfinished")
            continue
        took = max(ends) - first["triggered"]
        lines.append(f"{stem}: uploaded at {first['triggered']:.2f} s, done after {took:.2f} s")
    return lines


if __name__ == "__main__":
    sys.exit(main())
