"""The files of a layer: the distributions it leaves out, its zip, and Lambda's limits.

``layer/build.py`` loads this file by its path, as ``supervisor.publish`` loads
``layer/build.py``, and gives its names as its own.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
ZIP_LIMIT = 50 * MB  # a zip uploaded directly (--zip-file)
UNZIPPED_LIMIT = 250 * MB  # the function and all its layers, extracted

# Zip entries carry this time instead of the files' own, so that a rebuild is byte-identical.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """The layer could not be built; the message says what is missing or wrong."""


def canonical_name(name: str) -> str:
    """A distribution's name as pip compares it: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LayerSize:
    zip_bytes: int
    unzipped_bytes: int

    def describe(self) -> str:
        return (
            f"{self.zip_bytes / MB:.1f} MB zipped (limit {ZIP_LIMIT // MB} MB), "
            f"{self.unzipped_bytes / MB:.1f} MB unzipped (limit {UNZIPPED_LIMIT // MB} MB)"
        )


def measure(zip_path: Path) -> LayerSize:
    """The size of the zip file and the total size of the files it holds."""
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return LayerSize(zip_bytes=zip_path.stat().st_size, unzipped_bytes=unzipped)


def size_problems(
    size: LayerSize, *, zip_limit: int = ZIP_LIMIT, unzipped_limit: int = UNZIPPED_LIMIT
) -> list[str]:
    """What Lambda would refuse about a layer of this size (nothing: an empty list)."""
    problems = []
    if size.zip_bytes > zip_limit:
        problems.append(f"the zip is {size.zip_bytes} bytes, over the limit of {zip_limit}")
    if size.unzipped_bytes > unzipped_limit:
        problems.append(
            f"the unzipped files are {size.unzipped_bytes} bytes, over the limit of "
            f"{unzipped_limit}"
        )
    return problems


def remove_distributions(site: Path, names: Iterable[str]) -> list[str]:
    """Delete the installed distributions ``names`` (the files their RECORD lists) from ``site``."""
    wanted = {canonical_name(name) for name in names}
    removed = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name = dist_info.name.removesuffix(".dist-info").rpartition("-")[0]
        if canonical_name(name) not in wanted:
            continue
        for path in _recorded_files(site, dist_info):
            path.unlink(missing_ok=True)
        shutil.rmtree(dist_info, ignore_errors=True)
        removed.append(name)
    _remove_empty_folders(site)
    return removed


def _recorded_files(site: Path, dist_info: Path) -> Iterator[Path]:
    record = dist_info / "RECORD"
    if not record.is_file():
        raise BuildError(f"{dist_info.name} has no RECORD: cannot tell which files are its own")
    base = site.resolve()
    for line in record.read_text(encoding="utf-8").splitlines():
        relative = line.split(",", 1)[0]
        if not relative:
            continue
        path = (site / relative).resolve()
        # Scripts are recorded as ../../bin/NAME; anything outside the folder is not touched.
        if path.is_relative_to(base):
            yield path


def _remove_empty_folders(site: Path) -> None:
    for folder, _, _ in sorted(os.walk(site), key=lambda entry: len(entry[0]), reverse=True):
        path = Path(folder)
        if path != site and not any(path.iterdir()):
            path.rmdir()


def write_zip(tree: Path, zip_path: Path) -> None:
    """Zip the files under ``tree`` in name order, with fixed times and permissions."""
    files = sorted(
        (path.relative_to(tree).as_posix(), path) for path in tree.rglob("*") if path.is_file()
    )
    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.create_system = 3  # Unix, so that the permissions below are honoured
            mode = 0o755 if path.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    partial.replace(zip_path)
