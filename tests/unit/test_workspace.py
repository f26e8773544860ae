"""Removing a work folder, whatever the script left in it."""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.workspace import remove_tree


def make_deep(root: Path, levels: int, name: str) -> None:
    """``levels`` folders one inside the other, made relative to each other's descriptor, so
    that the whole path may be longer than PATH_MAX; a file at the bottom."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=folder)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = child
        bottom = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=folder)
        os.close(bottom)
    finally:
        os.close(folder)


def test_a_tree_deeper_than_path_max_and_the_recursion_limit_is_removed(tmp_path: Path) -> None:
    work = tmp_path / "invocation"
    work.mkdir()
    make_deep(work, 1500, "folder")  # 1,500 x 7 characters: past PATH_MAX (4,096)

    assert remove_tree(work)

    assert not work.exists()
    assert list(tmp_path.iterdir()) == []


def test_folders_without_permissions_are_removed(tmp_path: Path) -> None:
    work = tmp_path / "invocation"
    for folder in ("output/none", "output/read-only", "output/no-read"):
        (work / folder).mkdir(parents=True)
        (work / folder / "file.txt").write_text("x")
    (work / "output/none").chmod(0)
    (work / "output/read-only").chmod(0o500)
    (work / "output/no-read").chmod(0o300)

    assert remove_tree(work)

    assert not work.exists()


def test_links_are_removed_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    work = tmp_path / "invocation"
    work.mkdir()
    (work / "to-folder").symlink_to(outside)
    (work / "to-file").symlink_to(outside / "keep.txt")

    assert remove_tree(work)

    assert not work.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_missing_folder_is_already_removed(tmp_path: Path) -> None:
    assert remove_tree(tmp_path / "never-made")
