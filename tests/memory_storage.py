"""A storage type defined outside the supervisor, in this one module: objects in memory.

``storage_providers.memory.ID`` may hold ``objects`` (``bucket/key``: text) to start with;
``STORES`` keeps each built provider by ID, so that a test can read what was uploaded.
Importing the module registers the type, before ``supervisor.config`` derives the
definition's models.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import Field

from supervisor import storage
from supervisor.errors import StagingError
from supervisor.models import Model
from supervisor.storage.base import Clients, UploadItem


class MemoryProvider(Model):
    """Objects held in the supervisor's memory."""

    objects: dict[str, str] = Field(
        default_factory=dict, description="Objects to start with, as `bucket/key`: text."
    )


class MemoryStorage:
    def __init__(self, name: str, objects: dict[str, str]) -> None:
        self.name = name
        self.objects = {address: text.encode() for address, text in objects.items()}

    def uri(self, bucket: str, key: str) -> str:
        return f"memory://{self.name}/{bucket}/{key}"

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
        data = self.objects.get(f"{bucket}/{key}")
        if data is None:
            raise StagingError(f"no object {self.uri(bucket, key)}", bucket=bucket, key=key)
        dest.write_bytes(data)

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        for item in items:
            self.objects[f"{item.bucket}/{item.key}"] = item.source.read_bytes()
        return [self.uri(item.bucket, item.key) for item in items]


STORES: dict[str, MemoryStorage] = {}


def _memory(ident: str, settings: MemoryProvider, clients: Clients) -> MemoryStorage:
    store = STORES[ident] = MemoryStorage(f"memory.{ident}", settings.objects)
    return store


MEMORY = storage.StorageType(
    "memory", MemoryProvider, "Objects in memory, by ID.", _memory, in_events=True
)
storage.register(MEMORY)
