"""Staging: inputs downloaded into the input folder, planned outputs uploaded.

The stores of a function (``Stores``, built once by ``build_providers`` from the
definition's ``storage_providers`` with the storage types of ``supervisor.storage``, which
do the transfers) are in ``stores``; the download of a record's object and the choice of
its provider in ``downloads``, with the local file name of a staged input in ``paths``;
small objects kept by URI (an event for a Batch job) in ``objects``.  Clients are created
on first use, or up front by ``Stores.prepare`` so that no client is built while the
deadline runs; their retries and timeouts are those of ``retries``.

The upload of the planned outputs is here: an upload of several files that fails part-way
names, in its error and in the log, the files stored before the failure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from supervisor.config import StorageLocation
from supervisor.deadline import Deadline
from supervisor.errors import DeadlineError, StagingError
from supervisor.events import Record
from supervisor.filtering import PlannedUpload
from supervisor.staging.downloads import (
    SPACE_MARGIN,
    FreeSpace,
    disk_free,
    download,
    matching_input,
)
from supervisor.staging.objects import ObjectUri, delete_bytes, get_bytes, put_bytes
from supervisor.staging.paths import input_path, safe_name
from supervisor.staging.stores import ProviderKey, Stores, build_providers, unsupported
from supervisor.storage.base import StorageProvider, UploadItem
from supervisor.storage.local import LocalStorage
from supervisor.storage.s3 import S3Storage

__all__ = [
    "SPACE_MARGIN",
    "FreeSpace",
    "LocalStorage",
    "ObjectUri",
    "S3Storage",
    "StorageProvider",
    "Stores",
    "UploadItem",
    "build_providers",
    "delete_bytes",
    "disk_free",
    "download",
    "get_bytes",
    "input_path",
    "matching_input",
    "outside_inputs",
    "put_bytes",
    "safe_name",
    "upload",
]

logger = logging.getLogger(__name__)

# URIs named in the message of an upload that failed part-way; the log has them all.
_LISTED = 10
_NO_DEADLINE = Deadline.none()


def upload(
    plans: Sequence[PlannedUpload],
    providers: Stores,
    *,
    deadline: Deadline = _NO_DEADLINE,
) -> list[str]:
    """Upload the planned files, in parallel per provider, each group within what is left
    before ``deadline``; return their URIs in plan order."""
    groups: dict[ProviderKey, list[int]] = {}
    for index, plan in enumerate(plans):
        location = plan.location
        groups.setdefault((location.provider_type, location.provider_id), []).append(index)
    uris = [""] * len(plans)
    stored: list[str] = []
    # A provider that cannot be reached (Onedata) goes last, so that the files for the others
    # are stored before its group fails the upload.
    ordered = sorted(groups.items(), key=lambda group: unsupported(group[0][0]) is not None)
    for (provider_type, provider_id), indexes in ordered:
        provider = providers.get(provider_type, provider_id)
        items = [_upload_item(plans[index]) for index in indexes]
        try:
            timeout = deadline.timeout(f"upload {len(indexes)} file(s)")
            group = provider.upload_many(items, timeout=timeout)
        except (StagingError, DeadlineError) as exc:
            done = [*stored, *exc.uploaded]
            if not done and len(plans) == 1:
                raise
            raise _partial_upload(exc, done, len(plans)) from exc
        for index, uri in zip(indexes, group, strict=True):
            uris[index] = uri
            stored.append(uri)
            logger.info("Uploaded %s to %s", plans[index].relative, uri)
    return uris


def _upload_item(plan: PlannedUpload) -> UploadItem:
    return UploadItem(plan.source, plan.location.bucket, plan.key)


def _partial_upload(
    exc: StagingError | DeadlineError, done: Sequence[str], planned: int
) -> StagingError | DeadlineError:
    """``exc`` again, its message saying which of the ``planned`` files were stored before it.

    A file that failed left no object: S3 stores a PUT whole or not at all, and s3transfer
    aborts the multipart upload of a file that failed part-way.
    """
    if done:
        logger.error(
            "Uploaded before the failure (%d of %d files): %s", len(done), planned, ", ".join(done)
        )
        shown = ", ".join(_printable(uri) for uri in done[:_LISTED])
        more = f" and {len(done) - _LISTED} more (see the log)" if len(done) > _LISTED else ""
        note = f"uploaded before the failure: {shown}{more}"
    else:
        note = f"nothing was uploaded ({planned} files planned)"
    message = f"{exc}; {note}"
    if isinstance(exc, DeadlineError):
        return DeadlineError(message, uploaded=done)
    return StagingError(message, bucket=exc.bucket, key=exc.key, uploaded=done)


def _printable(text: str) -> str:
    """``text`` with control characters escaped, so that an error stays one line."""
    from supervisor.escaping import escape

    return escape(text)


def outside_inputs(record: Record, inputs: Sequence[StorageLocation]) -> str | None:
    """Why the object of ``record`` is outside ``inputs``, or None when an input holds it
    (or the record holds no object, or there are no inputs)."""
    if not record.is_object or not inputs or matching_input(record, inputs) is not None:
        return None
    provider = record.provider_type
    if record.provider_id is not None:
        provider += f".{record.provider_id}"
    where = f"the object {_printable(record.bucket)}/{_printable(record.key)} ({provider})"
    listed = ", ".join(f"{item.storage_provider} {item.path}" for item in inputs)
    if any(part in (".", "..") for part in record.key.split("/")):
        return (
            f"{where} has '.' or '..' parts in its key: it is under none of the inputs ({listed})"
        )
    return f"{where} is outside the function's inputs ({listed})"
