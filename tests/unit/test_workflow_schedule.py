"""When a workflow run uploads its files, and under which names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from supervisor.workflow.runner import Upload, schedule_uploads

# The schedule of the paper's audio and video experiment, in minutes: one file at 0, one at
# 1, three at 5 and five at 10.  A time scale of 60 turns those minutes into seconds.
PAPER = "0:1,60:1,300:3,600:5"
PAPER_TIMES = [0.0, 1.0, 5.0, 5.0, 5.0, 10.0, 10.0, 10.0, 10.0, 10.0]


def _files(*names: str) -> list[Path]:
    return [Path("/data") / name for name in names]


TEN = _files(*(f"movie{n}.mp4" for n in range(10)))


def test_paper_schedule_with_ten_files() -> None:
    uploads = schedule_uploads(PAPER, 60, TEN, "scar-av-workflow/start")
    assert [upload.at for upload in uploads] == PAPER_TIMES
    assert [upload.file for upload in uploads] == TEN
    assert [upload.key for upload in uploads] == [f"start/movie{n}.mp4" for n in range(10)]
    assert {upload.bucket for upload in uploads} == {"scar-av-workflow"}


def test_paper_schedule_with_two_files_numbers_the_names() -> None:
    files = _files("video.mp4", "clip.mkv")
    uploads = schedule_uploads(PAPER, 60, files, "scar-av-workflow/start")
    assert [upload.at for upload in uploads] == PAPER_TIMES
    # The files in turn, each sent five times under a name of its own.
    assert [upload.file for upload in uploads] == files * 5
    assert [upload.key for upload in uploads] == [
        "start/video-01.mp4",
        "start/clip-02.mkv",
        "start/video-03.mp4",
        "start/clip-04.mkv",
        "start/video-05.mp4",
        "start/clip-06.mkv",
        "start/video-07.mp4",
        "start/clip-08.mkv",
        "start/video-09.mp4",
        "start/clip-10.mkv",
    ]


def test_one_file_sent_ten_times() -> None:
    uploads = schedule_uploads(PAPER, 60, _files("video.mp4"), "b/start")
    assert [upload.key for upload in uploads] == [f"start/video-{n:02d}.mp4" for n in range(1, 11)]
    assert len({upload.key for upload in uploads}) == 10


def test_a_file_without_suffix_is_numbered_too() -> None:
    uploads = schedule_uploads("0:2", 1, _files("README"), "b")
    assert [upload.key for upload in uploads] == ["README-01", "README-02"]


@pytest.mark.parametrize(
    ("schedule", "scale", "times"),
    [
        ("0:1", 1, [0.0]),
        ("5", 1, [5.0]),  # COUNT defaults to 1
        ("0:2", 1, [0.0, 0.0]),
        (" 0:1 , 30:2 ", 1, [0.0, 30.0, 30.0]),
        ("1.5:1", 1, [1.5]),
        ("60:1,0:1", 60, [0.0, 1.0]),  # in time order, whatever the order written
        ("90:1", 60, [1.5]),
        ("10:1", 0.5, [20.0]),
    ],
)
def test_times(schedule: str, scale: float, times: list[float]) -> None:
    files = _files(*(f"f{n}.txt" for n in range(len(times))))
    assert [upload.at for upload in schedule_uploads(schedule, scale, files, "b")] == times


def test_more_files_than_the_schedule_sends() -> None:
    uploads = schedule_uploads("0:1,10:1", 1, TEN, "b/in")
    assert [upload.file for upload in uploads] == TEN[:2]
    assert [upload.key for upload in uploads] == ["in/movie0.mp4", "in/movie1.mp4"]


@pytest.mark.parametrize("schedule", [PAPER, "0:1", "30:1,60:1"])
def test_without_repeat_each_file_once_at_the_first_instant(schedule: str) -> None:
    files = _files("a.mp4", "b.mp4", "c.mp4")
    uploads = schedule_uploads(schedule, 60, files, "b/start", repeat=False)
    first = min(float(part.split(":")[0]) for part in schedule.split(",")) / 60
    assert uploads == [
        Upload(files[0], "b", "start/a.mp4", first),
        Upload(files[1], "b", "start/b.mp4", first),
        Upload(files[2], "b", "start/c.mp4", first),
    ]


@pytest.mark.parametrize(
    ("target", "bucket", "key"),
    [
        ("bucket/a/b", "bucket", "a/b/video.mp4"),
        ("bucket/a/b/", "bucket", "a/b/video.mp4"),
        ("/bucket/a/", "bucket", "a/video.mp4"),
        ("bucket", "bucket", "video.mp4"),
        ("bucket/", "bucket", "video.mp4"),
    ],
)
def test_target(target: str, bucket: str, key: str) -> None:
    (upload,) = schedule_uploads("0:1", 1, _files("video.mp4"), target)
    assert (upload.bucket, upload.key) == (bucket, key)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("x:1", "'x:1'"),
        ("1:x", "'1:x'"),
        ("1:0", "'1:0'"),
        ("-1:1", "'-1:1'"),
        ("1:-2", "'1:-2'"),
        ("nan:1", "'nan:1'"),
        ("", "AT:COUNT"),
        ("0:1,", "AT:COUNT"),
        ("0:1,,5:1", "AT:COUNT"),
        ("0:1:2", "'0:1:2'"),
    ],
)
def test_bad_schedules(schedule: str, words: str) -> None:
    with pytest.raises(ValueError, match="schedule") as caught:
        schedule_uploads(schedule, 60, _files("a.mp4"), "b/in")
    assert words in str(caught.value)


@pytest.mark.parametrize("scale", [0, -1, -60.0])
def test_bad_time_scale(scale: float) -> None:
    with pytest.raises(ValueError, match="time scale"):
        schedule_uploads(PAPER, scale, _files("a.mp4"), "b/in")


def test_no_files() -> None:
    with pytest.raises(ValueError, match="no file"):
        schedule_uploads(PAPER, 60, [], "b/in")


@pytest.mark.parametrize("target", ["", "/", "//"])
def test_empty_target(target: str) -> None:
    with pytest.raises(ValueError, match="BUCKET/PATH"):
        schedule_uploads(PAPER, 60, _files("a.mp4"), target)


# --- edge cases ------------------------------------------------------------------------


@pytest.mark.parametrize(("schedule", "scale"), [("inf:1", 60), ("1e999:1", 60), ("0:1", math.nan)])
def test_a_time_that_never_comes_is_refused(schedule: str, scale: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any message will do
        schedule_uploads(schedule, scale, _files("a.mp4"), "b/in")


@pytest.mark.parametrize("repeat", [False, True])
def test_two_files_with_the_same_name_get_keys_of_their_own(repeat: bool) -> None:
    files = [Path("/day1/video.mp4"), Path("/day2/video.mp4")]
    uploads = schedule_uploads("0:2", 1, files, "b/start", repeat=repeat)
    assert len({upload.key for upload in uploads}) == 2
