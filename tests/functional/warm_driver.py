"""Warm invocations of the Lambda handler in one process, as the Lambda runtime makes them.

``python -m tests.functional.warm_driver EVENTS RESULTS``: the function comes from the
environment (``FDL``, ``SUPERVISOR_WORK_DIR``, ``AWS_EXECUTION_ENV``), the events from the
JSON list in EVENTS.  After each invocation, one JSON line goes to RESULTS: the response
(or the error it raised) and the pids of the live processes (not zombies) with an
argument equal to the environment's ``ESCAPE_TAG``, looked up at once, when the handler
has returned.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from handlers import lambda_handler
from tests.functional.lambda_support import FakeLambdaContext


def tagged_alive(tag: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2 :][:1]
        if tag in cmdline.split(b"\0") and state not in (b"Z", b"X"):
            found.append(int(entry))
    return sorted(found)


def main() -> None:
    events_path, results_path = sys.argv[1:3]
    tag = os.environ["ESCAPE_TAG"]
    events = json.loads(Path(events_path).read_text())
    with Path(results_path).open("w") as results:
        for event in events:
            try:
                response = lambda_handler.handler(event, FakeLambdaContext(timeout_s=60.0))
            except Exception as exc:
                response = {"statusCode": None, "error": f"{type(exc).__name__}: {exc}"}
            line = {"response": response, "alive": tagged_alive(tag.encode())}
            results.write(json.dumps(line) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
