"""Local file names for staged inputs.

An object key is chosen by whoever wrote the object, so it is never used as a path:
only its base name (the part after the last ``/``) becomes a file name inside the input
folder, and a key whose base name cannot be one raises ``UnsafeKeyError``.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.errors import UnsafeKeyError

__all__ = ["DEFAULT_BODY_NAME", "input_path", "safe_name"]

DEFAULT_BODY_NAME = "event_file"
# 255 bytes is the file system's limit; s3transfer downloads to NAME.XXXXXXXX first and
# shortens NAME by characters, not bytes, so a longer multi-byte name fails there.
_MAX_NAME_BYTES = 255 - len(".XXXXXXXX")


def input_path(input_dir: Path, key: str, *, bucket: str = "") -> Path:
    """The file inside ``input_dir`` that the object ``key`` is downloaded to."""
    name = key.rpartition("/")[2]
    path = input_dir / name
    problem = _key_problem(key) or _name_problem(name) or _outside_problem(input_dir, path)
    if problem is not None:
        raise UnsafeKeyError(
            f"cannot stage the object key {key!r} as a local file: {problem}",
            bucket=bucket,
            key=key,
        )
    return path


def safe_name(name: str, default: str = DEFAULT_BODY_NAME) -> str:
    """A file name for a client-chosen ``name``: its base name, or ``default`` if unusable."""
    base = name.replace("\\", "/").rpartition("/")[2].strip()
    return default if _name_problem(base) is not None else base


def _key_problem(key: str) -> str | None:
    if not key:
        return "it is empty"
    if key.endswith("/"):
        return "it ends with '/' (a folder marker, not a file)"
    return None


def _name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a single file name, or None when it can."""
    if name in ("", ".", ".."):
        return f"its base name {name!r} is not a file name"
    if "\x00" in name:
        return "it contains a NUL character"
    try:
        size = len(os.fsencode(name))
    except UnicodeError:
        return "its base name cannot be encoded as a file name"
    if size > _MAX_NAME_BYTES:
        return f"its base name is longer than {_MAX_NAME_BYTES} bytes"
    return None


def _outside_problem(input_dir: Path, path: Path) -> str | None:
    if path.parent != input_dir or not path.resolve().is_relative_to(input_dir.resolve()):
        return f"{path} would not be inside {input_dir}"
    return None
