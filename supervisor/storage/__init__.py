"""The storage types: one module each, registered here.

A type is a ``StorageType`` (``base``): its name, the pydantic model of one provider's
settings and the factory of its transfer class.  The definition's ``storage_providers``
section, the types ``storage_provider`` accepts (``supervisor.config``), the providers of
a function (``supervisor.staging.build_providers``) and the types an event may name
(``supervisor.events``) are all derived from this registry.

| type | module | transfer class |
|---|---|---|
| ``s3``, ``minio`` | ``s3`` | ``S3Storage`` (s3transfer, imported on first use) |
| ``local`` | ``local`` | ``LocalStorage`` (a folder per bucket) |
| ``webdav`` | ``webdav`` | ``WebdavStorage`` (the standard library's HTTP, ``webdav_http``) |
| ``onedata``, ``rucio`` | ``unsupported`` | ``UnsupportedStorage`` (every transfer fails) |

A new type is a module with its settings model, its transfer class and its
``StorageType``, added to ``_BUILT_IN`` below; or, from outside this package, passed to
``register`` before ``supervisor.config`` is imported, which derives the definition's
models once (``freeze``).
"""

from __future__ import annotations

from typing import Any

from supervisor.storage import local, s3, unsupported, webdav
from supervisor.storage.base import Clients, StorageProvider, StorageType, UploadItem

__all__ = [
    "Clients",
    "StorageProvider",
    "StorageType",
    "UploadItem",
    "event_types",
    "freeze",
    "get",
    "register",
    "registered",
]

_BUILT_IN: tuple[StorageType[Any], ...] = (
    s3.S3,
    s3.MINIO,
    local.LOCAL,
    webdav.WEBDAV,
    unsupported.ONEDATA,
    unsupported.RUCIO,
)
_types: dict[str, StorageType[Any]] = {kind.name: kind for kind in _BUILT_IN}
_frozen = False


def register(kind: StorageType[Any]) -> None:
    """Add a storage type; ``ValueError`` if its name is taken or not a plain lowercase word,
    ``RuntimeError`` once the definition's models are derived (``freeze``)."""
    if _frozen:
        raise RuntimeError(
            f"cannot register storage type {kind.name!r}: supervisor.config has already "
            "derived the definition's models from the registry; register before importing it"
        )
    if not (kind.name.isascii() and kind.name.isalnum() and kind.name.islower()):
        raise ValueError(f"a storage type name is a lowercase word, got {kind.name!r}")
    if kind.name in _types:
        raise ValueError(f"storage type {kind.name!r} is already registered")
    _types[kind.name] = kind


def registered() -> tuple[StorageType[Any], ...]:
    """Every type, in the order they were registered (the built-in ones first)."""
    return tuple(_types.values())


def freeze() -> tuple[StorageType[Any], ...]:
    """Every type, for the definition's models; no type can be registered afterwards."""
    global _frozen
    _frozen = True
    return registered()


def get(name: str) -> StorageType[Any]:
    """The type named ``name``; ``KeyError`` when there is none."""
    return _types[name]


def event_types() -> frozenset[str]:
    """The types an OSCAR delegated event may name bare (``storage_provider: TYPE``)."""
    return frozenset(kind.name for kind in _types.values() if kind.in_events)
