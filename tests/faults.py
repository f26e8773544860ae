"""A fault-injecting HTTP proxy to put in front of the moto server.

Clients point ``endpoint_url`` (or ``AWS_ENDPOINT_URL``) at the proxy; it forwards every
request to the upstream server unless a ``Fault`` matches it.  A fault answers with an
error status and an AWS error body (a 5xx, ``SlowDown``, ``AccessDenied``,
``TooManyRequestsException``), or cuts the connection after part of the request body was
read, as a network reset in the middle of a transfer would.  Each fault fires ``times``
times (``None`` for always) and counts what it did, so tests can check that the retries
really happened.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["Fault", "FaultProxy"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Fault:
    """What to do to requests whose method and path (with the query) match.

    ``action`` is ``"status"`` (answer ``status`` with ``code``/``message`` in an S3 XML
    or a JSON error body, as ``body_format`` says) or ``"reset"`` (read ``after_bytes`` of
    the request body, then close the connection without an answer).  ``target`` matches
    the ``X-Amz-Target`` header for JSON protocols, when given.
    """

    method: str = ".*"
    path: str = ".*"
    action: Literal["status", "reset"] = "status"
    status: int = 503
    code: str = "SlowDown"
    message: str = "Please reduce your request rate."
    body_format: Literal["xml", "json"] = "xml"
    after_bytes: int = 0
    times: int | None = 1
    delay: float = 0.0
    target: str = ""
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, target: str = "") -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.target and not re.search(self.target, target):
            return False
        return bool(re.fullmatch(self.method, method) and re.search(self.path, path))


class FaultProxy:
    """A threaded proxy on a free loopback port; use as a context manager."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, method: str, path: str, target: str = "") -> Fault | None:
        with self._lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.matches(method, path, target):
                    fault.fired += 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_FaultHandler,), {"proxy": self})


class _FaultHandler(BaseHTTPRequestHandler):
    """Answers a request with the first fault that matches it, or forwards it upstream."""

    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: object) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        fault = self.proxy._take(self.command, self.path, self.headers.get("X-Amz-Target", ""))
        if fault is not None and fault.delay:
            threading.Event().wait(fault.delay)
        if fault is not None and fault.action == "reset":
            self.rfile.read(min(length, fault.after_bytes))
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.close_connection = True
            self.connection.close()
            return
        body = self.rfile.read(length) if length else b""
        if fault is not None:
            self._answer_fault(fault)
            return
        self._forward(body)

    def _answer_fault(self, fault: Fault) -> None:
        if fault.body_format == "json":
            payload = (f'{{"__type": "{fault.code}", "message": "{fault.message}"}}').encode()
            content_type = "application/json"
        else:
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message>"
                "<RequestId>FAULT</RequestId></Error>"
            ).encode()
            content_type = "application/xml"
        self.send_response(fault.status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-amzn-ErrorType", fault.code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _forward(self, body: bytes) -> None:
        upstream = http.client.HTTPConnection(*self.proxy._upstream, timeout=60)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        payload = response.read()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve
