"""A minimal AWS Lambda Runtime API, for a runtime started by a test.

It serves what a runtime interface client uses: ``GET /2018-06-01/runtime/invocation/next``
hands out the queued invocations one by one (blocking while none is queued, as Lambda
does between invocations), ``POST .../invocation/{id}/response`` and ``.../{id}/error``
record the outcome, ``POST /2018-06-01/runtime/init/error`` records a failed start.
An invocation's deadline (``Lambda-Runtime-Deadline-Ms``, epoch milliseconds) is set when it
is handed out, ``timeout_s`` ahead, as Lambda's clock starts when the function receives it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


@dataclass
class Invocation:
    """One event sent to the function and, once it answered, what it posted."""

    event: Any
    timeout_s: float
    function_arn: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(
        default_factory=lambda: f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
    )
    deadline_ms: int | None = None
    answered_ms: int | None = None
    outcome: str | None = None  # "response" or "error"
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)

    def json(self) -> Any:
        return json.loads(self.body)


class RuntimeAPI:
    """The Runtime API on ``127.0.0.1`` and a free port; ``address`` is ``host:port``."""

    def __init__(self, function_name: str) -> None:
        self.function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.init_errors: list[tuple[str | None, bytes]] = []
        self.next_calls = 0
        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._invocations: dict[str, Invocation] = {}
        self._closed = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: Any, timeout_s: float = 30.0) -> Invocation:
        """Queue ``event``; the function gets it on its next ``/invocation/next``."""
        invocation = Invocation(event, timeout_s, self.function_arn)
        self._invocations[invocation.request_id] = invocation
        self._queue.put(invocation)
        return invocation

    def wait_for_next_calls(self, count: int, timeout_s: float = 5.0) -> int:
        """Wait until the function asked ``count`` times for an event; return how many."""
        give_up = time.monotonic() + timeout_s
        while self.next_calls < count and time.monotonic() < give_up:
            time.sleep(0.02)
        return self.next_calls

    # --- the endpoints ------------------------------------------------------------------

    def _next(self) -> Invocation | None:
        self.next_calls += 1
        while not self._closed.is_set():
            try:
                invocation = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            invocation.deadline_ms = int((time.time() + invocation.timeout_s) * 1000)
            return invocation
        return None

    def _answer(self, request_id: str, outcome: str, body: bytes) -> bool:
        invocation = self._invocations.get(request_id)
        if invocation is None or invocation.done.is_set():
            return False
        invocation.answered_ms = int(time.time() * 1000)
        invocation.outcome = outcome
        invocation.body = body
        invocation.done.set()
        return True


class _RuntimeHandler(BaseHTTPRequestHandler):
    """The routes of the Runtime API that awslambdaric calls, answered from ``api``."""

    protocol_version = "HTTP/1.1"
    api: RuntimeAPI

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self._send(HTTPStatus.NOT_FOUND, {"errorMessage": f"no route {self.path}"})
            return
        invocation = self.api._next()
        if invocation is None:
            self.close_connection = True  # the test is over: no answer
            return
        self._send(
            HTTPStatus.OK,
            invocation.event,
            {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def do_POST(self) -> None:
        body = self._body()
        if self.path == f"{PREFIX}/init/error":
            self.api.init_errors.append((self.headers.get(ERROR_TYPE_HEADER), body))
            self._send(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
        if (
            self.path.startswith(f"{PREFIX}/invocation/")
            and len(parts) == 2
            and parts[1] in ("response", "error")
            and self.api._answer(parts[0], parts[1], body)
        ):
            self._send(HTTPStatus.ACCEPTED, {"status": "OK"})
            return
        self._send(HTTPStatus.BAD_REQUEST, {"errorMessage": f"unexpected POST {self.path}"})

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(
        self, status: HTTPStatus, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reports what it needs."""


def _handler_for(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_RuntimeHandler,), {"api": api})
