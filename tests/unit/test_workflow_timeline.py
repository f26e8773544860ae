"""The record of a workflow run: phases of each invocation, summaries, report, JSON, chart."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from supervisor.workflow.timeline import Invocation, Timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FUNCTIONS = ["ffmpeg", "audio2srt", "yolov3"]


def _invocation(**fields: Any) -> Invocation:
    defaults: dict[str, Any] = {
        "number": 1,
        "function": "ffmpeg",
        "mode": "lambda-batch",
        "bucket": "b",
        "key": "start/movie.mp4",
        "triggered": 0.0,
    }
    return Invocation(**{**defaults, **fields})


# Done in Lambda: waited half a second for a slot, ran for 1.5 s.
LAMBDA_ONLY: dict[str, Any] = {
    "status": "succeeded",
    "lambda_start": 0.5,
    "lambda_end": 2.0,
}
# Handed to Batch after 3 s in Lambda; pending 2 s, running 4 s.
DELEGATED: dict[str, Any] = {
    "triggered": 1.0,
    "status": "delegated",
    "lambda_start": 1.0,
    "lambda_end": 4.0,
    "job_id": "job-1",
    "job_status": "SUCCEEDED",
    "batch_submitted": 4.0,
    "batch_started": 6.0,
    "batch_ended": 10.0,
    "exit_code": 0,
}
# A batch-mode function: Lambda only hands the event on.
BATCH_MODE: dict[str, Any] = {
    "function": "yolov3",
    "mode": "batch",
    "triggered": 2.0,
    "status": "delegated",
    "lambda_start": 2.0,
    "lambda_end": 2.25,
    "job_id": "job-2",
    "job_status": "SUCCEEDED",
    "batch_submitted": 2.25,
    "batch_started": 3.0,
    "batch_ended": 8.0,
    "exit_code": 0,
    "gpu": True,
}


# --- phases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "now", "expected"),
    [
        pytest.param(
            LAMBDA_ONLY,
            20.0,
            [("queued", 0.0, 0.5), ("lambda", 0.5, 2.0)],
            id="lambda-only",
        ),
        pytest.param(
            DELEGATED,
            20.0,
            [
                ("queued", 1.0, 1.0),
                ("lambda", 1.0, 4.0),
                ("batch-pending", 4.0, 6.0),
                ("batch-running", 6.0, 10.0),
            ],
            id="delegated",
        ),
        pytest.param(
            BATCH_MODE,
            20.0,
            [
                ("queued", 2.0, 2.0),
                ("lambda", 2.0, 2.25),
                ("batch-pending", 2.25, 3.0),
                ("batch-running", 3.0, 8.0),
            ],
            id="batch-mode",
        ),
        pytest.param(
            {"triggered": 3.0},
            7.5,
            [("queued", 3.0, 7.5)],
            id="still-queued",
        ),
        pytest.param(
            {"triggered": 1.0, "status": "running", "lambda_start": 2.0},
            7.5,
            [("queued", 1.0, 2.0), ("lambda", 2.0, 7.5)],
            id="running-in-lambda",
        ),
        pytest.param(
            {**DELEGATED, "job_status": "RUNNABLE", "batch_started": None, "batch_ended": None},
            7.5,
            [("queued", 1.0, 1.0), ("lambda", 1.0, 4.0), ("batch-pending", 4.0, 7.5)],
            id="pending-in-batch",
        ),
        pytest.param(
            {**DELEGATED, "job_status": "RUNNING", "batch_ended": None},
            7.5,
            [
                ("queued", 1.0, 1.0),
                ("lambda", 1.0, 4.0),
                ("batch-pending", 4.0, 6.0),
                ("batch-running", 6.0, 7.5),
            ],
            id="running-in-batch",
        ),
    ],
)
def test_phases(
    fields: dict[str, Any], now: float, expected: list[tuple[str, float, float]]
) -> None:
    assert _invocation(**fields).phases(now) == expected


def test_phases_never_end_before_they_start() -> None:
    # ``now`` read a moment before the invocation's own clock: no negative bar.
    invocation = _invocation(triggered=5.0, status="running", lambda_start=5.0)
    assert invocation.phases(4.0) == [("queued", 5.0, 5.0), ("lambda", 5.0, 5.0)]


def test_a_job_that_never_started_does_not_stay_pending() -> None:
    # Stopped (or failed to start) while waiting in the job queue.
    invocation = _invocation(
        **{**DELEGATED, "job_status": "FAILED", "batch_started": None, "batch_ended": 5.0}
    )
    phases = invocation.phases(100.0)
    assert [phase for phase, _, _ in phases] == ["queued", "lambda", "batch-pending"]
    _, start, end = phases[-1]
    assert start == 4.0
    assert start <= end <= 5.0


# --- where, finished, failed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "where", "finished", "failed"),
    [
        pytest.param(LAMBDA_ONLY, "lambda", True, False, id="lambda-only"),
        pytest.param(DELEGATED, "lambda, then batch", True, False, id="delegated"),
        pytest.param(BATCH_MODE, "batch", True, False, id="batch-mode"),
        pytest.param({}, "lambda", False, False, id="queued"),
        pytest.param({"status": "running", "lambda_start": 1.0}, "lambda", False, False),
        pytest.param(
            {"status": "failed", "lambda_start": 1.0, "lambda_end": 2.0, "error": "exit 1"},
            "lambda",
            True,
            True,
            id="failed-in-lambda",
        ),
        pytest.param(
            {**DELEGATED, "job_status": "RUNNABLE"},
            "lambda, then batch",
            False,
            False,
            id="job-pending",
        ),
        pytest.param(
            {**DELEGATED, "job_status": "RUNNING"},
            "lambda, then batch",
            False,
            False,
            id="job-running",
        ),
        pytest.param(
            {**DELEGATED, "job_status": "FAILED", "exit_code": 2},
            "lambda, then batch",
            True,
            True,
            id="job-failed",
        ),
        pytest.param(
            {**BATCH_MODE, "job_status": "FAILED"}, "batch", True, True, id="batch-failed"
        ),
        pytest.param(
            # Handed over, and the job not heard of yet.
            {**DELEGATED, "job_status": ""},
            "lambda, then batch",
            False,
            False,
            id="job-unknown",
        ),
    ],
)
def test_where_finished_failed(
    fields: dict[str, Any], where: str, finished: bool, failed: bool
) -> None:
    invocation = _invocation(**fields)
    assert invocation.where == where
    assert invocation.finished is finished
    assert invocation.failed is failed


@pytest.mark.parametrize(
    ("fields", "ended"),
    [(LAMBDA_ONLY, 2.0), (DELEGATED, 10.0), (BATCH_MODE, 8.0), ({}, None)],
)
def test_ended(fields: dict[str, Any], ended: float | None) -> None:
    assert _invocation(**fields).ended == ended


# --- the timeline ----------------------------------------------------------------------


def _add(timeline: Timeline, **fields: Any) -> Invocation:
    base: dict[str, Any] = {
        "function": "ffmpeg",
        "mode": "lambda-batch",
        "bucket": "b",
        "key": "start/movie.mp4",
        "triggered": 0.0,
    }
    return timeline.add(**{**base, **fields})


@pytest.fixture
def timeline(tmp_path: Path) -> Timeline:
    """A run of the audio and video workflow: Lambda, Batch, a failure of each kind."""
    lambda_log = tmp_path / "logs" / "ffmpeg-0004.log"
    lambda_log.parent.mkdir(parents=True)
    lambda_log.write_text("".join(f"ffmpeg line {n:03d}\n" for n in range(1, 41)))
    job_log = tmp_path / "jobs" / "job-4.log"
    job_log.parent.mkdir(parents=True)
    job_log.write_text("loading weights\nCUDA error: out of memory\n")

    timeline = Timeline(started_at=1_700_000_000.0)
    _add(timeline, key="start/a.mp4", **LAMBDA_ONLY)
    _add(timeline, key="start/b.mp4", **DELEGATED)
    _add(timeline, **{**BATCH_MODE, "key": "video/b.avi"})
    _add(
        timeline,
        **{
            **BATCH_MODE,
            "key": "video/c.avi",
            "job_id": "job-4",
            "job_status": "FAILED",
            "lambda_start": 2.0,
            "lambda_end": 2.5,
            "batch_submitted": 2.5,
            "batch_started": 3.0,
            "batch_ended": 4.0,
            "exit_code": 1,
            "error": "the script exited with code 1",
            "job_log": str(job_log),
        },
    )
    _add(
        timeline,
        key="start/d.mp4",
        triggered=5.0,
        status="failed",
        lambda_start=5.0,
        lambda_end=6.0,
        error="ffmpeg: invalid data found when processing input",
        log=str(lambda_log),
    )
    return timeline


def test_add_numbers_the_invocations(timeline: Timeline) -> None:
    assert [item.number for item in timeline.invocations] == [1, 2, 3, 4, 5]
    # A copy: the caller's list does not change the timeline.
    timeline.invocations.clear()
    assert len(timeline.invocations) == 5


def test_add_from_many_threads() -> None:
    timeline = Timeline(0.0)

    def work() -> None:
        for _ in range(50):
            _add(timeline)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(item.number for item in timeline.invocations) == list(range(1, 401))


def test_summaries(timeline: Timeline) -> None:
    ffmpeg, audio2srt, yolov3 = timeline.summaries(FUNCTIONS)
    assert (ffmpeg.function, audio2srt.function, yolov3.function) == tuple(FUNCTIONS)

    assert (ffmpeg.invocations, ffmpeg.in_lambda, ffmpeg.in_batch, ffmpeg.failed) == (3, 1, 1, 1)
    assert ffmpeg.lambda_s == pytest.approx([1.5, 3.0, 1.0])
    assert ffmpeg.pending_s == pytest.approx([2.0])
    assert ffmpeg.running_s == pytest.approx([4.0])

    assert (audio2srt.invocations, audio2srt.in_lambda, audio2srt.in_batch) == (0, 0, 0)
    assert audio2srt.lambda_s == audio2srt.pending_s == audio2srt.running_s == []

    assert (yolov3.invocations, yolov3.in_lambda, yolov3.in_batch, yolov3.failed) == (2, 0, 2, 1)
    assert yolov3.lambda_s == pytest.approx([0.25, 0.5])
    assert yolov3.pending_s == pytest.approx([0.75, 0.5])
    assert yolov3.running_s == pytest.approx([5.0, 1.0])


def test_summaries_of_unfinished_and_unlisted_functions() -> None:
    timeline = Timeline(0.0)
    _add(timeline, function="late", triggered=1.0)
    _add(timeline, function="late", triggered=1.0, status="running", lambda_start=2.0)
    _add(timeline, **{**DELEGATED, "job_status": "RUNNING", "batch_ended": None})
    ffmpeg, late = timeline.summaries(["ffmpeg"])
    # Only what has ended is timed.
    assert (ffmpeg.invocations, ffmpeg.in_batch, ffmpeg.failed) == (1, 1, 0)
    assert ffmpeg.pending_s == [2.0]
    assert ffmpeg.running_s == []
    assert late.function == "late"
    assert (late.invocations, late.in_lambda, late.in_batch, late.failed) == (2, 0, 0, 0)
    assert late.lambda_s == []


def test_report_lists_each_function(timeline: Timeline) -> None:
    report = timeline.report(FUNCTIONS)
    lines = report.splitlines()
    assert lines[0].split()[:2] == ["function", "invocations"]
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert set(rows) == set(FUNCTIONS)
    # invocations, in Lambda, in Batch, failed, then median / max of each time.
    assert rows["ffmpeg"][1:5] == ["3", "1", "1", "1"]
    assert " ".join(rows["ffmpeg"][5:]) == "1.50 / 3.00 2.00 / 2.00 4.00 / 4.00"
    assert rows["audio2srt"][1:] == ["0", "0", "0", "0", "-", "-", "-"]
    assert rows["yolov3"][1:5] == ["2", "0", "2", "1"]
    assert "(times: median / max)" in report


def test_report_shows_failures_with_their_error_and_log(timeline: Timeline, tmp_path: Path) -> None:
    report = timeline.report(FUNCTIONS)
    assert "ffmpeg #5 for b/start/d.mp4: failed" in report
    assert "  error: ffmpeg: invalid data found when processing input" in report
    assert f"  log: {tmp_path / 'logs' / 'ffmpeg-0004.log'}" in report
    # The last 15 lines of the log.
    for number in range(26, 41):
        assert f"    ffmpeg line {number:03d}" in report
    assert "ffmpeg line 025" not in report

    assert "yolov3 #4 for b/video/c.avi: failed" in report
    assert "  error: the script exited with code 1" in report
    assert f"  Batch job log: {tmp_path / 'jobs' / 'job-4.log'}" in report
    assert "    CUDA error: out of memory" in report

    # The invocations that went well are not listed again.
    for number in (1, 2, 3):
        assert f" #{number} for " not in report


def test_report_tail_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"step {n:05d} of a long run\n" for n in range(1, 5001)))
    timeline = Timeline(0.0)
    _add(timeline, status="failed", lambda_start=0.0, lambda_end=1.0, error="boom", log=str(log))
    tail = [line for line in timeline.report(["ffmpeg"]).splitlines() if "step" in line]
    assert tail == [f"    step {n:05d} of a long run" for n in range(4986, 5001)]


def test_report_of_a_missing_log_still_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone.log"
    timeline = Timeline(0.0)
    _add(timeline, status="failed", lambda_start=0.0, lambda_end=1.0, error="x", log=str(missing))
    report = timeline.report(["ffmpeg"])
    assert report.rstrip().endswith(f"  log: {missing}")


def test_report_lists_unfinished_invocations() -> None:
    timeline = Timeline(0.0)
    _add(timeline, key="start/slow.mp4", status="running", lambda_start=1.0)
    _add(timeline, key="start/queued.mp4", **{**DELEGATED, "job_status": "RUNNABLE"})
    report = timeline.report(["ffmpeg"])
    assert "ffmpeg #1 for b/start/slow.mp4: unfinished (running" in report
    assert "ffmpeg #2 for b/start/queued.mp4: unfinished (delegated RUNNABLE)" in report


def test_report_of_an_empty_run() -> None:
    report = Timeline(0.0).report(FUNCTIONS)
    assert len(report.splitlines()) == 1 + len(FUNCTIONS) + 2
    assert report.splitlines()[-1].startswith("at most 0 Lambda invocation(s) at once")


def test_figures(timeline: Timeline) -> None:
    figures = timeline.figures(FUNCTIONS)

    # At 2.0 s the first invocation ends as two others start: three at once, not four.
    assert figures["lambda_max_running"] == 3
    assert figures["span_s"] == 10.0
    yolov3 = figures["functions"]["yolov3"]
    assert yolov3 == {
        "invocations": 2,
        "in_lambda": 0,
        "in_batch": 2,
        "failed": 1,
        "lambda_mean_s": 0.375,
        "lambda_max_s": 0.5,
        "batch_pending_mean_s": 0.625,
        "batch_pending_max_s": 0.75,
        "batch_running_mean_s": 3.0,
        "batch_running_max_s": 5.0,
        "batch_max_running": 2,
    }
    assert figures["functions"]["ffmpeg"]["batch_max_running"] == 1
    assert figures["functions"]["audio2srt"]["invocations"] == 0
    assert figures["functions"]["audio2srt"]["lambda_mean_s"] is None
    report = timeline.report(FUNCTIONS)
    assert (
        "at most 3 Lambda invocation(s) at once; Batch jobs at once: ffmpeg 1, yolov3 2" in report
    )


def test_to_json(timeline: Timeline, tmp_path: Path) -> None:
    _add(timeline, key="start/e.mp4", triggered=1 / 3, status="running", lambda_start=2 / 3)
    path = tmp_path / "timeline.json"
    timeline.to_json(path, now=12.345678, extra={"workflow": "av", "files": 6})

    data = json.loads(path.read_text())
    assert data["workflow"] == "av"
    assert data["files"] == 6
    assert data["duration_s"] == 12.346
    items = data["invocations"]
    assert [item["number"] for item in items] == [1, 2, 3, 4, 5, 6]
    assert [item["where"] for item in items] == [
        "lambda",
        "lambda, then batch",
        "batch",
        "batch",
        "lambda",
        "lambda",
    ]
    assert items[1]["phases"] == [
        {"phase": "queued", "start": 1.0, "end": 1.0},
        {"phase": "lambda", "start": 1.0, "end": 4.0},
        {"phase": "batch-pending", "start": 4.0, "end": 6.0},
        {"phase": "batch-running", "start": 6.0, "end": 10.0},
    ]
    last = items[-1]
    assert last["triggered"] == 0.333
    assert last["lambda_start"] == 0.667
    assert last["lambda_end"] is None
    # The open phase ends when the file was written.
    assert last["phases"][-1] == {"phase": "lambda", "start": 0.667, "end": 12.346}
    assert items[3]["error"] == "the script exited with code 1"
    assert items[3]["job_status"] == "FAILED"
    assert items[2]["gpu"] is True


def test_to_json_of_an_empty_run(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    Timeline(0.0).to_json(path, now=0.0)
    assert json.loads(path.read_text()) == {
        "duration_s": 0.0,
        "figures": {"functions": {}, "lambda_max_running": 0, "span_s": 0.0},
        "invocations": [],
    }


def _read_png(path: Path) -> Any:
    image = pytest.importorskip("matplotlib.image")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = image.imread(path)
    assert pixels.shape[0] > 0
    assert pixels.shape[1] > 0
    return pixels


def test_draw_writes_a_png(timeline: Timeline, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    # One still waiting for a Lambda slot, one still running in Batch.
    _add(timeline, key="start/waiting.mp4", triggered=9.0)
    _add(timeline, **{**DELEGATED, "key": "start/busy.mp4", "job_status": "RUNNING"})
    path = tmp_path / "timeline.png"
    timeline.draw(path, now=12.0, title="av workflow")
    pixels = _read_png(path)
    assert pixels.shape[1] > pixels.shape[0]


def test_draw_grows_with_the_invocations(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    small, large = Timeline(0.0), Timeline(0.0)
    _add(small, **LAMBDA_ONLY)
    for number in range(40):
        _add(large, key=f"start/{number}.mp4", **LAMBDA_ONLY)
    small.draw(tmp_path / "small.png", now=3.0)
    large.draw(tmp_path / "large.png", now=3.0)
    assert _read_png(tmp_path / "large.png").shape[0] > _read_png(tmp_path / "small.png").shape[0]


def test_draw_an_empty_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "empty.png"
    Timeline(0.0).draw(path, now=0.0)
    _read_png(path)
