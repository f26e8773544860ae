"""Downloads: the object (or body) of a record staged into the input folder.

The provider is the one the event names (OSCAR's delegated events), else the one of the
input holding the object (``matching_input``).  An input must fit on the filesystem of the
input folder (``/tmp`` in Lambda): one whose size the event gives is checked against the
free space before any request is made, and a download that runs out of space (``ENOSPC``)
leaves no partial file behind.  Both raise ``NoSpaceError``, for the runtime to hand the
record to Batch or fail it.
"""

from __future__ import annotations

import errno
import glob
import logging
import shutil
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from supervisor.config import StorageLocation
from supervisor.deadline import Deadline
from supervisor.errors import NoSpaceError, StagingError
from supervisor.events import Record
from supervisor.staging.paths import DEFAULT_BODY_NAME, input_path, safe_name
from supervisor.staging.stores import ProviderKey, Stores
from supervisor.storage.base import MIB

__all__ = ["SPACE_MARGIN", "FreeSpace", "disk_free", "download", "matching_input"]

logger = logging.getLogger(__name__)

FreeSpace = Callable[[Path], int]

# Room kept beside an input for the script, its log and small outputs.
SPACE_MARGIN = MIB
# ENOSPC, or a user's quota (EDQUOT) on filesystems that have one.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NO_DEADLINE = Deadline.none()


def disk_free(folder: Path) -> int:
    """The bytes an unprivileged writer may still write on the filesystem of ``folder``."""
    return shutil.disk_usage(folder).free


def download(
    record: Record,
    providers: Stores,
    input_dir: Path,
    *,
    inputs: Sequence[StorageLocation] = (),
    deadline: Deadline = _NO_DEADLINE,
    free_space: FreeSpace = disk_free,
    margin: int = SPACE_MARGIN,
) -> Path:
    """Stage the record's object (or body) into ``input_dir``; return the file's path.

    The transfer gets what is left before ``deadline``; ``DeadlineError`` when nothing is.

    ``NoSpaceError`` when the object's size (from the event) plus ``margin`` is more than
    ``free_space(input_dir)``, before any request; or when the download ran out of space,
    after removing what it had written.
    """
    if record.body is not None:
        return _save_body(record, input_dir)
    if not record.is_object:
        raise StagingError(f"a {record.source} record carries neither an object nor a body")
    dest = input_path(input_dir, record.key, bucket=record.bucket)
    provider = providers.get(*_input_provider(record, inputs))
    uri = provider.uri(record.bucket, record.key)
    timeout = deadline.timeout(f"download {uri}")
    input_dir.mkdir(parents=True, exist_ok=True)
    _check_room(record, uri, input_dir, free_space, margin)
    logger.info("Downloading %s to %s", uri, dest)
    try:
        provider.download(
            record.bucket, record.key, dest, timeout=timeout, size=record.size, etag=record.etag
        )
    except (StagingError, OSError) as exc:
        if not _out_of_space(exc):
            raise
        _discard(dest)
        free = _probe(free_space, input_dir)
        size = "" if record.size is None else f" of {_amount(record.size)}"
        room = "" if free is None else f" (only {_amount(free)} free there without it)"
        raise NoSpaceError(
            f"cannot download {uri}{size} to {input_dir}: no space left on the device{room}",
            bucket=record.bucket,
            key=record.key,
            size=record.size,
            free=free,
        ) from exc
    return dest


def matching_input(record: Record, inputs: Sequence[StorageLocation]) -> StorageLocation | None:
    """The input that holds the object of ``record``, or None when none does.

    An input holds an object of its provider's type in its bucket, under its folder
    (``bucket/folder`` holds ``folder/x`` and ``folder/sub/x``, not ``folder2/x``); a key
    with ``.`` or ``..`` parts is under no folder, since a provider may read it as a path.
    The provider an OSCAR delegated event names is the origin cluster's: its record is
    judged against the inputs of that provider when the definition has any, else against
    the inputs of its type, as the origin's copy of the same service would judge it.
    """
    if not record.is_object:
        return None
    if any(part in (".", "..") for part in record.key.split("/")):
        return None
    candidates = [item for item in inputs if item.provider_type == record.provider_type]
    if record.provider_id is not None:
        named = [item for item in candidates if item.provider_id == record.provider_id]
        candidates = named or candidates
    for location in candidates:
        folder = location.folder
        if location.bucket == record.bucket and (not folder or record.key.startswith(f"{folder}/")):
            return location
    return None


def _input_provider(record: Record, inputs: Sequence[StorageLocation]) -> ProviderKey:
    """The provider the event names (OSCAR's delegated events), else the input holding the
    record's object, else one with its type and bucket, else the first of its type, else
    the default one."""
    if record.provider_id is not None:
        return record.provider_type, record.provider_id
    same_type = [item for item in inputs if item.provider_type == record.provider_type]
    same_bucket = [item for item in same_type if item.bucket == record.bucket]
    holder = matching_input(record, inputs)
    chosen = holder or next(iter(same_bucket or same_type), None)
    if chosen is None:
        return record.provider_type, "default"
    return chosen.provider_type, chosen.provider_id


def _save_body(record: Record, input_dir: Path) -> Path:
    dest = input_dir / safe_name(record.file_name or DEFAULT_BODY_NAME)
    body = record.body or b""
    logger.info("Saving the %s request body (%d bytes) to %s", record.source, len(body), dest)
    try:
        input_dir.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(body)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            _discard(dest)
            raise NoSpaceError(
                f"cannot write the request body ({_amount(len(body))}) to {dest}: "
                "no space left on the device",
                size=len(body),
            ) from exc
        raise StagingError(f"cannot write the request body to {dest}: {exc.strerror}") from exc
    return dest


def _check_room(
    record: Record, uri: str, input_dir: Path, free_space: FreeSpace, margin: int
) -> None:
    if record.size is None:
        return
    free = _probe(free_space, input_dir)
    if free is None or record.size + margin <= free:
        return
    raise NoSpaceError(
        f"{uri} is {_amount(record.size)}: it does not fit in the {_amount(free)} free "
        f"under {input_dir} (with {_amount(margin)} kept free), so it was not downloaded",
        bucket=record.bucket,
        key=record.key,
        size=record.size,
        free=free,
    )


def _probe(free_space: FreeSpace, folder: Path) -> int | None:
    try:
        return free_space(folder)
    except OSError as exc:
        logger.warning("cannot tell the free space under %s: %s", folder, exc)
        return None


def _out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from is ENOSPC (or EDQUOT)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _NO_SPACE:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _discard(dest: Path) -> None:
    """Remove a partial input: the file, and s3transfer's ``NAME.xxxxxxxx`` temporary."""
    for path in (dest, *dest.parent.glob(glob.escape(dest.name) + ".*")):
        with suppress(OSError):
            path.unlink()


def _amount(size: int) -> str:
    if size >= 1024 * MIB:
        return f"{size} bytes ({size / (1024 * MIB):.1f} GiB)"
    return f"{size} bytes ({size / MIB:.1f} MiB)"
