"""Shortcuts past botocore's and PyYAML's defaults, each pinned by a test.

Each saves time on every invocation or cold start, and each assumes something of another
library that its public API does not promise; ``tests/unit/test_shortcuts.py`` pins every
assumption, so that an upgrade that breaks one fails a test instead of slowing down or
breaking a function.

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
- ``rehearse``: botocore sets much of a client up on its first call (the endpoint rules
  resolved, the signer, the request's handlers; the first connection imports the ``idna``
  codec for the host name).  Where an invocation gets a sliver of a CPU (a 128 MB Lambda
  function has about 7% of one) that set-up is most of the first call; rehearsing the call
  in Lambda's init phase, which runs at full speed, pays it there.  The rehearsal answers
  the request itself in botocore's ``before-send`` event, so nothing is sent.  Assumes: a
  ``before-send`` handler that returns an ``AWSResponse`` stands for the server's answer,
  and a 200 with ``{}`` parses for a JSON protocol's operation.
- ``plain_json_mapping``: a definition in JSON (SCAR's ``FDL``) is read by the json module,
  which spares PyYAML's import and parse.  Assumes: PyYAML reads such a text as the json
  module does, which holds for JSON without escapes, exponents, ``NaN``, tabs, characters
  outside ASCII, keys of over 1,024 characters or deep nesting (those go to PyYAML).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, overload

if TYPE_CHECKING:
    from botocore.loaders import Loader
    from botocore.session import Session as BotocoreSession
    from mypy_boto3_s3 import S3Client

__all__ = [
    "SMALL_BODY",
    "fast_loader",
    "plain_json_mapping",
    "rehearse",
    "send_small_bodies_at_once",
]

# Bodies up to this size go with their request, without an ``Expect: 100-continue``.
SMALL_BODY: Final = 1024 * 1024

_SMALL_BODIES_ID: Final = "supervisor-small-bodies"
_REHEARSAL_ID: Final = "supervisor-rehearsal"

# Beyond these a JSON text goes to PyYAML (see ``plain_json_mapping``): it refuses keys of
# over 1,024 characters, and nesting a few hundred deep.
_JSON_MAX_KEY: Final = 1000
_JSON_MAX_BRACKETS: Final = 100

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


def rehearse(client: Any, operation: str, params: Mapping[str, Any]) -> None:
    """Run ``operation`` (its Python name, e.g. ``submit_job``) with ``params`` through
    ``client`` as a real call would, except that nothing is sent: the answer is an empty
    200 made here.  The client is then as it is after its first call."""
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.register_first(event, _answer_here, unique_id=_REHEARSAL_ID)
    try:
        getattr(client, operation)(**params)
    finally:
        client.meta.events.unregister(event, unique_id=_REHEARSAL_ID)


class _EmptyBody:
    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield b"{}"


def _answer_here(request: Any, **kwargs: Any) -> Any:
    from urllib.parse import urlsplit

    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    # What the first connection would do first: encode the host name (the codec's import).
    (urlsplit(request.url).hostname or "").encode("idna")
    return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyBody())


def plain_json_mapping(text: str) -> dict[str, Any] | None:
    """The mapping ``text`` holds, read by the json module where PyYAML would read it
    alike; else None (the text is then for PyYAML).

    JSON is YAML, but PyYAML reads a few JSON texts otherwise (an escape, a number with an
    exponent, NaN, a tab, a character it does not print, a key of over 1,024 characters,
    deep nesting): those, and anything that is not a JSON object, give None.
    """
    if not text.isascii() or any(char in text for char in "\\\t\x7f"):
        return None
    if text.count("{") + text.count("[") > _JSON_MAX_BRACKETS:
        return None
    try:
        data = json.loads(
            text,
            parse_float=_plain_float,
            parse_constant=_no_constant,
            object_pairs_hook=_short_keys,
        )
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _plain_float(literal: str) -> float:
    if "e" in literal or "E" in literal:
        raise ValueError(f"YAML 1.1 reads {literal} as text")
    return float(literal)


def _no_constant(literal: str) -> Any:
    raise ValueError(f"YAML reads {literal} as text")


def _short_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if any(len(key) > _JSON_MAX_KEY for key, _ in pairs):
        raise ValueError("PyYAML refuses a key this long")
    return dict(pairs)
