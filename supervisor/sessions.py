"""AWS sessions: one botocore session per supervisor, shared by all of its clients.

A client's service model and the endpoint data (partitions, rules) are read through its
session's loader, which keeps them: a second session reads and holds them all again, some
15 ms and 12 MiB per client.  ``Sessions`` creates the botocore session on first use, so
that a ``batch``-mode function imports botocore alone (no boto3, no s3transfer), and the
boto3 session over it that the S3 providers take.

Before it loads a model, botocore's loader lists every service it has data for (some 450
folders, two listings per client, 14 ms of a cold start) only to check that the name asked
for is one of them; the session's loader here checks that one folder instead, and lists
them all only when the list itself is wanted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from boto3.session import Session as Boto3Session
    from botocore.loaders import Loader
    from botocore.session import Session as BotocoreSession

__all__ = ["Sessions"]

_Listing = Callable[[str], list[str]]


class Sessions:
    """The botocore session of one supervisor, and the boto3 session over it, both lazy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._botocore: BotocoreSession | None = None
        self._boto3: Boto3Session | None = None

    def botocore(self) -> BotocoreSession:
        with self._lock:
            if self._botocore is None:
                import botocore.session

                session = botocore.session.get_session()
                session.register_component("data_loader", _loader(session))
                self._botocore = session
            return self._botocore

    def boto3(self) -> Boto3Session:
        session = self.botocore()
        with self._lock:
            if self._boto3 is None:
                import boto3.session

                self._boto3 = boto3.session.Session(botocore_session=session)
            return self._boto3


def _loader(session: BotocoreSession) -> Loader:
    """The loader botocore would make for ``session`` (same search paths), whose list of
    services is ``_Services``."""
    from botocore.loaders import Loader, create_loader

    class _Loader(Loader):
        def list_available_services(self, type_name: str) -> list[str]:
            # A Sequence, not a list: botocore only tests membership and joins the names.
            return _Services(self, type_name, super().list_available_services)  # type: ignore[return-value]

    default = create_loader(session.get_config_variable("data_path"))
    return _Loader(extra_search_paths=default.search_paths, include_default_search_paths=False)


class _Services(Sequence[str]):
    """The services a loader has ``type_name`` data for: ``name in`` looks in that service's
    folders only, as botocore's listing would; the whole list is made when it is read."""

    def __init__(self, loader: Loader, type_name: str, listing: _Listing, /) -> None:
        self._loader = loader
        self._type = type_name
        self._listing = listing
        self._names: list[str] | None = None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or name in (".", "..") or os.sep in name:
            return name in self._all()
        for root in self._loader.search_paths:
            folder = os.path.join(root, name)
            if not os.path.isdir(folder):
                continue
            for version in os.listdir(folder):
                if self._loader.file_loader.exists(os.path.join(folder, version, self._type)):
                    return True
        return False

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def _all(self) -> list[str]:
        if self._names is None:
            self._names = self._listing(self._type)
        return self._names
