"""What every storage type provides, and what the registry keeps of each.

A storage type (``s3``, ``webdav``...) is a ``StorageType``: its name as definitions write
it (``storage_providers.NAME.ID``, ``storage_provider: NAME.ID``), the pydantic model of one
provider's settings, and ``build``, which makes the ``StorageProvider`` of one ID from its
settings and the ``Clients`` that staging shares between providers.  ``StorageProvider`` is
what the staging functions need from a store: a URI for logs, a download, uploads; one
that can also delete an object is ``SupportsDelete``.

The helpers at the end are shared by the transfer classes: names checked as path parts,
and one-line messages that never show a URL's user information or query.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, NamedTuple, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pydantic import BaseModel

__all__ = [
    "MIB",
    "Clients",
    "StorageProvider",
    "StorageType",
    "SupportsDelete",
    "UploadItem",
    "endpoint",
    "one_line",
    "part_problem",
]

MIB = 1024 * 1024

SettingsT = TypeVar("SettingsT", bound="BaseModel")


class UploadItem(NamedTuple):
    """A local file to store as ``key`` in ``bucket``."""

    source: Path
    bucket: str
    key: str


class StorageProvider(Protocol):
    """A store of objects addressed by bucket and key."""

    def uri(self, bucket: str, key: str) -> str:
        """Where the object is, for logs and responses (``s3://bucket/key`` or a file path)."""
        ...

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
        """Write the object to ``dest``; raise ``DeadlineError`` after ``timeout`` seconds.

        ``size`` and ``etag``, when the event gave them, may spare a request for them.
        """
        ...

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        """Store every item (in parallel where the store allows); return their URIs in order."""
        ...


@runtime_checkable
class SupportsDelete(Protocol):
    """A provider that can also delete an object (the events kept for a Batch job)."""

    def delete(self, bucket: str, key: str) -> None:
        """Delete the object, if there is one; ``StagingError`` when it cannot."""
        ...


@dataclass(frozen=True)
class Clients:
    """What the providers of one function share: ``s3`` makes an S3 client (keyword
    arguments as boto3's ``client``, plus ``path_style``) with the supervisor's retries and
    timeouts, from one session; ``max_concurrency`` bounds the requests of one transfer."""

    s3: Callable[..., S3Client]
    max_concurrency: int = 10


@dataclass(frozen=True)
class StorageType(Generic[SettingsT]):
    """One storage type, as the registry keeps it.

    ``description`` is the help of ``storage_providers.NAME`` (the reference and the JSON
    Schema show it).  ``unsupported``, when set, is the type's name for people: definitions
    may name it, and an input or output there fails saying it is not supported here.
    ``in_events``: OSCAR's delegated events may name the type bare, as ``TYPE`` (else a bare
    word there is a provider ID).  ``implicit_default``: ``NAME.default`` exists without
    settings (S3: the function's own credentials).  ``max_key_bytes``: the longest key the
    store accepts, in bytes of UTF-8 (None: no limit checked before an upload).
    """

    name: str
    settings: type[SettingsT]
    description: str
    build: Callable[[str, SettingsT, Clients], StorageProvider]
    unsupported: str | None = None
    in_events: bool = False
    implicit_default: bool = False
    max_key_bytes: int | None = None


def part_problem(what: str, value: str, *, allow_slash: bool) -> str | None:
    """Why ``value`` (a bucket name or a key) cannot be a relative path, or None."""
    parts = value.split("/")
    if not value or "\x00" in value:
        return f"the {what} is empty or contains NUL"
    if not allow_slash and len(parts) > 1:
        return f"the {what} contains '/'"
    if any(part in ("", ".", "..") for part in parts):
        return f"the {what} has an empty, '.' or '..' part (or starts or ends with '/')"
    return None


def endpoint(url: str) -> str:
    """``scheme://host:port`` of an endpoint URL, without user information or path."""
    parts = urlsplit(url)
    host = parts.hostname or "the endpoint"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{host}{port}"


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
