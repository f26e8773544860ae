"""The paper's audio/video workflow, for real, on one machine.

A test video (an FFmpeg test pattern with ArUco markers drawn in, and a spoken track from
espeak-ng) is uploaded into ``examples/av-workflow/workflow.yaml`` run by ``python -m
supervisor workflow run``: FFmpeg splits it (lambda-batch), pocketsphinx writes the
subtitles (lambda-batch), OpenCV finds the markers and writes the annotated video (a
``batch`` function that asks for a GPU).  The test checks what a user would: the words in
the ``.srt``, the annotated video's frames, the detections against the markers drawn in,
the result folder and the timeline.

FFmpeg, espeak-ng, OpenCV and pocketsphinx are needed; ``./build.sh test`` installs them
and sets ``SUPERVISOR_REQUIRE_MEDIA``, under which their absence fails the test instead of
skipping it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "av-workflow"


def _missing() -> list[str]:
    missing = [tool for tool in ("ffmpeg", "espeak-ng") if shutil.which(tool) is None]
    for module, package in (("cv2", "opencv-python-headless"), ("pocketsphinx", "pocketsphinx")):
        if importlib.util.find_spec(module) is None:
            missing.append(package)
    return missing


@pytest.fixture(scope="module")
def example() -> Any:
    missing = _missing()
    if missing:
        message = f"the audio/video example needs {', '.join(missing)}"
        if os.environ.get("SUPERVISOR_REQUIRE_MEDIA"):
            pytest.fail(message)
        pytest.skip(message + " (./build.sh test installs them)")
    sys.path.insert(0, str(EXAMPLE))
    try:
        import check_results
        import make_videos
    finally:
        sys.path.remove(str(EXAMPLE))
    return make_videos, check_results


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_the_av_workflow_subtitles_and_annotates_a_video(tmp_path: Path, example: Any) -> None:
    make_videos, check_results = example
    video = tmp_path / "videos" / "street-01.mp4"
    video.parent.mkdir()
    truth = make_videos.make_video(video, 1, 5.0, (480, 270), 25)

    done = subprocess.run(
        [
            sys.executable, "-m", "supervisor", "workflow", "run",
            str(EXAMPLE / "workflow.yaml"),
            "--upload", str(video),
            "--storage-root", str(tmp_path / "storage"),
            "--work-dir", str(tmp_path / "work"),
        ],
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(ROOT),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    bucket = tmp_path / "storage" / "av-workflow"
    results = bucket / "result"
    assert sorted(path.name for path in results.iterdir()) == [
        "street-01-detected.avi",
        "street-01-detections.json",
        "street-01.srt",
    ]
    assert (bucket / "video" / "street-01.avi").is_file()
    assert (bucket / "audio" / "street-01.wav").is_file()

    # The subtitles: timed cues holding most of what was said.
    srt = (results / "street-01.srt").read_text()
    assert re.search(r"^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n", srt)
    spoken = _words(truth["text"])
    heard = _words(re.sub(r"^\d+$|^.*-->.*$", "", srt, flags=re.MULTILINE))
    assert len(spoken & heard) >= len(spoken) / 2, (truth["text"], srt)

    # The annotated video has every frame of the input.
    frames = check_results.count_frames
    assert frames(video) == truth["frames"]
    assert frames(results / "street-01-detected.avi") == truth["frames"]

    # The detections are the markers drawn in, on the frames they were drawn in.
    detections = json.loads((results / "street-01-detections.json").read_text())
    assert detections["frames"] == truth["frames"]
    found: dict[str, set[int]] = {}
    for item in detections["detections"]:
        found.setdefault(str(item["id"]), set()).add(item["frame"])
    assert set(found) == set(truth["markers"])
    for marker, (first, last) in truth["markers"].items():
        drawn = set(range(first, last + 1))
        assert found[marker] <= drawn, marker
        assert len(found[marker]) >= 0.95 * len(drawn), marker
    assert check_results.check(truth, bucket) == []

    # Where each function ran, in the timeline and its chart.
    timeline = json.loads((tmp_path / "work" / "timeline.json").read_text())
    where = {item["function"]: item["where"] for item in timeline["invocations"]}
    assert where == {"av-ffmpeg": "lambda", "av-audio2srt": "lambda", "av-detect": "batch"}
    assert len(timeline["invocations"]) == 3
    assert all(item["status"] != "failed" for item in timeline["invocations"])
    detect = next(item for item in timeline["invocations"] if item["function"] == "av-detect")
    assert detect["gpu"] is True
    assert detect["job_status"] == "SUCCEEDED"
    # The job says which GPU it got, and the script whether OpenCV uses it.
    job_log = Path(detect["job_log"]).read_text()
    assert re.search(r"Batch job \S+: (no GPU|GPU \d)", job_log)
    assert "CUDA" in job_log
    png = (tmp_path / "work" / "timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert "asks for a GPU" in done.stdout
