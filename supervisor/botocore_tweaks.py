"""Shortcuts past botocore's defaults that lean on its internals, kept together.

Each saves time on every invocation, and each assumes something of botocore that its
public API does not promise; ``tests/unit/test_botocore_tweaks.py`` pins every assumption,
so that a botocore upgrade that breaks one fails a test instead of slowing down or breaking
a function.

- ``fast_loader``: before it loads a model, botocore's loader lists every service it has
  data for (some 450 folders, two listings per client, 14 ms of a cold start) only to check
  that the name asked for is one of them.  This loader checks that one folder instead, and
  lists them all only when the list itself is wanted.  Assumes: ``Loader`` has
  ``list_available_services(type_name)``, whose result botocore only tests with ``in`` and
  joins; ``search_paths`` and ``file_loader.exists``; a session's ``data_loader``
  component is the loader its clients read their models through.
- ``send_small_bodies_at_once``: botocore puts ``Expect: 100-continue`` on every upload
  from a file, which makes the client wait for the server's go-ahead before it sends the
  body: a round trip per request (10 ms on a local server), worth it only when a rejected
  body would be long to send.  Bodies up to ``SMALL_BODY`` go with their request; the parts
  of a multipart upload keep the header.  Assumes: the header is in the request's
  ``headers`` by the ``before-call.s3`` event, and ``botocore.utils.determine_content_length``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.session import Session as BotocoreSession
    from mypy_boto3_s3 import S3Client

__all__ = ["SMALL_BODY", "fast_loader", "send_small_bodies_at_once"]

# Bodies up to this size go with their request, without an ``Expect: 100-continue``.
SMALL_BODY: Final = 1024 * 1024

_SMALL_BODIES_ID: Final = "supervisor-small-bodies"

_Listing = Callable[[str], list[str]]


def fast_loader(session: BotocoreSession) -> Loader:
    """The loader botocore would make for ``session`` (same search paths), whose list of
    services answers ``name in`` from that service's folders alone."""
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


def send_small_bodies_at_once(client: S3Client) -> None:
    """Make ``client`` send a body of up to ``SMALL_BODY`` with its request."""
    client.meta.events.register_last(
        "before-call.s3", _drop_expect_for_small_bodies, unique_id=_SMALL_BODIES_ID
    )


def _drop_expect_for_small_bodies(params: dict[str, Any], **kwargs: Any) -> None:
    from botocore.utils import determine_content_length

    headers = params.get("headers", {})
    if headers.get("Expect") != "100-continue":
        return
    size = determine_content_length(params.get("body"))
    if size is not None and size <= SMALL_BODY:
        del headers["Expect"]
