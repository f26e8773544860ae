"""Output filtering: which files of the output folder go to which output location.

``plan_uploads`` is a pure function of the folder's contents and the ``output`` rules.
A file goes to every output whose prefix list (any) and suffix list (any) both match its
base name; an empty list matches every name.  The key is the output's folder followed by
the file's path relative to the output folder, subfolders kept.

Symbolic links are followed only to regular files inside the output folder, so a script
cannot make the supervisor upload a file from elsewhere (``ln -s /etc/passwd out/x``).

Nothing is left out without a word: ``StagingError`` is raised, before anything is
uploaded, for an output folder (or invocation folder) that the script replaced by a link,
a folder under the output folder that cannot be read (``chmod 000``), a file name that is
not UTF-8 text, a key longer than an S3 or MinIO object key may be (1,024 bytes, a tree
some 500 folders deep), and two files that would land on one key (outputs whose folders
overlap, such as ``bucket`` and ``bucket/sub``).  The tree is walked without recursion, so
no depth of folders breaks the walk itself.  A warning names the files that match no output
(with what the outputs take), and says when the folder is empty although outputs are
defined, or holds files although the definition has no output.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from supervisor import storage
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
        _warn_if_written(output_dir)
        return []
    for folder in (output_dir, output_dir.parent):
        if folder.is_symlink():
            raise StagingError(
                f"nothing uploaded: the script replaced the folder {folder} by a symbolic link"
            )
    if not output_dir.is_dir():
        logger.warning("The output folder %s does not exist; nothing to upload", output_dir)
        return []
    walk = _Walk(output_dir.resolve())
    plan = _Plan(outputs)
    for source, relative in walk.files():
        plan.add(source, relative)
    if walk.unreadable:
        shown = ", ".join(walk.unreadable[:_LISTED])
        left = len(walk.unreadable) - _LISTED
        more = f" and {left} more (see the log)" if left > 0 else ""
        raise StagingError(
            "nothing uploaded: the script left paths in the output folder that cannot be "
            f"read: {shown}{more}"
        )
    if plan.clashes:
        raise StagingError(
            "nothing uploaded: two output files would overwrite one object: "
            + "; ".join(plan.clashes)
        )
    if plan.written == 0:
        logger.warning(
            "The script wrote no file to its output folder (TMP_OUTPUT_DIR): nothing to upload"
        )
    elif plan.unmatched:
        _warn_unmatched(plan.unmatched, outputs)
    return plan.uploads


@dataclass
class _Plan:
    """The uploads planned so far, the files written, those that match no output, and the
    objects that two files would overwrite."""

    outputs: Sequence[OutputLocation]
    uploads: list[PlannedUpload] = field(default_factory=list)
    # Where each planned object comes from: one file may go to one place twice (outputs
    # that differ only in their rules), two files may not.
    origins: dict[tuple[str, str, str], str] = field(default_factory=dict)
    clashes: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    written: int = 0

    def add(self, source: Path, relative: str) -> None:
        """Plan the file's upload to every output it matches."""
        self.written += 1
        matching = [location for location in self.outputs if _matches(relative, location)]
        if not matching:
            self.unmatched.append(relative)
        for location in matching:
            _check_name(relative)
            key = _key(location.folder, relative)
            _check_key(relative, key, location)
            target = (location.storage_provider, location.bucket, key)
            first = self.origins.get(target)
            if first is None:
                self.origins[target] = relative
                self.uploads.append(PlannedUpload(source, location, relative, key))
            elif first != relative:
                self.clashes.append(
                    f"{_shown(first)} and {_shown(relative)} both go to "
                    f"{location.storage_provider} {location.bucket}/{_shown(key)}"
                )


def _warn_if_written(output_dir: Path) -> None:
    """Files written by a script of a function that has no output are never uploaded."""
    if output_dir.is_symlink() or not output_dir.is_dir():
        return
    written = sum(1 for _ in _Walk(output_dir.resolve()).files())
    if written:
        logger.warning(
            "The script wrote %d file(s) to its output folder, but the function definition "
            "has no output: nothing uploaded",
            written,
        )


def _warn_unmatched(unmatched: list[str], outputs: Sequence[OutputLocation]) -> None:
    names = ", ".join(_shown(name) for name in unmatched[:_LISTED])
    left = len(unmatched) - _LISTED
    more = f" and {left} more" if left > 0 else ""
    logger.warning(
        "Not uploaded, matching no output: %s%s (the outputs take %s)",
        names,
        more,
        "; ".join(_takes(location) for location in outputs),
    )


def _takes(location: OutputLocation) -> str:
    """What an output takes, in words: ``bucket/out: suffix '.csv'``."""
    rules = [
        f"{word} {' or '.join(repr(value) for value in values)}"
        for word, values in (("prefix", location.prefix), ("suffix", location.suffix))
        if values
    ]
    return f"{location.path}: {' and '.join(rules) or 'every file'}"


# Folders or clashes named in an error message; the log has them all.
_LISTED = 10
# A name longer than this is shown by its two ends in messages.
_SHOWN = 120


def _check_name(relative: str) -> None:
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise StagingError(
            f"cannot upload the output file {relative!r}: its name is not UTF-8 text, "
            "which an object key must be"
        ) from None


def _check_key(relative: str, key: str, location: OutputLocation) -> None:
    size = len(key.encode("utf-8"))
    limit = storage.get(location.provider_type).max_key_bytes
    if limit is not None and size > limit:
        raise StagingError(
            f"nothing uploaded: the output file {_shown(relative)} would need a key of "
            f"{size:,} bytes in {location.storage_provider} {location.path}, and an object "
            f"key holds at most {limit:,} bytes (too many or too long folder names)"
        )


def _shown(text: str) -> str:
    """``text`` for a one-line message: control characters escaped, a long one shortened."""
    printable = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    if len(printable) <= _SHOWN:
        return repr(printable)
    half = _SHOWN // 2
    return f"{printable[:half]!r}...{printable[-half:]!r} ({len(text):,} characters)"


def _matches(relative: str, location: OutputLocation) -> bool:
    name = relative.rpartition("/")[2]
    prefix_ok = not location.prefix or name.startswith(location.prefix)
    suffix_ok = not location.suffix or name.endswith(location.suffix)
    return prefix_ok and suffix_ok


def _key(folder: str, relative: str) -> str:
    return f"{folder}/{relative}" if folder else relative


@dataclass
class _Walk:
    """The files under ``root``, and the folders under it that could not be listed."""

    root: Path
    unreadable: list[str] = field(default_factory=list)

    def files(self) -> Iterator[tuple[Path, str]]:
        """Yield ``(file to read, path relative to root)`` for each regular file, in name
        order, depth first, with a stack of listings rather than recursion.

        The type of an entry comes with the folder's listing (``os.scandir``): no ``lstat``
        per file.
        """
        top = self._listing(self.root, "")
        if top is None:
            return
        stack: list[tuple[Path, str, Iterator[os.DirEntry[str]]]] = [(self.root, "", top)]
        while stack:
            folder, prefix, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            relative = prefix + entry.name
            found = self._visit(folder / entry.name, relative, entry, stack)
            if found is not None:
                yield found, relative

    def _visit(
        self,
        path: Path,
        relative: str,
        entry: os.DirEntry[str],
        stack: list[tuple[Path, str, Iterator[os.DirEntry[str]]]],
    ) -> Path | None:
        """The file to read for one entry of a listing, or None: a folder's listing goes
        on ``stack``, a link is followed, anything else is skipped with a word."""
        try:
            mode = _mode(entry)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._cannot_read(path, relative, exc)
            return None
        if stat.S_ISLNK(mode):
            return _link_target(self.root, path)
        if stat.S_ISDIR(mode):
            listing = self._listing(path, relative)
            if listing is not None:
                stack.append((path, relative + "/", listing))
            return None
        if stat.S_ISREG(mode):
            return path
        logger.warning("Skipping %s: not a regular file", path)
        return None

    def _listing(self, folder: Path, relative: str) -> Iterator[os.DirEntry[str]] | None:
        try:
            with os.scandir(folder) as listing:
                return iter(sorted(listing, key=lambda entry: entry.name))
        except OSError as exc:
            self._cannot_read(folder, relative or ".", exc)
            return None

    def _cannot_read(self, path: Path, relative: str, exc: OSError) -> None:
        reason = exc.strerror or str(exc)
        logger.error("Cannot read %s in the output folder: %s", path, reason)
        self.unreadable.append(f"{_shown(relative)} ({reason})")


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
