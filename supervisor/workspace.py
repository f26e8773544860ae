"""Work folders: the layout of one record's run, and removing it whatever the script left.

``InvocationPaths`` names the folders and files of a run under its work folder (the input,
the output, the script's TMPDIR and HOME, the script, its event and its log), made by
``InvocationPaths.create``.

A script may leave a tree deeper than Python's recursion limit (``mkdir -p`` a thousand
levels down), or deeper than ``PATH_MAX``, and folders it made unreadable or unwritable
(``chmod 000``).  ``remove_tree`` removes all of that without recursion and without long
paths: it holds one open folder at a time, relative to its parent, follows no symbolic
link, and gives a folder of its own owner back the rights it needs to empty it.  Climbing
back up through ``..``, it checks that it reached the folder it came from, so that a
folder moved away meanwhile never leads it outside the tree.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

__all__ = ["InvocationPaths", "remove_tree"]

logger = logging.getLogger(__name__)

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER_ALL = stat.S_IRWXU


@dataclass(frozen=True)
class InvocationPaths:
    """The folders and files of one record's run, all under ``work``."""

    work: Path

    @classmethod
    def create(cls, root: Path) -> InvocationPaths:
        """A fresh work folder under ``root``, with its input and output folders."""
        paths = cls(Path(tempfile.mkdtemp(prefix="invocation-", dir=root)))
        try:
            paths.input_dir.mkdir()
            paths.output_dir.mkdir()
        except BaseException:
            remove_tree(paths.work)
            raise
        return paths

    @property
    def input_dir(self) -> Path:
        return self.work / "input"

    @property
    def output_dir(self) -> Path:
        """Where the script writes what is uploaded (``TMP_OUTPUT_DIR``)."""
        return self.work / "output"

    @property
    def scratch(self) -> Path:
        """The script's ``TMPDIR``."""
        return self.work / "tmp"

    @property
    def home(self) -> Path:
        """The script's ``HOME`` when it runs as a user of its own."""
        return self.work / "home"

    @property
    def script(self) -> Path:
        return self.work / "script.sh"

    @property
    def event_file(self) -> Path:
        """The record's event (``EVENT_FILE``)."""
        return self.work / "event.json"

    @property
    def log(self) -> Path:
        """The script's output, as it wrote it."""
        return self.work / "output.log"


def remove_tree(path: Path) -> bool:
    """Remove the folder ``path`` and everything under it; True when it is gone.

    What cannot be removed is logged (a warning naming the folder and the reason) and left.
    """
    try:
        parent = os.open(path.parent, _FOLDER)
    except FileNotFoundError:
        return True
    except OSError as exc:
        logger.warning("Cannot remove the work folder %s: %s", path, exc.strerror or exc)
        return False
    try:
        _remove(parent, path.name)
    except FileNotFoundError:
        return True
    except OSError as exc:
        logger.warning("Cannot remove the work folder %s: %s", path, exc.strerror or exc)
        return False
    finally:
        os.close(parent)
    return True


def _remove(top_parent: int, top: str) -> None:
    """Empty and remove the folder ``top`` of the folder open as ``top_parent``."""
    folder = _open_folder(top_parent, top)
    # Per level, from the top: the folder's identity, its name in its parent, and the
    # sub-folders still to remove (its files are removed when it is first opened).
    levels: list[tuple[tuple[int, int], str, list[str]]] = []
    try:
        levels.append((_identity(folder), top, _remove_files(folder)))
        while levels:
            _, name, pending = levels[-1]
            if pending:
                child_name = pending.pop()
                try:
                    child = _open_folder(folder, child_name)
                except FileNotFoundError:
                    continue
                os.close(folder)
                folder = child
                levels.append((_identity(folder), child_name, _remove_files(folder)))
                continue
            levels.pop()
            if levels:
                parent = os.open("..", _FOLDER, dir_fd=folder)
                if _identity(parent) != levels[-1][0]:
                    os.close(parent)
                    raise OSError(f"the folder {name!r} was moved while it was being removed")
            else:
                parent = os.dup(top_parent)
            os.close(folder)
            folder = parent
            _retry_with_rights(folder, partial(os.rmdir, name, dir_fd=folder))
    finally:
        os.close(folder)


def _open_folder(parent: int, name: str) -> int:
    """Open the folder ``name`` (never a link); one made unreadable gets its owner's rights."""
    try:
        return os.open(name, _FOLDER, dir_fd=parent)
    except PermissionError:
        # Only an owner who is not root gets here: root reads any folder.  The folder is
        # then this user's own, and no link is followed (O_NOFOLLOW refused it above).
        os.chmod(name, _OWNER_ALL, dir_fd=parent)
        return os.open(name, _FOLDER, dir_fd=parent)


def _remove_files(folder: int) -> list[str]:
    """Remove every entry of ``folder`` that is not a folder; return the names of those that are."""
    with os.scandir(folder) as listing:
        entries = list(listing)
    folders = []
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.name)
            continue
        try:
            _retry_with_rights(folder, partial(os.unlink, entry.name, dir_fd=folder))
        except FileNotFoundError:
            continue
    return folders


def _retry_with_rights(folder: int, action: Callable[[], None]) -> None:
    """Run ``action``; when it is refused, give ``folder`` its owner's rights and run it again."""
    try:
        action()
    except PermissionError:
        os.fchmod(folder, _OWNER_ALL)
        action()


def _identity(folder: int) -> tuple[int, int]:
    info = os.fstat(folder)
    return info.st_dev, info.st_ino
