"""Small objects kept for later (an event too large for a Batch job request), by URI.

An object's URI is ``TYPE://bucket/key`` for the default provider of a storage type and
``TYPE.ID://bucket/key`` for another one (``s3://events/x.json``, ``minio.lab://events/x.json``),
so that the URI alone says which provider of the function's ``Stores`` holds it: whoever
reads it back (a Batch job, from ``EVENT_URI``) finds the same provider through the same
registry of storage types.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from supervisor import storage
from supervisor.errors import StagingError
from supervisor.staging.stores import Stores
from supervisor.storage.base import SupportsDelete, UploadItem

__all__ = ["ObjectUri", "delete_bytes", "get_bytes", "put_bytes", "split_scheme"]


@dataclass(frozen=True)
class ObjectUri:
    """Object ``key`` of ``bucket`` on the provider ``provider_type.provider_id``."""

    provider_type: str
    provider_id: str
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> ObjectUri:
        """``TYPE[.ID]://bucket/key`` as an ``ObjectUri``; ``StagingError`` when it is not one."""
        try:
            provider_type, provider_id, rest = split_scheme(uri)
        except ValueError as exc:
            raise StagingError(f"{uri!r} is not an object's address: {exc}") from None
        bucket, _, key = rest.partition("/")
        if not bucket or not key:
            raise StagingError(
                f"{uri!r} is not an object's address: expected TYPE://bucket/key (s3://bucket/key)"
            )
        return cls(provider_type, provider_id, bucket, key)

    @property
    def scheme(self) -> str:
        """``TYPE`` for the default provider, else ``TYPE.ID``."""
        if self.provider_id == "default":
            return self.provider_type
        return f"{self.provider_type}.{self.provider_id}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"


def split_scheme(text: str) -> tuple[str, str, str]:
    """``TYPE[.ID]://rest`` as the type, the provider ID (``default`` when absent) and the
    rest; ``ValueError`` saying why when the text has no scheme or names no storage type."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        raise ValueError("expected TYPE://bucket/... (s3://bucket/...)")
    provider_type, dot, provider_id = scheme.partition(".")
    names = [kind.name for kind in storage.registered()]
    if provider_type not in names:
        raise ValueError(f"{provider_type!r} is not a storage type (one of {', '.join(names)})")
    if dot and not provider_id:
        raise ValueError(f"the provider ID after {provider_type}. is empty")
    return provider_type, provider_id or "default", rest


def put_bytes(stores: Stores, uri: ObjectUri, data: bytes, scratch: Path) -> str:
    """Store ``data`` as the object at ``uri`` (through a temporary file in ``scratch``);
    return the URI, which ``get_bytes`` reads back."""
    scratch.mkdir(parents=True, exist_ok=True)
    provider = stores.get(uri.provider_type, uri.provider_id)
    with tempfile.NamedTemporaryFile(dir=scratch, prefix="object-") as handle:
        handle.write(data)
        handle.flush()
        provider.upload_many([UploadItem(Path(handle.name), uri.bucket, uri.key)])
    return str(uri)


def get_bytes(stores: Stores, uri: str, scratch: Path) -> bytes:
    """Read back an object stored by ``put_bytes``, given by its URI."""
    address = ObjectUri.parse(uri)
    provider = stores.get(address.provider_type, address.provider_id)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="object-") as folder:
        dest = Path(folder) / "object"
        provider.download(address.bucket, address.key, dest)
        return dest.read_bytes()


def delete_bytes(stores: Stores, uri: str) -> None:
    """Delete an object stored by ``put_bytes``; ``StagingError`` when it cannot."""
    address = ObjectUri.parse(uri)
    provider = stores.get(address.provider_type, address.provider_id)
    if not isinstance(provider, SupportsDelete):
        raise StagingError(
            f"cannot delete {uri}: storage provider {address.scheme} cannot delete objects",
            bucket=address.bucket,
            key=address.key,
        )
    provider.delete(address.bucket, address.key)
