"""Output filtering: which file goes to which output, under which key."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.config import OutputLocation
from supervisor.errors import StagingError
from supervisor.filtering import PlannedUpload, plan_uploads
from supervisor.workspace import remove_tree


def output(path: str, provider: str = "s3", **rules: Any) -> OutputLocation:
    return OutputLocation(storage_provider=provider, path=path, **rules)


def write(root: Path, *names: str) -> None:
    for name in names:
        file = root / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(name)


def keys(plans: list[PlannedUpload]) -> list[tuple[str, str]]:
    return [(plan.location.bucket, plan.key) for plan in plans]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({}, ["a.csv", "b.txt", "log-1.txt", "log-2.csv"]),
        ({"prefix": []}, ["a.csv", "b.txt", "log-1.txt", "log-2.csv"]),
        ({"prefix": ["log-"]}, ["log-1.txt", "log-2.csv"]),
        ({"suffix": [".csv"]}, ["a.csv", "log-2.csv"]),
        ({"suffix": [".csv", ".txt"]}, ["a.csv", "b.txt", "log-1.txt", "log-2.csv"]),
        ({"prefix": ["a", "b"]}, ["a.csv", "b.txt"]),
        ({"prefix": ["log-"], "suffix": [".txt"]}, ["log-1.txt"]),
        ({"prefix": ["zzz"]}, []),
        ({"suffix": "csv"}, ["a.csv", "log-2.csv"]),
    ],
)
def test_prefix_and_suffix_each_match_any(
    tmp_path: Path, rules: dict[str, Any], expected: list[str]
) -> None:
    write(tmp_path, "b.txt", "a.csv", "log-2.csv", "log-1.txt")

    plans = plan_uploads(tmp_path, [output("bucket", **rules)])

    assert [plan.key for plan in plans] == expected


def test_prefix_matches_the_base_name_not_the_folder(tmp_path: Path) -> None:
    write(tmp_path, "log-dir/result.txt", "sub/log-x.txt")

    plans = plan_uploads(tmp_path, [output("bucket/out", prefix=["log-"])])

    assert keys(plans) == [("bucket", "out/sub/log-x.txt")]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("bucket", ["a.txt", "deep/er/c.txt", "sub/b.txt"]),
        ("bucket/", ["a.txt", "deep/er/c.txt", "sub/b.txt"]),
        ("bucket/out", ["out/a.txt", "out/deep/er/c.txt", "out/sub/b.txt"]),
        ("/bucket/out/x/", ["out/x/a.txt", "out/x/deep/er/c.txt", "out/x/sub/b.txt"]),
    ],
)
def test_keys_keep_subfolders_without_double_or_leading_slash(
    tmp_path: Path, path: str, expected: list[str]
) -> None:
    write(tmp_path, "sub/b.txt", "a.txt", "deep/er/c.txt")

    plans = plan_uploads(tmp_path, [output(path)])

    assert [plan.key for plan in plans] == expected
    assert all("//" not in plan.key and not plan.key.startswith("/") for plan in plans)
    assert [plan.relative for plan in plans] == ["a.txt", "deep/er/c.txt", "sub/b.txt"]
    assert all(plan.source.read_text() == plan.relative for plan in plans)


def test_a_file_goes_to_every_output_it_matches(tmp_path: Path) -> None:
    write(tmp_path, "image.png", "table.csv")
    outputs = [
        output("images/in", suffix=[".png"]),
        output("everything"),
        output("mirror/x", provider="minio.backup"),
    ]

    plans = plan_uploads(tmp_path, outputs)

    planned = [(plan.location.storage_provider, plan.location.bucket, plan.key) for plan in plans]
    assert planned == [
        ("s3", "images", "in/image.png"),
        ("s3", "everything", "image.png"),
        ("minio.backup", "mirror", "x/image.png"),
        ("s3", "everything", "table.csv"),
        ("minio.backup", "mirror", "x/table.csv"),
    ]


def test_the_same_object_is_planned_once(tmp_path: Path) -> None:
    write(tmp_path, "a.txt")

    plans = plan_uploads(tmp_path, [output("b/f", prefix=["a"]), output("b/f", suffix=[".txt"])])

    assert keys(plans) == [("b", "f/a.txt")]


def test_no_outputs_or_no_folder_plan_nothing(tmp_path: Path) -> None:
    write(tmp_path, "a.txt")

    assert plan_uploads(tmp_path, []) == []
    assert plan_uploads(tmp_path / "missing", [output("bucket")]) == []


def test_empty_folders_plan_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty" / "deeper").mkdir(parents=True)

    assert plan_uploads(tmp_path, [output("bucket")]) == []


def test_a_link_to_a_file_outside_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    write(out, "kept.txt")
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (out / "passwd").symlink_to("/etc/passwd")
    (out / "secret").symlink_to(secret)
    (out / "relative").symlink_to("../secret.txt")

    with caplog.at_level(logging.WARNING, logger="supervisor.filtering"):
        plans = plan_uploads(out, [output("bucket")])

    assert [plan.key for plan in plans] == ["kept.txt"]
    warned = " ".join(record.getMessage() for record in caplog.records)
    for name in ("passwd", "secret", "relative"):
        assert str(out / name) in warned


def test_a_link_to_a_folder_or_nowhere_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "sub/a.txt")
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "etc").symlink_to("/etc")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")

    with caplog.at_level(logging.WARNING, logger="supervisor.filtering"):
        plans = plan_uploads(tmp_path, [output("bucket")])

    assert [plan.key for plan in plans] == ["sub/a.txt"]
    assert len(caplog.records) == 3


def test_a_link_to_a_file_inside_is_followed(tmp_path: Path) -> None:
    write(tmp_path, "data/real.txt")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "data" / "real.txt")
    (tmp_path / "data" / "relative.txt").symlink_to("real.txt")

    plans = plan_uploads(tmp_path, [output("bucket/o", suffix=[".txt"])])

    assert [plan.key for plan in plans] == ["o/alias.txt", "o/data/real.txt", "o/data/relative.txt"]
    assert {plan.source for plan in plans} == {(tmp_path / "data" / "real.txt").resolve()}


def test_other_special_files_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a.txt")
    os.mkfifo(tmp_path / "pipe")

    plans = plan_uploads(tmp_path, [output("bucket")])

    assert [plan.key for plan in plans] == ["a.txt"]


@pytest.mark.parametrize("replaced", ["output", "invocation"])
def test_a_folder_replaced_by_a_link_is_refused(tmp_path: Path, replaced: str) -> None:
    outside = tmp_path / "outside"
    write(outside / "output", "secret.txt")
    invocation = tmp_path / "invocation"
    if replaced == "output":
        invocation.mkdir()
        (invocation / "output").symlink_to(outside / "output")
    else:
        invocation.symlink_to(outside)

    with pytest.raises(StagingError, match=r"replaced the folder .* by a symbolic link"):
        plan_uploads(invocation / "output", [output("bucket")])


def test_a_name_that_is_not_utf8_is_refused_naming_it(tmp_path: Path) -> None:
    write(tmp_path, "good.txt")
    (tmp_path / os.fsdecode(b"bad\xffname.txt")).write_text("x")

    with pytest.raises(StagingError, match=r"'bad\\udcffname.txt'.*not UTF-8"):
        plan_uploads(tmp_path, [output("bucket")])
    assert keys(plan_uploads(tmp_path, [output("bucket", suffix=[".csv"])])) == []


def test_two_files_that_would_land_on_one_key_are_refused_naming_both(tmp_path: Path) -> None:
    write(tmp_path, "sub/x.txt", "x.txt", "y.txt")
    outputs = [output("bucket/results"), output("bucket/results/sub")]

    with pytest.raises(StagingError) as raised:
        plan_uploads(tmp_path, outputs)

    message = str(raised.value)
    assert "nothing uploaded" in message
    assert "'sub/x.txt' and 'x.txt' both go to s3 bucket/'results/sub/x.txt'" in message


def test_the_same_file_through_two_outputs_to_one_key_is_planned_once(tmp_path: Path) -> None:
    write(tmp_path, "a.txt")
    outputs = [output("bucket/out", suffix=[".txt"]), output("bucket/out", prefix=["a"])]
    assert keys(plan_uploads(tmp_path, outputs)) == [("bucket", "out/a.txt")]


def deep_tree(root: Path, levels: int, name: str = "d") -> str:
    """``levels`` folders one inside the other, with a file at the bottom; its relative path.

    Made one folder at a time: ``Path.mkdir(parents=True)`` recurses once per level.
    """
    folder = root
    for _ in range(levels):
        folder = folder / name
        folder.mkdir()
    (folder / "bottom.txt").write_text("bottom")
    return "/".join([name] * levels) + "/bottom.txt"


@pytest.fixture
def deep_root(tmp_path: Path) -> Iterator[Path]:
    """A folder removed after the test with ``remove_tree``: pytest's own clean-up recurses."""
    root = tmp_path / "deep"
    root.mkdir()
    yield root
    assert remove_tree(root)
    assert not root.exists()


def test_a_tree_deeper_than_the_recursion_limit_is_walked(deep_root: Path) -> None:
    """WebDAV keys have no length limit: the file 1,100 folders down is planned."""
    relative = deep_tree(deep_root, 1100)
    write(deep_root, "top.txt")

    plans = plan_uploads(deep_root, [output("data/results", provider="webdav.dcache")])

    assert [plan.relative for plan in plans] == [relative, "top.txt"]


def test_a_key_longer_than_s3_allows_is_refused_with_its_size(deep_root: Path) -> None:
    deep_tree(deep_root, 1100)

    with pytest.raises(StagingError) as raised:
        plan_uploads(deep_root, [output("bucket/results")])

    message = str(raised.value)
    assert "would need a key of 2,218 bytes" in message
    assert "at most 1,024 bytes" in message
    assert len(message) < 500


def test_a_key_of_1024_bytes_is_planned(tmp_path: Path) -> None:
    folders = "/".join(["f" * 200] * 4)
    relative = f"{folders}/" + "a" * (1024 - len("results/") - len(folders) - 1)
    write(tmp_path, relative)
    assert keys(plan_uploads(tmp_path, [output("bucket/results")])) == [
        ("bucket", f"results/{relative}")
    ]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_files_that_match_no_output_are_named_with_what_the_outputs_take(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "a.csv", "b.log", "sub/c.tmp")
    outputs = [output("bucket/csv", suffix=[".csv"]), output("b/logs", prefix=["x", "y"])]

    plans = plan_uploads(tmp_path, outputs)

    assert [plan.relative for plan in plans] == ["a.csv"]
    assert warnings_of(caplog) == [
        "Not uploaded, matching no output: 'b.log', 'sub/c.tmp' (the outputs take bucket/csv: "
        "suffix '.csv'; b/logs: prefix 'x' or 'y')"
    ]


def test_more_unmatched_files_than_a_line_holds_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, *(f"{index:02}.log" for index in range(12)))

    plan_uploads(tmp_path, [output("bucket", suffix=[".csv"])])

    (warning,) = warnings_of(caplog)
    assert "'09.log' and 2 more (the outputs take bucket: suffix '.csv')" in warning


def test_an_empty_output_folder_is_said_when_outputs_are_defined(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert plan_uploads(tmp_path, [output("bucket")]) == []
    assert warnings_of(caplog) == [
        "The script wrote no file to its output folder (TMP_OUTPUT_DIR): nothing to upload"
    ]


def test_files_written_without_outputs_are_counted_and_nothing_is_said_of_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plan_uploads(empty, []) == []
    assert warnings_of(caplog) == []

    write(tmp_path / "full", "a.txt", "sub/b.txt")
    assert plan_uploads(tmp_path / "full", []) == []
    assert warnings_of(caplog) == [
        "The script wrote 2 file(s) to its output folder, but the function definition has no "
        "output: nothing uploaded"
    ]
