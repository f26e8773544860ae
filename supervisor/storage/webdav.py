"""The ``webdav`` storage type: objects as files under a WebDAV server's tree.

``WebdavStorage`` serves ``storage_provider: webdav.ID`` (dCache, Nextcloud, any RFC 4918
server; settings in ``WebdavProvider``) with basic authentication: object ``key`` of
``bucket`` is the file ``BASE/bucket/key``, read with GET, written with PUT after MKCOL of
each folder above it that this provider has not made or seen yet, and removed with DELETE.
The requests are those of ``webdav_http``: each bounded in time, a whole transfer within
the ``timeout`` it is given (``DeadlineError`` past it), redirects followed safely.

Bucket and key become path segments, each percent-encoded, and a key with an empty, ``.``
or ``..`` part raises ``UnsafeKeyError``: a name cannot reach outside its folder on the
server.  A download is written to a temporary file beside its destination and renamed
once complete.  Errors are ``StagingError`` naming the object and the provider
(``webdav.ID``), never the login, the password or a URL with credentials.  A PUT cut short
(by the deadline or a broken connection) may leave a partial file on a server that writes
in place; the upload is reported as failed.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, field_validator

from supervisor.deadline import Clock, Deadline
from supervisor.errors import DeadlineError, StagingError, UnsafeKeyError
from supervisor.models import Model, OptionalSecret, OptionalText
from supervisor.storage.base import Clients, StorageType, UploadItem
from supervisor.storage.base import endpoint as _endpoint
from supervisor.storage.base import part_problem as _part_problem
from supervisor.storage.webdav_http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    Step,
    TimeLimit,
    Url,
    WebdavClient,
)

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "WEBDAV", "WebdavProvider", "WebdavStorage"]

logger = logging.getLogger(__name__)


class WebdavStorage:
    """The tree of one WebDAV server, as storage provider ``name`` (``webdav.ID``)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        login: str | None = None,
        password: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StagingError(f"storage provider {name}: {url!r} is not an http(s) URL")
        self.name = name
        base = Url(parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))
        authorization: str | None = None
        if login is not None or password is not None:
            pair = f"{login or ''}:{password or ''}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._http = WebdavClient(
            base,
            _endpoint(url),
            authorization=authorization,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            ssl_context=ssl_context,
        )
        self._base = base
        self._shown = _endpoint(url) + unquote(base.path)
        self._clock = clock
        # Folders made (or found) by this provider, so that each is asked for once.
        self._folders: set[str] = set()
        if parts.scheme == "http":
            logger.warning(
                "Storage provider %s uses plain HTTP (%s): its login and data are not encrypted",
                name,
                _endpoint(url),
            )

    def uri(self, bucket: str, key: str) -> str:
        return f"{self._shown}/{bucket}/{key}"

    def _limit(self, timeout: float | None, what: str) -> TimeLimit:
        return TimeLimit(Deadline.after(timeout, self._clock), timeout, what)

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
        """GET the file into ``dest`` (through a temporary file beside it)."""
        uri = self.uri(bucket, key)
        path = self._path(bucket, key)
        deadline = self._limit(timeout, f"download of {uri}")
        step = Step(f"cannot download {uri} (storage provider {self.name})", bucket, key, deadline)
        handle, temporary = tempfile.mkstemp(dir=dest.parent, prefix=f"{dest.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    received = self._http.get(path, out, step)
                except OSError as exc:  # writing the file: ENOSPC, EDQUOT, EIO
                    raise step.error(f"cannot write {dest}: {exc.strerror or exc}") from exc
            os.replace(temporary, dest)
        except BaseException:
            with suppress(OSError):
                os.unlink(temporary)
            raise
        logger.debug("Downloaded %d bytes from %s", received, uri)

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        """PUT each file in turn; the error of a failed one names those stored before it."""
        deadline = self._limit(timeout, f"upload of {len(items)} file(s) to {self.name}")
        uris: list[str] = []
        for item in items:
            uri = self.uri(item.bucket, item.key)
            try:
                if deadline.passed():
                    raise DeadlineError(f"no time left to upload {item.source} to {uri}")
                prefix = f"cannot upload {item.source} to {uri} (storage provider {self.name})"
                self._put(item, Step(prefix, item.bucket, item.key, deadline))
            except (StagingError, DeadlineError) as exc:
                exc.uploaded = tuple(uris)
                raise
            uris.append(uri)
        return uris

    def delete(self, bucket: str, key: str) -> None:
        """DELETE the file, if there is one."""
        uri = self.uri(bucket, key)
        path = self._path(bucket, key)
        deadline = self._limit(None, f"deletion of {uri}")
        step = Step(f"cannot delete {uri} (storage provider {self.name})", bucket, key, deadline)
        exchange = self._http.open("DELETE", self._http.url(path), None, step)
        exchange.close()
        status = exchange.response.status
        if status not in (200, 202, 204, 404):
            raise step.error(self._http.problem(status, "DELETE"))

    def _path(self, bucket: str, key: str) -> str:
        """The percent-encoded path of ``bucket/key``; ``UnsafeKeyError`` for a bad name."""
        problem = _part_problem("bucket name", bucket, allow_slash=False) or _part_problem(
            "key", key, allow_slash=True
        )
        if problem is not None:
            raise UnsafeKeyError(
                f"cannot address {bucket}/{key!r} on storage provider {self.name}: {problem}",
                bucket=bucket,
                key=key,
            )
        segments = [bucket, *key.split("/")]
        return self._base.path + "".join("/" + quote(part, safe="") for part in segments)

    def _put(self, item: UploadItem, step: Step) -> None:
        path = self._path(item.bucket, item.key)
        self._make_folders(path.rpartition("/")[0], step)
        try:
            source = item.source.open("rb")
        except OSError as exc:
            raise step.error(f"cannot read it: {exc.strerror or exc}") from exc
        with source:
            status = self._http.send_file(path, source, step)
        if status not in (200, 201, 204):
            raise step.error(self._http.problem(status, "PUT"))

    def _make_folders(self, folder: str, step: Step) -> None:
        """MKCOL each folder from the bucket down to ``folder`` not yet made or seen."""
        segments = folder[len(self._base.path) + 1 :].split("/")
        for depth in range(1, len(segments) + 1):
            path = self._base.path + "/" + "/".join(segments[:depth])
            if path in self._folders:
                continue
            exchange = self._http.open("MKCOL", self._http.url(path + "/"), None, step)
            exchange.close()
            status = exchange.response.status
            # 201: made; 405: something is there already (RFC 4918, 9.3.1).
            if status not in (201, 405):
                shown = self._shown + unquote(path[len(self._base.path) :]) + "/"
                raise step.error(
                    f"cannot make the folder {shown}: {self._http.problem(status, 'MKCOL')}"
                )
            self._folders.add(path)


class WebdavProvider(Model):
    """A WebDAV server (dCache, Nextcloud...) with basic authentication.

    ``hostname`` is ``host[:port][/path]``, reached over HTTPS as OSCAR and faas-supervisor
    reach it; a value that starts with ``http://`` or ``https://`` is used as it is.  The
    first part of an input or output ``path`` is the top folder under it.
    """

    hostname: str = Field(
        min_length=1,
        description="`host[:port][/path]`, reached over HTTPS; or a URL starting with "
        "`http://` or `https://`.",
    )
    login: OptionalText = Field(default=None, description="User name for basic authentication.")
    password: OptionalSecret = Field(default=None, description="Password for basic authentication.")

    @field_validator("hostname")
    @classmethod
    def _plain_hostname(cls, value: str) -> str:
        cleaned = value.strip().rstrip("/")
        scheme, separator, rest = cleaned.rpartition("://")
        if separator and scheme.lower() not in ("http", "https"):
            raise ValueError("expected host[:port][/path], or a URL starting with https://")
        if separator:
            cleaned = f"{scheme.lower()}://{rest}"
        if not rest or rest.startswith("/") or "@" in rest.split("/", 1)[0]:
            raise ValueError("expected host[:port][/path] (put the login in 'login')")
        if any(char.isspace() or char in "?#" for char in rest):
            raise ValueError("expected host[:port][/path] without spaces, '?' or '#'")
        return cleaned

    @property
    def url(self) -> str:
        """The base URL of the server's tree."""
        if self.hostname.startswith(("http://", "https://")):
            return self.hostname
        return f"https://{self.hostname}"


def _webdav_storage(ident: str, settings: WebdavProvider, clients: Clients) -> WebdavStorage:
    password = settings.password
    return WebdavStorage(
        f"webdav.{ident}",
        settings.url,
        login=settings.login,
        password=password.get_secret_value() if password is not None else None,
    )


WEBDAV = StorageType(
    "webdav",
    WebdavProvider,
    "WebDAV servers (dCache, Nextcloud...), by ID.",
    _webdav_storage,
    in_events=True,
)
