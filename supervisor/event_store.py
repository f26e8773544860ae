"""Where an event too large for a Batch job request is kept, for the job to read it back.

``EventStore`` is built once per function and handed to the delegation step
(``delegation.build_job`` calls ``put`` only for an event over the request limit).  The
place is ``batch.event_store`` (``bucket/folder``), else the folder ``.supervisor-events``
of the function's first S3 bucket (its outputs', then its inputs'); the object is named
after a fresh UUID and its address goes to the job as ``EVENT_URI``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import staging
from supervisor.errors import ConfigError

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
    providers: staging.ProviderSet
    scratch: Path

    def put(self, event_json: str) -> str:
        """Store ``event_json``; its address (``s3://bucket/key``), which
        ``staging.get_bytes`` reads back.  ``ConfigError`` when there is no place for it."""
        bucket, folder = self.location()
        key = "/".join(part for part in (folder, f"{uuid.uuid4()}.json") if part)
        return staging.put_bytes(self.providers, bucket, key, event_json.encode(), self.scratch)

    def location(self) -> tuple[str, str]:
        """The bucket and the folder the events go to."""
        batch = self.config.batch
        if batch.event_store:
            bucket, _, folder = batch.event_store.strip("/").partition("/")
            return bucket, folder
        for location in (*self.config.output, *self.config.input):
            if location.storage_provider in ("s3", "s3.default"):
                return location.bucket, _DEFAULT_FOLDER
        raise ConfigError(
            "the event is too large for a Batch job request and there is no S3 bucket to keep "
            "it in: set batch.event_store to bucket/folder"
        )
