"""An HTTP proxy that models a network: a fixed delay per request, a bandwidth per connection.

``python bench/latency_proxy.py --upstream http://127.0.0.1:PORT --delay 0.02 --bandwidth 50``
listens on a free loopback port, prints its URL on one line and forwards every request to the
upstream server ``delay`` seconds after reading it (a body over 1 MiB is streamed after the
delay), until it is terminated.  Each
client connection is served by a thread of its own with a persistent connection to the
upstream, so that parallel clients wait in parallel, as they would on a real network.

With ``--bandwidth MIB_PER_S``, each client connection moves at most that many MiB per second
in each direction: the request body is read from the client, and the response body written
to it, at that pace, as S3 serves one connection.  Bodies are streamed (a ranged GET or an
UploadPart is never held whole), with ``Content-Length`` or ``Transfer-Encoding: chunked``
(re-chunked to the upstream: the bytes inside, aws-chunked framing included, are unchanged).

With ``--cache-objects``, a GET of an object (a path without a query) is served from a copy of
the object that the proxy keeps, ranged or whole, once a HEAD upstream has shown that the
object still has the copy's ETag; the copy is read whole from the upstream on the first GET.
The moto server reads the whole object for every ranged GET (a 8 MiB range of a 200 MiB object
costs about as much as the object), where S3 serves a range at the cost of the range.
Anything else (a query, a multi-range, a condition other than ``If-Match``, an error) goes
to the upstream as it came.
"""

from __future__ import annotations

import argparse
import http.client
import re
import select
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["Copy", "ObjectCache", "Pacer", "byte_range", "serve"]

MIB = 1024 * 1024
# Bytes moved between two looks at the clock: 5 ms at 50 MiB/s.
CHUNK = 256 * 1024
# Request bodies up to this size are read whole, so that a request can be sent again on a
# fresh upstream connection; bigger ones are streamed.
BUFFERED_BODY = 1 * MIB
# The most bytes of objects ``--cache-objects`` keeps.
CACHE_LIMIT = 1024 * MIB
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# The headers of a whole GET of an object, and its body.
Copy = tuple[list[tuple[str, str]], bytes]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
}


class Pacer:
    """Holds one direction of a connection to ``rate`` bytes per second (0: no limit).

    ``spend(n)`` returns once ``n`` more bytes are due: time does not accumulate while the
    connection is idle, so a connection never bursts above its rate.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._due = 0.0

    def spend(self, size: int) -> None:
        if self.rate <= 0:
            return
        now = self._clock()
        self._due = max(self._due, now) + size / self.rate
        if self._due > now:
            self._sleep(self._due - now)


class Unservable(Exception):
    """The proxy does not serve this GET from its copy: the upstream answers it."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive span a ``Range`` header asks of ``size`` bytes, or None for all of them;
    ``Unservable`` for what only the upstream answers (a multi-range, a span past the end)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or not any(match.groups()):
        raise Unservable(header)
    first, last = match.groups()
    if not first:  # the last N bytes
        begin, end = max(0, size - int(last)), size - 1
    else:
        begin, end = int(first), min(int(last), size - 1) if last else size - 1
    if begin > end or begin >= size:
        raise Unservable(header)
    return begin, end


class ObjectCache:
    """Copies of objects (the headers of a whole GET, and the body) by address and ETag, up
    to ``limit`` bytes; one fill at a time per address, so that parallel ranged GETs of a
    new object read it from the upstream once."""

    def __init__(self, limit: int = CACHE_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, Copy]] = {}
        self._fills: dict[str, threading.Lock] = {}

    def _known(self, address: str, etag: str) -> Copy | None:
        with self._lock:
            entry = self._entries.get(address)
        return entry[1] if entry is not None and entry[0] == etag else None

    def get(self, address: str, etag: str, fill: Callable[[], Copy | None]) -> Copy | None:
        """The copy of ``address`` with ``etag``, made by ``fill`` when there is none (None:
        ``fill`` could not make it)."""
        copy = self._known(address, etag)
        if copy is not None:
            return copy
        with self._lock:
            fill_lock = self._fills.setdefault(address, threading.Lock())
        with fill_lock:
            copy = self._known(address, etag)
            if copy is None:
                copy = fill()
                if copy is not None:
                    self._keep(address, etag, copy)
        return copy

    def _keep(self, address: str, etag: str, copy: Copy) -> None:
        with self._lock:
            self._entries.pop(address, None)
            held = sum(len(entry[1][1]) for entry in self._entries.values())
            while self._entries and held + len(copy[1]) > self.limit:
                oldest = next(iter(self._entries))
                held -= len(self._entries.pop(oldest)[1][1])
            if len(copy[1]) <= self.limit:
                self._entries[address] = (etag, copy)


class _ProxyHandler(BaseHTTPRequestHandler):
    """Forwards each request to ``upstream_address`` ``delay`` seconds after reading it,
    pacing both bodies to ``rate`` bytes per second."""

    protocol_version = "HTTP/1.1"
    upstream_address: tuple[str, int] = ("127.0.0.1", 80)
    delay = 0.0
    rate = 0.0
    cache: ObjectCache | None = None
    _upstream: http.client.HTTPConnection | None = None

    def setup(self) -> None:
        super().setup()
        self._inbound = Pacer(self.rate)
        self._outbound = Pacer(self.rate)

    def log_message(self, format: str, *args: object) -> None:
        return

    def _connection(self) -> http.client.HTTPConnection:
        """The upstream connection, a fresh one when the upstream closed the idle one."""
        connection = self._upstream
        if connection is not None and connection.sock is not None:
            readable, _, _ = select.select([connection.sock], [], [], 0)
            if readable:  # an idle keep-alive connection is readable only at its end
                connection.close()
                connection = None
        if connection is None:
            connection = http.client.HTTPConnection(*self.upstream_address, timeout=120)
            self._upstream = connection
        return connection

    def _drop_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def _body_pieces(self, length: int) -> Iterator[bytes]:
        """``length`` bytes of the request body, read at the connection's pace."""
        left = length
        while left > 0:
            piece = self.rfile.read(min(CHUNK, left))
            if not piece:
                raise ConnectionError(f"the client sent {length - left} of {length} bytes")
            self._inbound.spend(len(piece))
            left -= len(piece)
            yield piece

    def _chunked_pieces(self) -> Iterator[bytes]:
        """The decoded chunks of a ``Transfer-Encoding: chunked`` body, at the pace; the
        trailer section is read and dropped."""
        while True:
            line = self.rfile.readline(65537)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from self._body_pieces(size)
            self.rfile.readline(3)  # the CRLF after the chunk

    def _request_body(self) -> tuple[bytes | Iterator[bytes] | None, bool]:
        """The body to forward (bytes when small enough to send again), and whether it goes
        chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked_pieces(), True
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return None, False
        if length <= BUFFERED_BODY:
            return b"".join(self._body_pieces(length)), False
        return self._body_pieces(length), False

    def _exchange(
        self,
        body: bytes | Iterator[bytes] | None,
        chunked: bool,
        headers: dict[str, str],
        method: str | None = None,
    ) -> http.client.HTTPResponse:
        """Send the request upstream and read the response's head; a bodiless or buffered
        request is sent again once on a fresh connection if the first one fails."""
        repeatable = body is None or isinstance(body, bytes)
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(
                    method or self.command,
                    self.path,
                    body=body,
                    headers=headers,
                    encode_chunked=chunked,
                )
                return connection.getresponse()
            except (http.client.HTTPException, OSError):
                self._drop_upstream()
                if attempt == 2 or not repeatable:
                    raise
        raise AssertionError("unreachable")

    def _serve(self) -> None:
        body, chunked = self._request_body()
        if self.delay:
            time.sleep(self.delay)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        copyable = self.cache is not None and self.command == "GET" and "?" not in self.path
        if not (copyable and self._serve_copy(headers)):
            self._forward(body, chunked, headers)

    def _forward(
        self, body: bytes | Iterator[bytes] | None, chunked: bool, headers: dict[str, str]
    ) -> None:
        """The request to the upstream, its response back to the client."""
        response = self._exchange(body, chunked, headers)
        length = response.getheader("Content-Length")
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        if self.command == "HEAD":
            if length is not None:
                self.send_header("Content-Length", length)
            self.end_headers()
            response.read()
        elif length is not None:
            self.send_header("Content-Length", length)
            self.end_headers()
            while piece := response.read(CHUNK):
                self._send(piece)
        else:  # chunked or ended by the close: read it whole to give it a length
            payload = response.read()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            for start in range(0, len(payload), CHUNK):
                self._send(payload[start : start + CHUNK])
        if response.will_close:
            self._drop_upstream()

    def _serve_copy(self, headers: dict[str, str]) -> bool:
        """Answer a GET from the copy of the object; False when the upstream must answer."""
        assert self.cache is not None
        plain = {
            name: value
            for name, value in headers.items()
            if name.lower() != "range" and not name.lower().startswith("if-")
        }
        head, _ = self._upstream_call("HEAD", plain)
        etag = head.getheader("ETag") or ""
        size = int(head.getheader("Content-Length") or -1)
        conditions = {name.lower(): value for name, value in headers.items()}
        conditions = {name: value for name, value in conditions.items() if name.startswith("if-")}
        if head.status != 200 or not etag or size < 0 or set(conditions) - {"if-match"}:
            return False
        if conditions.get("if-match", etag) != etag:
            return False
        try:
            span = byte_range(self.headers.get("Range"), size)
        except Unservable:
            return False
        address = f"{self.headers.get('Host', '')}{self.path}"
        copy = self.cache.get(address, etag, lambda: self._whole(plain, etag))
        if copy is None or len(copy[1]) != size:
            return False
        self._send_copy(copy[0], memoryview(copy[1]), span)
        return True

    def _send_copy(
        self, headers: list[tuple[str, str]], body: memoryview, span: tuple[int, int] | None
    ) -> None:
        """``span`` of ``body`` (all of it when None), with the headers of the whole GET; a
        range without the checksums of the whole object, as S3 sends it."""
        size = len(body)
        begin, end = span if span is not None else (0, size - 1)
        self.send_response(206 if span is not None else 200)
        for name, value in headers:
            lower = name.lower()
            partial = span is not None and lower.startswith("x-amz-checksum-")
            if lower not in _HOP_BY_HOP and lower != "content-length" and not partial:
                self.send_header(name, value)
        if span is not None:
            self.send_header("Content-Range", f"bytes {begin}-{end}/{size}")
        self.send_header("Content-Length", str(end - begin + 1))
        self.end_headers()
        for start in range(begin, end + 1, CHUNK):
            self._send(body[start : min(start + CHUNK, end + 1)])

    def _upstream_call(
        self, method: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        """A bodiless request upstream: its response, and its body read whole."""
        response = self._exchange(None, False, headers, method)
        body = response.read()
        if response.will_close:
            self._drop_upstream()
        return response, body

    def _whole(self, headers: dict[str, str], etag: str) -> Copy | None:
        """The whole object from the upstream, when it still has ``etag``."""
        response, body = self._upstream_call("GET", headers)
        ok = response.status == 200 and response.getheader("ETag") == etag
        return (response.getheaders(), body) if ok else None

    def _send(self, piece: bytes | memoryview) -> None:
        self._outbound.spend(len(piece))
        self.wfile.write(piece)

    def finish(self) -> None:
        super().finish()
        self._drop_upstream()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # many clients connecting at once: none waits for a SYN retry


def _handler_class(
    upstream: tuple[str, int], delay: float, rate: float, cache: ObjectCache | None
) -> type[BaseHTTPRequestHandler]:
    attributes = {"upstream_address": upstream, "delay": delay, "rate": rate, "cache": cache}
    return type("Handler", (_ProxyHandler,), attributes)


def serve(
    upstream_url: str, delay: float, bandwidth_mib: float = 0.0, *, cache_objects: bool = False
) -> None:
    """Serve until interrupted: ``delay`` seconds per request, ``bandwidth_mib`` MiB/s per
    connection and direction (0: unlimited), GETs from copies with ``cache_objects``."""
    parts = urlsplit(upstream_url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    cache = ObjectCache() if cache_objects else None
    handler = _handler_class(upstream, delay, bandwidth_mib * MIB, cache)
    server = _Server(("127.0.0.1", 0), handler)
    host, port = server.server_address[:2]
    print(f"http://{host!s}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the server to forward to")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds added per request")
    parser.add_argument(
        "--bandwidth",
        type=float,
        default=0.0,
        metavar="MIB_PER_S",
        help="MiB per second per client connection, each direction (default 0: unlimited)",
    )
    parser.add_argument(
        "--cache-objects",
        action="store_true",
        help="serve GETs of objects (ranged or whole) from copies checked by ETag",
    )
    args = parser.parse_args(argv)
    if args.delay < 0 or args.bandwidth < 0:
        parser.error("--delay and --bandwidth must not be negative")
    try:
        serve(args.upstream, args.delay, args.bandwidth, cache_objects=args.cache_objects)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
