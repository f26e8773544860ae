"""Local names of staged inputs: only a key's base name, always inside the input folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.errors import StagingError, UnsafeKeyError
from supervisor.staging.paths import input_path, safe_name


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("image.png", "image.png"),
        ("in/sub/image.png", "image.png"),
        ("a/../../x", "x"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("//abs//file.txt", "file.txt"),
        ("folder/my file.txt", "my file.txt"),
        ("folder/a+b=c.txt", "a+b=c.txt"),
        ("carpeta/imágen ñ 日本.jpg", "imágen ñ 日本.jpg"),
        ("folder/..hidden", "..hidden"),
        ("folder/.env", ".env"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_the_base_name_is_kept_inside_the_input_folder(tmp_path: Path, key: str, name: str) -> None:
    path = input_path(tmp_path, key)

    assert path == tmp_path / name
    assert path.parent == tmp_path


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("folder/", "folder marker"),
        ("/", "folder marker"),
        ("..", "not a file name"),
        ("a/..", "not a file name"),
        (".", "not a file name"),
        ("a/.", "not a file name"),
        ("bad\x00name", "NUL"),
        ("x" * 256, "246 bytes"),
        ("x" * 247, "246 bytes"),
        ("ñ" * 124, "246 bytes"),
    ],
)
def test_unsafe_keys_are_refused_naming_the_key(tmp_path: Path, key: str, reason: str) -> None:
    with pytest.raises(UnsafeKeyError, match=reason) as caught:
        input_path(tmp_path, key, bucket="my-bucket")

    assert repr(key) in str(caught.value)
    assert caught.value.bucket == "my-bucket"
    assert caught.value.key == key
    assert isinstance(caught.value, StagingError)


def test_a_link_in_the_input_folder_cannot_redirect_the_write(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "evil").symlink_to(tmp_path / "outside")

    with pytest.raises(UnsafeKeyError, match="not be inside"):
        input_path(inputs, "folder/evil")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("data.json", "data.json"),
        ("my file+1.csv", "my file+1.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\doc.txt", "doc.txt"),
        ("", "event_file"),
        ("..", "event_file"),
        ("dir/", "event_file"),
        ("nul\x00.txt", "event_file"),
        ("  ", "event_file"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_safe_name_default_can_be_chosen() -> None:
    assert safe_name("..", default="body.bin") == "body.bin"
