"""Output filtering: which files of the output folder go to which output location.

``plan_uploads`` is a pure function of the folder's contents and the ``output`` rules.
A file goes to every output whose prefix list (any) and suffix list (any) both match its
base name; an empty list matches every name.  The key is the output's folder followed by
the file's path relative to the output folder, subfolders kept.

Symbolic links are followed only to regular files inside the output folder, so a script
cannot make the supervisor upload a file from elsewhere (``ln -s /etc/passwd out/x``); an
output folder (or invocation folder) that the script replaced by a link, and a file name
that is not UTF-8 text (no object key can hold it), raise ``StagingError``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.config import OutputLocation
from supervisor.errors import StagingError

__all__ = ["PlannedUpload", "plan_uploads"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedUpload:
    """One file to upload to one output location.

    ``source`` is the file to read (a followed link's target), ``relative`` its path
    inside the output folder and ``key`` the object key inside ``location.bucket``.
    """

    source: Path
    location: OutputLocation
    relative: str
    key: str


def plan_uploads(output_dir: Path, outputs: Sequence[OutputLocation]) -> list[PlannedUpload]:
    """Pair every file under ``output_dir`` with every output it matches, in name order."""
    if not outputs:
        return []
    for folder in (output_dir, output_dir.parent):
        if folder.is_symlink():
            raise StagingError(
                f"nothing uploaded: the script replaced the folder {folder} by a symbolic link"
            )
    if not output_dir.is_dir():
        logger.warning("The output folder %s does not exist; nothing to upload", output_dir)
        return []
    root = output_dir.resolve()
    plans: list[PlannedUpload] = []
    seen: set[tuple[str, str, str]] = set()
    for source, relative in _files(root, root):
        for location in outputs:
            if not _matches(relative, location):
                continue
            _check_name(relative)
            key = _key(location.folder, relative)
            target = (location.storage_provider, location.bucket, key)
            if target in seen:
                continue
            seen.add(target)
            plans.append(PlannedUpload(source, location, relative, key))
    return plans


def _check_name(relative: str) -> None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise StagingError(
            f"cannot upload the output file {relative!r}: its name is not UTF-8 text, "
            "which an object key must be"
        ) from None


def _matches(relative: str, location: OutputLocation) -> bool:
    name = relative.rpartition("/")[2]
    prefix_ok = not location.prefix or name.startswith(location.prefix)
    suffix_ok = not location.suffix or name.endswith(location.suffix)
    return prefix_ok and suffix_ok


def _key(folder: str, relative: str) -> str:
    return f"{folder}/{relative}" if folder else relative


def _files(root: Path, folder: Path, prefix: str = "") -> Iterator[tuple[Path, str]]:
    """Yield ``(file to read, path relative to root)`` for each regular file, sorted by name.

    ``prefix`` is ``folder`` relative to ``root``, with a trailing slash.  The type of an
    entry comes with the folder's listing (``os.scandir``): no ``lstat`` per file.
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        logger.warning("Skipping the output folder %s: %s", folder, exc.strerror or exc)
        return
    for entry in entries:
        relative = prefix + entry.name
        path = folder / entry.name
        try:
            mode = _mode(entry)
        except OSError:
            continue
        if stat.S_ISLNK(mode):
            target = _link_target(root, path)
            if target is not None:
                yield target, relative
        elif stat.S_ISDIR(mode):
            yield from _files(root, path, relative + "/")
        elif stat.S_ISREG(mode):
            yield path, relative
        else:
            logger.warning("Skipping %s: not a regular file", path)


def _mode(entry: os.DirEntry[str]) -> int:
    """The file type bits of ``entry`` itself (a link is a link), from the listing if it says."""
    if entry.is_symlink():
        return stat.S_IFLNK
    if entry.is_dir(follow_symlinks=False):
        return stat.S_IFDIR
    if entry.is_file(follow_symlinks=False):
        return stat.S_IFREG
    return entry.stat(follow_symlinks=False).st_mode


def _link_target(root: Path, link: Path) -> Path | None:
    """The link's target when it is a regular file inside ``root``; None (and a warning) if not."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        logger.warning("Skipping the symbolic link %s: its target does not exist", link)
        return None
    if not target.is_relative_to(root):
        logger.warning("Skipping the symbolic link %s: it points outside the output folder", link)
        return None
    if not target.is_file():
        logger.warning("Skipping the symbolic link %s: it does not point to a regular file", link)
        return None
    return target
