"""An HTTP proxy that adds a fixed delay to every request, modelling a network round trip.

``python bench/latency_proxy.py --upstream http://127.0.0.1:PORT --delay 0.02`` listens on a
free loopback port, prints its URL on one line and forwards every request to the upstream
server ``delay`` seconds after reading it, until it is terminated.  Each client connection
is served by a thread of its own with a persistent connection to the upstream, so that
parallel clients wait in parallel, as they would on a real network.
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["serve"]

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


class _DelayingHandler(BaseHTTPRequestHandler):
    """Forwards each request to ``upstream_address`` ``delay`` seconds after reading it."""

    protocol_version = "HTTP/1.1"
    upstream_address: tuple[str, int] = ("127.0.0.1", 80)
    delay = 0.0
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        return

    def _connection(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(*self.upstream_address, timeout=120)
        return self._upstream

    def _exchange(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[http.client.HTTPResponse, bytes]:
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                return response, response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._upstream = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        time.sleep(self.delay)
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP
        }
        response, payload = self._exchange(body, headers)
        if response.will_close and self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def finish(self) -> None:
        super().finish()
        if self._upstream is not None:
            self._upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve


def _handler_class(upstream: tuple[str, int], delay: float) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_DelayingHandler,), {"upstream_address": upstream, "delay": delay})


def serve(upstream_url: str, delay: float) -> None:
    parts = urlsplit(upstream_url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(upstream, delay))
    server.daemon_threads = True
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
    args = parser.parse_args(argv)
    try:
        serve(args.upstream, args.delay)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
