"""The ``webdav`` storage type: objects as files under a WebDAV server's tree.

``WebdavStorage`` serves ``storage_provider: webdav.ID`` (dCache, Nextcloud, any RFC 4918
server; settings in ``WebdavProvider``) with basic authentication: object ``key`` of
``bucket`` is the file ``BASE/bucket/key``, read with GET and written with PUT, after MKCOL
of each folder above it that this provider has not made or seen yet.  It speaks HTTP
through the standard library, one connection per request, so that every step is bounded:
a connection within ``CONNECT_TIMEOUT`` seconds, each read or write within
``READ_TIMEOUT``, and a whole transfer within the ``timeout`` it is given
(``DeadlineError`` past it).  Redirects (dCache sends a transfer to a pool) are followed a
few times, never from HTTPS to HTTP, and the credentials go only to the server they were
given for.

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
import socket
import ssl
import tempfile
import time
from collections.abc import Sequence
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

from pydantic import Field, field_validator

from supervisor.deadline import Clock, Deadline
from supervisor.errors import DeadlineError, StagingError, UnsafeKeyError
from supervisor.models import Model, OptionalSecret, OptionalText
from supervisor.storage.base import Clients, StorageType, UploadItem
from supervisor.storage.base import endpoint as _endpoint
from supervisor.storage.base import one_line as _one_line
from supervisor.storage.base import part_problem as _part_problem

if TYPE_CHECKING:
    from collections.abc import Callable
    from http.client import HTTPConnection, HTTPResponse

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "WEBDAV", "WebdavProvider", "WebdavStorage"]

logger = logging.getLogger(__name__)

# Seconds, as for the S3 clients (see ``retries``): a live server answers well within them.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
MAX_REDIRECTS = 5
CHUNK = 256 * 1024
# Statuses of a redirect, and those that keep the method and body (PUT may follow only these).
_REDIRECTS = (301, 302, 303, 307, 308)
_SAME_METHOD = (307, 308)
# Bytes of an error answer read to leave the connection clean; the text is never shown.
_ERROR_BODY = 64 * 1024

T = TypeVar("T")


class _Url(NamedTuple):
    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return self.scheme, self.host.lower(), self.port


class _Step(NamedTuple):
    """The transfer a request belongs to, for its error messages and its time."""

    prefix: str  # "cannot upload X to Y (storage provider webdav.ID)"
    bucket: str
    key: str
    deadline: _TimeLimit

    def error(self, problem: str) -> StagingError:
        return StagingError(f"{self.prefix}: {problem}", bucket=self.bucket, key=self.key)


class _Exchange(NamedTuple):
    connection: HTTPConnection
    sock: socket.socket
    response: HTTPResponse

    def close(self) -> None:
        self.connection.close()
        with suppress(OSError):
            self.response.close()


class _TimeLimit(NamedTuple):
    """A transfer's deadline, as socket timeouts, and what to say when it passes."""

    deadline: Deadline
    timeout: float | None
    what: str

    def socket_timeout(self, limit: float) -> float:
        left = self.deadline.remaining()
        if left is None:
            return limit
        if left <= 0:
            raise self.error()
        return min(limit, left)

    def passed(self) -> bool:
        return self.deadline.expired()

    def error(self) -> DeadlineError:
        return DeadlineError(f"the {self.what} did not finish within {self.timeout or 0:.3g} s")


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
        self._base = _Url(parts.scheme, parts.hostname, parts.port, parts.path.rstrip("/"))
        self._endpoint = _endpoint(url)
        self._shown = self._endpoint + unquote(self._base.path)
        self._authorization: str | None = None
        if login is not None or password is not None:
            pair = f"{login or ''}:{password or ''}".encode()
            self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl_context = ssl_context
        self._clock = clock
        # Folders made (or found) by this provider, so that each is asked for once.
        self._folders: set[str] = set()
        if parts.scheme == "http":
            logger.warning(
                "Storage provider %s uses plain HTTP (%s): its login and data are not encrypted",
                name,
                self._endpoint,
            )

    def uri(self, bucket: str, key: str) -> str:
        return f"{self._shown}/{bucket}/{key}"

    def _limit(self, timeout: float | None, what: str) -> _TimeLimit:
        return _TimeLimit(Deadline.after(timeout, self._clock), timeout, what)

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
        step = _Step(f"cannot download {uri} (storage provider {self.name})", bucket, key, deadline)
        handle, temporary = tempfile.mkstemp(dir=dest.parent, prefix=f"{dest.name}.")
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    received = self._get(path, out, step)
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
                self._put(item, _Step(prefix, item.bucket, item.key, deadline))
            except (StagingError, DeadlineError) as exc:
                exc.uploaded = tuple(uris)
                raise
            uris.append(uri)
        return uris

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

    def _put(self, item: UploadItem, step: _Step) -> None:
        path = self._path(item.bucket, item.key)
        self._make_folders(path.rpartition("/")[0], step)
        try:
            source = item.source.open("rb")
        except OSError as exc:
            raise step.error(f"cannot read it: {exc.strerror or exc}") from exc
        with source:
            status = self._send_file(path, source, step)
        if status not in (200, 201, 204):
            raise step.error(self._problem(status, "PUT"))

    def _make_folders(self, folder: str, step: _Step) -> None:
        """MKCOL each folder from the bucket down to ``folder`` not yet made or seen."""
        segments = folder[len(self._base.path) + 1 :].split("/")
        for depth in range(1, len(segments) + 1):
            path = self._base.path + "/" + "/".join(segments[:depth])
            if path in self._folders:
                continue
            exchange = self._open("MKCOL", self._url(path + "/"), None, step)
            exchange.close()
            status = exchange.response.status
            # 201: made; 405: something is there already (RFC 4918, 9.3.1).
            if status not in (201, 405):
                shown = self._shown + unquote(path[len(self._base.path) :]) + "/"
                raise step.error(
                    f"cannot make the folder {shown}: {self._problem(status, 'MKCOL')}"
                )
            self._folders.add(path)

    def _get(self, path: str, out: IO[bytes], step: _Step) -> int:
        """GET ``path`` into ``out``; return the bytes written."""
        target = self._url(path)
        for _ in range(MAX_REDIRECTS + 1):
            exchange = self._open("GET", target, None, step)
            try:
                response = exchange.response
                location = self._redirect(response, target, "GET")
                if location is not None:
                    target = location
                    continue
                if response.status != 200:
                    raise step.error(self._problem(response.status, "GET"))
                length = response.getheader("Content-Length", "")
                expected = int(length) if length.isdigit() else None
                received = 0
                while True:
                    self._bound(exchange.sock, step)
                    chunk = self._guarded(partial(response.read, CHUNK), step)
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                if expected is not None and received != expected:
                    raise step.error(f"the connection ended after {received} of {expected} bytes")
                return received
            finally:
                exchange.close()
        raise step.error(f"more than {MAX_REDIRECTS} redirects")

    def _send_file(self, path: str, source: IO[bytes], step: _Step) -> int:
        target = self._url(path)
        for _ in range(MAX_REDIRECTS + 1):
            source.seek(0)
            exchange = self._open("PUT", target, source, step)
            exchange.close()
            location = self._redirect(exchange.response, target, "PUT")
            if location is None:
                return exchange.response.status
            target = location
        raise step.error(f"more than {MAX_REDIRECTS} redirects")

    def _url(self, path: str) -> _Url:
        return self._base._replace(path=path)

    def _open(self, method: str, target: _Url, body: IO[bytes] | None, step: _Step) -> _Exchange:
        """Send the request (streaming ``body``) and read the answer's status and headers."""
        from http.client import HTTPConnection, HTTPSConnection

        timeout = step.deadline.socket_timeout(self._connect_timeout)
        connection: HTTPConnection
        if target.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            connection = HTTPSConnection(target.host, target.port, timeout=timeout, context=context)
        else:
            connection = HTTPConnection(target.host, target.port, timeout=timeout)
        try:
            self._guarded(connection.connect, step, connecting=True)
            sock = connection.sock
            if sock is None:  # connect() always sets it; for the type checker
                raise step.error(f"no connection to {self._endpoint}")
            connection.putrequest(method, target.path, skip_accept_encoding=True)
            if self._authorization and target.origin == self._base.origin:
                connection.putheader("Authorization", self._authorization)
            if body is not None:
                connection.putheader("Content-Length", str(os.fstat(body.fileno()).st_size))
            self._bound(sock, step)
            self._guarded(connection.endheaders, step)
            while body is not None:
                chunk = body.read(CHUNK)
                if not chunk:
                    break
                self._bound(sock, step)
                self._guarded(partial(connection.send, chunk), step)
            self._bound(sock, step)
            response = self._guarded(connection.getresponse, step)
            if response.status >= 300:
                # Read a little of an error's body so that the server sees a clean close.
                with suppress(Exception):
                    self._bound(sock, step)
                    response.read(_ERROR_BODY)
        except BaseException:
            connection.close()
            raise
        return _Exchange(connection, sock, response)

    def _redirect(self, response: HTTPResponse, target: _Url, method: str) -> _Url | None:
        """Where a redirect leads, or None for another answer (or one not to follow)."""
        if response.status not in _REDIRECTS:
            return None
        if method != "GET" and response.status not in _SAME_METHOD:
            return None
        port = f":{target.port}" if target.port else ""
        here = f"{target.scheme}://{target.host}{port}{target.path}"
        parts = urlsplit(urljoin(here, response.getheader("Location") or ""))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        if target.scheme == "https" and parts.scheme == "http":
            return None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return _Url(parts.scheme, parts.hostname, parts.port, path)

    def _bound(self, sock: socket.socket, step: _Step) -> None:
        """Bound the next socket operation by the read timeout and what is left of the time."""
        timeout = step.deadline.socket_timeout(self._read_timeout)
        # -1 once http.client has closed it, having read the whole body.
        if sock.fileno() != -1:
            sock.settimeout(timeout)

    def _guarded(self, call: Callable[[], T], step: _Step, *, connecting: bool = False) -> T:
        """``call()``, its network errors told as the step's ``StagingError``."""
        from http.client import HTTPException

        try:
            return call()
        except TimeoutError:
            if step.deadline.passed():
                raise step.deadline.error() from None
            if connecting:
                raise step.error(
                    f"no connection to {self._endpoint} within {self._connect_timeout:g} s"
                ) from None
            raise step.error(
                f"no answer from {self._endpoint} within {self._read_timeout:g} s"
            ) from None
        except ssl.SSLError as exc:
            reason = exc.reason or type(exc).__name__
            raise step.error(f"TLS with {self._endpoint} failed ({reason})") from exc
        except OSError as exc:
            if connecting:
                problem = f"cannot connect to {self._endpoint}"
            else:
                problem = f"the connection to {self._endpoint} failed"
            raise step.error(f"{problem} ({_one_line(exc.strerror or str(exc))})") from exc
        except HTTPException as exc:
            raise step.error(
                f"the answer of {self._endpoint} cannot be read ({type(exc).__name__})"
            ) from exc

    def _problem(self, status: int, method: str) -> str:
        """What an HTTP status means for a GET, PUT or MKCOL, without the server's text."""
        if status == 401:
            return "the server refused the login (HTTP 401): check 'login' and 'password'"
        if status == 403:
            return "access denied (HTTP 403)"
        if status == 404 and method == "GET":
            return "the file does not exist (HTTP 404)"
        if status in (404, 409):
            return f"its parent folder does not exist (HTTP {status})"
        if status == 405 and method == "PUT":
            return "a folder has that name (HTTP 405)"
        if status == 507:
            return "the server has no room left (HTTP 507)"
        if status in _REDIRECTS:
            return f"a redirect that is not followed (HTTP {status})"
        return f"HTTP {status}"


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
