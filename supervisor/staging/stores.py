"""The stores of one function: the ``StorageProvider`` of each ``storage_provider: TYPE.ID``.

``build_providers`` makes a ``Stores`` from the definition's ``storage_providers`` with the
storage types of ``supervisor.storage``; each provider is built on first use, or up front
by ``Stores.prepare`` so that no client is built while the deadline runs.  Their S3 clients
share one boto3 session, with the retries and timeouts of ``retries``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import storage
from supervisor.config import FunctionConfig, StorageLocation
from supervisor.errors import ConfigError
from supervisor.sessions import Sessions
from supervisor.shortcuts import send_small_bodies_at_once
from supervisor.staging import retries
from supervisor.storage.base import Clients, StorageProvider
from supervisor.storage.local import Announce, LocalStorage

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_s3 import S3Client

__all__ = ["ProviderKey", "Stores", "build_providers", "unsupported"]

logger = logging.getLogger(__name__)

ProviderKey = tuple[str, str]
ProviderFactory = Callable[[], StorageProvider]
SessionFactory = Callable[[], "Session"]


class Stores:
    """The storage providers of one function, each built on first use and then kept.

    ``factories`` maps ``(type, id)`` to a builder; ``fallback``, when given, builds the one
    provider that serves every other ``(type, id)`` (a local run's storage folder).
    """

    def __init__(
        self,
        factories: Mapping[ProviderKey, ProviderFactory],
        *,
        fallback: ProviderFactory | None = None,
    ) -> None:
        self._factories = dict(factories)
        self._fallback = fallback
        self._built: dict[ProviderKey | None, StorageProvider] = {}
        self._lock = threading.Lock()

    def get(self, provider_type: str, provider_id: str = "default") -> StorageProvider:
        """The provider for ``storage_provider: TYPE.ID``; ``ConfigError`` when none is defined."""
        key: ProviderKey | None = (provider_type, provider_id)
        factory = self._factories.get((provider_type, provider_id))
        if factory is None:
            factory, key = self._fallback, None
        if factory is None:
            raise ConfigError(_undefined(provider_type, provider_id))
        with self._lock:
            provider = self._built.get(key)
            if provider is None:
                provider = self._built[key] = factory()
            return provider

    def prepare(self, locations: Iterable[StorageLocation] | None = None) -> None:
        """Build the providers (and clients) of ``locations`` now; every defined one if None."""
        if locations is None:
            keys: Iterable[ProviderKey] = self._factories or [("s3", "default")]
        else:
            keys = dict.fromkeys((item.provider_type, item.provider_id) for item in locations)
        for provider_type, provider_id in keys:
            self.get(provider_type, provider_id)


def build_providers(
    config: FunctionConfig,
    *,
    storage_root: Path | None = None,
    announce: Announce | None = None,
    session_factory: SessionFactory | None = None,
    max_concurrency: int = 10,
) -> Stores:
    """The providers a function may use, each built by its storage type (``supervisor.storage``);
    with ``storage_root`` every one is that local folder (which calls ``announce`` for each
    object it writes, when given).

    Their S3 clients come from ``session_factory`` (a boto3 session), by default one session
    shared by all of them, which loads the S3 service model once.
    """
    if storage_root is not None:
        return Stores({}, fallback=partial(LocalStorage, storage_root, announce=announce))
    sessions = session_factory or Sessions().boto3
    clients = Clients(partial(_client, sessions, max_concurrency), max_concurrency)
    factories: dict[ProviderKey, ProviderFactory] = {}
    for kind in storage.registered():
        defined = dict(config.storage_providers.of(kind.name))
        if kind.implicit_default:
            defined = {"default": kind.settings(), **defined}
        for ident, settings in defined.items():
            factories[kind.name, ident] = partial(kind.build, ident, settings, clients)
    _warn_unsupported(config)
    return Stores(factories)


def unsupported(provider_type: str) -> str | None:
    """The name of a type that no transfer here reaches (Onedata), else None."""
    return storage.get(provider_type).unsupported


def _warn_unsupported(config: FunctionConfig) -> None:
    """Say at start which inputs and outputs will fail: their provider cannot be reached."""
    for what, locations in (("input", config.input), ("output", config.output)):
        for location in locations:
            label = unsupported(location.provider_type)
            if label is not None:
                logger.warning(
                    "The %s %s on storage provider %s will fail: %s is not supported here",
                    what,
                    location.path,
                    location.storage_provider,
                    label,
                )


def _undefined(provider_type: str, provider_id: str) -> str:
    value = provider_type if provider_id == "default" else f"{provider_type}.{provider_id}"
    return (
        f"storage_provider {value!r} is not defined: "
        f"add it under storage_providers.{provider_type}.{provider_id}"
    )


def _client(
    sessions: SessionFactory,
    max_concurrency: int,
    *,
    path_style: bool = False,
    region_name: str | None = None,
    endpoint_url: str | None = None,
    verify: bool | None = None,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
) -> S3Client:
    """An S3 client; unset values come from boto3's own chain (env, profile, role).

    Retries and timeouts are those of ``retries``, and each retry is logged.  A small body
    is sent with its request, without waiting for a ``100 Continue`` first.
    """
    from botocore.config import Config

    config = Config(
        **retries.settings(),
        max_pool_connections=max_concurrency,
        s3={"addressing_style": "path"} if path_style else None,
    )
    client = sessions().client(
        "s3",
        region_name=region_name,
        endpoint_url=endpoint_url,
        verify=verify,
        aws_access_key_id=aws_access_key_id,
        aws_secret_access_key=aws_secret_access_key,
        aws_session_token=aws_session_token,
        config=config,
    )
    retries.log_retries(client)
    send_small_bodies_at_once(client)
    return client
