"""The HTTP side of the ``webdav`` storage type: one request on a connection of its own.

``WebdavClient`` speaks HTTP to one WebDAV server through the standard library, so that
every step is bounded: a connection within ``CONNECT_TIMEOUT`` seconds, each read or write
within ``READ_TIMEOUT``, and the whole transfer (a ``Step``) within what its ``TimeLimit``
leaves (``DeadlineError`` past it).  Redirects (dCache sends a transfer to a pool) are
followed a few times, never from HTTPS to HTTP, and the credentials go only to the server
they were given for.  Network errors and HTTP statuses become the step's ``StagingError``
on one line, never with the server's text, the login or a URL with credentials.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import IO, TYPE_CHECKING, NamedTuple, TypeVar
from urllib.parse import urljoin, urlsplit

from supervisor.deadline import Deadline
from supervisor.errors import DeadlineError, StagingError
from supervisor.storage.base import one_line as _one_line

if TYPE_CHECKING:
    from http.client import HTTPConnection, HTTPResponse

__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "Exchange",
    "Step",
    "TimeLimit",
    "Url",
    "WebdavClient",
]

# Seconds, as for the S3 clients (see ``staging.retries``): a live server answers well
# within them.
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


class Url(NamedTuple):
    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def origin(self) -> tuple[str, str, int | None]:
        return self.scheme, self.host.lower(), self.port


class Step(NamedTuple):
    """The transfer a request belongs to, for its error messages and its time."""

    prefix: str  # "cannot upload X to Y (storage provider webdav.ID)"
    bucket: str
    key: str
    deadline: TimeLimit

    def error(self, problem: str) -> StagingError:
        return StagingError(f"{self.prefix}: {problem}", bucket=self.bucket, key=self.key)


class Exchange(NamedTuple):
    connection: HTTPConnection
    sock: socket.socket
    response: HTTPResponse

    def close(self) -> None:
        self.connection.close()
        with suppress(OSError):
            self.response.close()


class TimeLimit(NamedTuple):
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


class WebdavClient:
    """HTTP requests to the server at ``base``, each on a connection of its own.

    ``endpoint`` (``scheme://host:port``) names the server in messages; ``authorization``,
    when given, is sent only to the origin of ``base``.
    """

    def __init__(
        self,
        base: Url,
        endpoint: str,
        *,
        authorization: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base = base
        self._endpoint = endpoint
        self._authorization = authorization
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl_context = ssl_context

    def get(self, path: str, out: IO[bytes], step: Step) -> int:
        """GET ``path`` into ``out``; return the bytes written."""
        target = self.url(path)
        for _ in range(MAX_REDIRECTS + 1):
            exchange = self.open("GET", target, None, step)
            try:
                response = exchange.response
                location = self._redirect(response, target, "GET")
                if location is not None:
                    target = location
                    continue
                if response.status != 200:
                    raise step.error(self.problem(response.status, "GET"))
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

    def send_file(self, path: str, source: IO[bytes], step: Step) -> int:
        target = self.url(path)
        for _ in range(MAX_REDIRECTS + 1):
            source.seek(0)
            exchange = self.open("PUT", target, source, step)
            exchange.close()
            location = self._redirect(exchange.response, target, "PUT")
            if location is None:
                return exchange.response.status
            target = location
        raise step.error(f"more than {MAX_REDIRECTS} redirects")

    def url(self, path: str) -> Url:
        return self.base._replace(path=path)

    def open(self, method: str, target: Url, body: IO[bytes] | None, step: Step) -> Exchange:
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
            if self._authorization and target.origin == self.base.origin:
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
        return Exchange(connection, sock, response)

    def _redirect(self, response: HTTPResponse, target: Url, method: str) -> Url | None:
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
        return Url(parts.scheme, parts.hostname, parts.port, path)

    def _bound(self, sock: socket.socket, step: Step) -> None:
        """Bound the next socket operation by the read timeout and what is left of the time."""
        timeout = step.deadline.socket_timeout(self._read_timeout)
        # -1 once http.client has closed it, having read the whole body.
        if sock.fileno() != -1:
            sock.settimeout(timeout)

    def _guarded(self, call: Callable[[], T], step: Step, *, connecting: bool = False) -> T:
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

    def problem(self, status: int, method: str) -> str:
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
