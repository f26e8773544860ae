"""A chatty script: every line of a large output reaches the log, a block of lines per
record, each line with the log prefix; the log file keeps every byte.  How long it takes
is measured by the benchmark (``bench/run.py --cases 7``), not here."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor import logs
from supervisor.deadline import Deadline
from supervisor.execution import ProcessExecutor, ScriptRun, build_environment
from supervisor.watchdog import Watchdog

LINES = 200_000
LONG_AT = LINES // 2 + 1  # the number of the long line
# Lines of 1 to 200 characters, an empty one every 1,000, and a 100 KiB line in the middle
# (logged in pieces): blocks end on every kind of boundary.
SCRIPT = f"""\
awk 'BEGIN {{
  for (i = 1; i <= {LINES}; i++) {{
    if (i % 1000 == 0) print "";
    else if (i == {LONG_AT}) {{ s = "L"; while (length(s) < 102400) s = s s; print s }}
    else printf "line %d %s\\n", i, substr("abcdefghijklmnopqrstuvwxyz0123456789", 1, i % 37) \\
      substr("{"x" * 150}", 1, i % 163)
  }}
}}'
printf 'last line, no newline'
"""
PREFIX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO supervisor\.script: ")


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "supervisor.log"
    with path.open("w", encoding="utf-8") as stream:
        logs.configure_cli("INFO", secrets=[], stream=stream)
        try:
            yield path
        finally:
            for handler in list(logging.getLogger().handlers):
                if getattr(handler, "stream", None) is stream:
                    logging.getLogger().removeHandler(handler)


def test_every_line_of_a_large_output_reaches_the_log(tmp_path: Path, log_file: Path) -> None:
    work = tmp_path / "work"
    for name in ("input", "output"):
        (work / name).mkdir(parents=True)
    script = tmp_path / "chatty.sh"
    script.write_text(SCRIPT)
    environment = build_environment(
        environ=os.environ,
        input_file=None,
        input_dir=work / "input",
        output_dir=work / "output",
        object_key="",
        event_time="",
        event_json="{}",
        request_id="req-chatty",
        instance_ip="127.0.0.1",
        variables={},
        query={},
    )
    run = ScriptRun(script, environment, work, tmp_path / "script.log")

    result = ProcessExecutor().run(run, Watchdog(deadline=Deadline.none(), reserve=0.0))

    assert result.succeeded, result.output(2000)
    output = result.output()
    expected = output.decode().split("\n")
    assert len(expected) == LINES + 1
    assert expected[0] == "line 1 a" + "x"
    assert expected[-1] == "last line, no newline"

    logged = [line for line in log_file.read_text().split("\n") if " supervisor.script: " in line]
    assert all(PREFIX.match(line) for line in logged)
    messages = [PREFIX.sub("", line, count=1) for line in logged]
    at = LONG_AT - 1
    long_line = expected[at]
    assert len(long_line) == 131072
    assert set(long_line) == {"L"}
    pieces = len(messages) - len(expected) + 1
    assert pieces >= 2  # the long line, cut in pieces of at most 48 KiB
    assert "".join(messages[at : at + pieces]) == long_line
    assert all(len(piece) <= 48 * 1024 for piece in messages[at : at + pieces])
    assert messages[:at] == expected[:at]
    assert messages[at + pieces :] == expected[at + 1 :]
