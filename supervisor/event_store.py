"""Where an event too large for a Batch job request is kept, for the job to read it back.

``EventStore`` is built once per function and handed to the delegation step
(``delegation.build_job`` calls ``put`` only for an event over the request limit).  The
place is ``batch.event_store``: ``bucket/folder`` on the default S3 provider, or
``TYPE[.ID]://bucket/folder`` on another provider of the function (``minio.lab://events``);
else the folder ``.supervisor-events`` of the function's first S3 bucket (its outputs',
then its inputs').  The object is named after a fresh UUID and its URI
(``staging.ObjectUri``: ``s3://bucket/key`` on the default S3 provider) goes to the job as
``EVENT_URI``, which the job reads back through the same storage types.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import staging
from supervisor.errors import ConfigError
from supervisor.staging.objects import split_scheme

if TYPE_CHECKING:
    from supervisor.config import FunctionConfig

__all__ = ["EventStore"]

_DEFAULT_FOLDER = ".supervisor-events"


@dataclass(frozen=True)
class EventStore:
    """The big events of one function, stored through its storage providers.

    ``scratch`` is a folder for the temporary copy an upload may need.
    """

    config: FunctionConfig
    providers: staging.Stores
    scratch: Path

    def put(self, event_json: str) -> str:
        """Store ``event_json``; its URI (``s3://bucket/key``), which ``staging.get_bytes``
        reads back.  ``ConfigError`` when there is no place for it."""
        folder = self.location()
        key = "/".join(part for part in (folder.key, f"{uuid.uuid4()}.json") if part)
        uri = staging.ObjectUri(folder.provider_type, folder.provider_id, folder.bucket, key)
        return staging.put_bytes(self.providers, uri, event_json.encode(), self.scratch)

    def location(self) -> staging.ObjectUri:
        """The provider, the bucket and the folder (as ``key``) the events go to."""
        batch = self.config.batch
        if batch.event_store:
            return _configured(batch.event_store)
        for location in (*self.config.output, *self.config.input):
            if location.storage_provider in ("s3", "s3.default"):
                return staging.ObjectUri("s3", "default", location.bucket, _DEFAULT_FOLDER)
        raise ConfigError(
            "the event is too large for a Batch job request and there is no S3 bucket to keep "
            "it in: set batch.event_store to bucket/folder"
        )


def _configured(value: str) -> staging.ObjectUri:
    """``batch.event_store`` as a provider, a bucket and a folder."""
    provider_type, provider_id, path = "s3", "default", value.strip("/")
    if "://" in value:
        try:
            provider_type, provider_id, path = split_scheme(value.rstrip("/"))
        except ValueError as exc:
            raise ConfigError(f"batch.event_store {value!r}: {exc}") from None
    bucket, _, folder = path.partition("/")
    if not bucket:
        raise ConfigError(
            f"batch.event_store {value!r} names no bucket: expected bucket/folder "
            "or TYPE.ID://bucket/folder"
        )
    return staging.ObjectUri(provider_type, provider_id, bucket, folder)
