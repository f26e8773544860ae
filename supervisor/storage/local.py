"""The ``local`` storage type: a folder holding one subfolder per bucket.

``LocalStorage`` is what ``storage_providers.local.ID`` (``LocalProvider``) names, and the
embedded default of a local run, where every provider is one storage folder.  Every path
stays inside the folder (``UnsafeKeyError`` otherwise) and every write is atomic: a copy
through a temporary file in the destination folder, renamed once complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from pydantic import Field

from supervisor.errors import DeadlineError, StagingError, UnsafeKeyError
from supervisor.models import Model
from supervisor.storage.base import MIB, Clients, StorageType, UploadItem, part_problem

__all__ = ["LOCAL", "Announce", "LocalProvider", "LocalStorage"]

# Called with the bucket, the key and the size of each object written.
Announce = Callable[[str, str, int], object]


class LocalProvider(Model):
    """A folder holding one subfolder per bucket."""

    root: Path = Field(description="Folder holding one subfolder per bucket.")


class LocalStorage:
    """A folder with one subfolder per bucket; object ``key`` is the file ``root/bucket/key``.

    ``announce``, when given, is called with the bucket, the key and the size of every
    object written, after it is in place (a local workflow's bucket notifications:
    ``supervisor.local.notifications``).  ``clock`` (seconds) times ``upload_many``.
    """

    def __init__(
        self,
        root: Path,
        *,
        announce: Announce | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.announce = announce
        self._clock = clock

    def uri(self, bucket: str, key: str) -> str:
        return str(self.root / bucket / key)

    def path(self, bucket: str, key: str) -> Path:
        """The file holding the object; ``UnsafeKeyError`` if outside ``root/bucket``."""
        problem = part_problem("bucket name", bucket, allow_slash=False) or part_problem(
            "key", key, allow_slash=True
        )
        if problem is None:
            folder = (self.root / bucket).resolve()
            path = self.root / bucket / key
            if not path.resolve().is_relative_to(folder):
                problem = f"{path} is outside {folder}"
        if problem is not None:
            raise UnsafeKeyError(
                f"unsafe local object {bucket}/{key!r}: {problem}", bucket=bucket, key=key
            )
        return self.root / bucket / key

    def download(
        self,
        bucket: str,
        key: str,
        dest: Path,
        *,
        timeout: float | None = None,
        size: int | None = None,
        etag: str | None = None,
    ) -> None:
        """Copy the object to ``dest``; a local copy is not bounded by ``timeout``."""
        source = self.path(bucket, key)
        if not source.is_file():
            raise StagingError(
                f"cannot download {source}: the object {bucket}/{key} does not exist",
                bucket=bucket,
                key=key,
            )
        _copy(source, dest, bucket, key)

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        end = None if timeout is None else self._clock() + timeout
        uris: list[str] = []
        for item in items:
            if end is not None and self._clock() >= end:
                raise DeadlineError(
                    f"no time left to upload {item.source} to {item.bucket}", uploaded=uris
                )
            try:
                self.put(item.source, item.bucket, item.key)
            except StagingError as exc:
                exc.uploaded = tuple(uris)
                raise
            uris.append(self.uri(item.bucket, item.key))
        return uris

    def delete(self, bucket: str, key: str) -> None:
        """Remove the file holding the object, if there is one."""
        path = self.path(bucket, key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StagingError(
                f"cannot delete {path}: {exc.strerror or exc}", bucket=bucket, key=key
            ) from exc

    def put(self, source: Path, bucket: str, key: str) -> Path:
        """Store the file ``source`` as ``bucket/key`` (atomically) and announce it."""
        dest = self.path(bucket, key)
        _copy(source, dest, bucket, key)
        if self.announce is not None:
            self.announce(bucket, key, dest.stat().st_size)
        return dest


def _copy(source: Path, dest: Path, bucket: str, key: str) -> None:
    try:
        _copy_atomic(source, dest)
    except OSError as exc:
        raise StagingError(
            f"cannot copy {source} to {dest}: {exc.strerror or exc}", bucket=bucket, key=key
        ) from exc


def _copy_atomic(source: Path, dest: Path) -> None:
    """Copy through a temporary file in the destination folder so no half-written file is seen."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, MIB)
        os.chmod(temporary, 0o644)
        os.replace(temporary, dest)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise


def _local_storage(ident: str, settings: LocalProvider, clients: Clients) -> LocalStorage:
    return LocalStorage(settings.root)


LOCAL = StorageType(
    "local", LocalProvider, "Local folders standing for buckets, by ID.", _local_storage
)
