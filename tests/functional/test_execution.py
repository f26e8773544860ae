"""The script as a real ``/bin/sh`` process under the watchdog: output, environment, timeouts,
and no process of its group left behind."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from supervisor.deadline import Deadline
from supervisor.errors import ExecutionError
from supervisor.execution import (
    ExecutionResult,
    ProcessExecutor,
    ScriptRun,
    build_environment,
)
from supervisor.watchdog import Watchdog, kill_group

SHELL_ADDS = {"PWD", "OLDPWD", "SHLVL", "_"}

RunScript = Callable[..., ExecutionResult]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    for name in ("input", "output", "work"):
        (tmp_path / name).mkdir()
    return tmp_path


@pytest.fixture
def environment(work: Path) -> dict[str, str]:
    return build_environment(
        environ=os.environ,
        input_file=work / "input" / "data.txt",
        input_dir=work / "input",
        output_dir=work / "output",
        object_key="in/data.txt",
        event_time="2024-05-01T12:00:00.000Z",
        event_json='{"Records": [{"s3": {"object": {"key": "in/data.txt"}}}]}',
        request_id="req-1",
        instance_ip="127.0.0.1",
        variables={"MODEL": "small"},
        query={"size": "10"},
    )


@pytest.fixture
def run_script(work: Path, environment: dict[str, str]) -> RunScript:
    """Write ``body`` as the script and run it; returns the result."""

    def run(
        body: str,
        *,
        watchdog: Watchdog | None = None,
        env: Mapping[str, str] | None = None,
        executor: ProcessExecutor | None = None,
    ) -> ExecutionResult:
        script = work / "script.sh"
        script.write_text(body)
        return (executor or ProcessExecutor()).run(
            ScriptRun(
                script=script,
                environment=environment if env is None else env,
                workdir=work / "work",
                log_path=work / "logs" / "script.log",
            ),
            watchdog or Watchdog(Deadline.none(), 0.0),
        )

    return run


def gone(pid: int) -> bool:
    """No such process, or only a zombie that is not ours to reap."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0] == b"Z" and int(fields[1]) != os.getpid()


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


def script_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines of the script's output as logged: a record holds a block of lines."""
    blocks = [r.getMessage() for r in caplog.records if r.name == "supervisor.script"]
    return [line for block in blocks for line in block.split("\n")]


def test_success_output_to_file_and_log(
    run_script: RunScript, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supervisor.script")

    result = run_script('echo "hello"\necho "to stderr" >&2\nprintf "no newline"\n')

    assert result.succeeded
    assert result.exit_code == 0
    assert not result.timed_out
    assert result.killed_by_signal is None
    assert result.output() == b"hello\nto stderr\nno newline"
    assert script_lines(caplog) == ["hello", "to stderr", "no newline"]


def test_crlf_line_endings_are_removed_a_lone_cr_kept(
    run_script: RunScript, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supervisor.script")

    result = run_script("printf 'one\\r\\ntwo\\r\\n\\r\\n50%%\\r100%%\\r'\n")

    assert result.output() == b"one\r\ntwo\r\n\r\n50%\r100%\r"
    assert script_lines(caplog) == ["one", "two", "", "50%\r100%\r"]


def test_invalid_utf8_and_long_lines(
    run_script: RunScript, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supervisor.script")

    result = run_script(
        "printf 'caf\\351\\n'\nhead -c 200000 /dev/zero | tr '\\0' 'x'\necho\necho end\n"
    )

    assert result.succeeded
    assert result.output() == b"caf\xe9\n" + b"x" * 200000 + b"\nend\n"
    lines = script_lines(caplog)
    assert lines[0] == "caf\ufffd"
    assert lines[-1] == "end"
    assert "".join(lines[1:-1]) == "x" * 200000
    assert all(len(line) <= 64 * 1024 for line in lines)


def test_non_zero_exit(run_script: RunScript) -> None:
    result = run_script("echo failing\nexit 3\n")

    assert result.exit_code == 3
    assert not result.succeeded
    assert not result.timed_out
    assert result.output() == b"failing\n"


def test_runs_in_the_workdir(run_script: RunScript, work: Path) -> None:
    result = run_script('pwd > "$TMP_OUTPUT_DIR/pwd.txt"\n')

    assert result.succeeded
    assert (work / "output" / "pwd.txt").read_text().strip() == str((work / "work").resolve())


def test_script_sees_exactly_its_environment(
    run_script: RunScript,
    work: Path,
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-the-test-process")
    monkeypatch.setenv("FUNCTION_CONFIG", "bmFtZTogZm4K")

    result = run_script('env > "$TMP_OUTPUT_DIR/env.txt"\n')

    assert result.succeeded
    seen = dict(
        line.split("=", 1)
        for line in (work / "output" / "env.txt").read_text().splitlines()
        if "=" in line
    )
    assert "AWS_SECRET_ACCESS_KEY" not in seen
    assert "FUNCTION_CONFIG" not in seen
    assert {name: seen.get(name) for name in environment} == environment
    assert set(seen) - set(environment) <= SHELL_ADDS
    assert seen["CONT_VAR_size"] == "10"
    assert seen["MODEL"] == "small"


def test_timeout_kills_script_and_grandchild(
    run_script: RunScript, work: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="supervisor")
    watchdog = Watchdog(Deadline.after(2.0), 0.5)
    started = time.monotonic()

    result = run_script(
        'echo $$ > "$TMP_OUTPUT_DIR/script.pid"\n'
        'sleep 60 &\necho $! > "$TMP_OUTPUT_DIR/child.pid"\n'
        "echo started\nsleep 60\necho never\n",
        watchdog=watchdog,
    )

    assert time.monotonic() - started < 10
    assert result.timed_out
    assert not result.succeeded
    assert result.output() == b"started\n"
    assert watchdog.killed_at is not None
    assert gone(read_pid(work / "output" / "script.pid"))
    assert gone(read_pid(work / "output" / "child.pid"))
    assert any(
        r.name == "supervisor.watchdog" and r.levelno == logging.WARNING for r in caplog.records
    )


def test_script_that_ignores_term_is_killed(run_script: RunScript, work: Path) -> None:
    watchdog = Watchdog(Deadline.after(3.0), 0.2, grace=0.3)
    started = time.monotonic()

    result = run_script(
        "trap '' TERM\n"
        'echo $$ > "$TMP_OUTPUT_DIR/script.pid"\n'
        'sleep 60 &\necho $! > "$TMP_OUTPUT_DIR/child.pid"\n'
        "while :; do sleep 1; done\n",
        watchdog=watchdog,
    )

    assert time.monotonic() - started < 10
    assert result.timed_out
    assert result.killed_by_signal == signal.SIGKILL
    assert gone(read_pid(work / "output" / "script.pid"))
    assert gone(read_pid(work / "output" / "child.pid"))


def test_script_that_handles_term_exits_its_way(run_script: RunScript) -> None:
    watchdog = Watchdog(Deadline.after(3.0), 0.2, grace=5.0)

    result = run_script(
        "trap 'echo cleaning up; exit 7' TERM\necho started\nwhile :; do sleep 0.05; done\n",
        watchdog=watchdog,
    )

    assert result.timed_out
    assert result.exit_code == 7
    assert result.output().endswith(b"cleaning up\n")


def test_output_held_outside_the_group_does_not_spend_the_reserve(
    run_script: RunScript, work: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that left the group with a new environment and keeps the output open is
    killed with the run, which does not wait for the output to close."""
    caplog.set_level(logging.INFO, logger="supervisor")
    watchdog = Watchdog(Deadline.after(4.0), 2.0)

    result = run_script(
        'setsid env -i /bin/sh -c \'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; '
        'exec sleep 60\' "$TMP_OUTPUT_DIR/holder.pid" &\n'
        'until [ -e "$TMP_OUTPUT_DIR/holder.pid" ]; do sleep 0.01; done\n'
        "sleep 60\n",
        watchdog=watchdog,
    )

    assert result.timed_out
    assert gone(read_pid(work / "output" / "holder.pid"))
    messages = [record.getMessage() for record in caplog.records]
    assert not [message for message in messages if "still open" in message]
    assert any("killed 1 process(es) left behind by script" in m for m in messages)


def test_output_keeps_its_last_bytes_within_a_limit(run_script: RunScript) -> None:
    result = run_script("head -c 3000 /dev/zero | tr '\\0' a\nprintf 'the end'\n")

    assert result.output() == b"a" * 3000 + b"the end"
    assert result.output(limit=4000) == result.output()
    assert result.output(limit=100) == (
        b"[the first 2907 of 3007 bytes of output are left out here]\n" + b"a" * 93 + b"the end"
    )


def test_background_process_left_after_exit_is_killed(run_script: RunScript, work: Path) -> None:
    started = time.monotonic()

    result = run_script('sleep 60 &\necho $! > "$TMP_OUTPUT_DIR/child.pid"\necho done\n')

    assert time.monotonic() - started < 10
    assert result.succeeded
    assert result.output() == b"done\n"
    assert gone(read_pid(work / "output" / "child.pid"))


def test_expired_watchdog_does_not_start(run_script: RunScript, work: Path) -> None:
    result = run_script(
        'touch "$TMP_OUTPUT_DIR/ran"\n', watchdog=Watchdog(Deadline.after(1.0), 2.0)
    )

    assert result.timed_out
    assert result.exit_code is None
    assert result.output() == b""
    assert not (work / "output" / "ran").exists()


def test_missing_script(work: Path, environment: dict[str, str]) -> None:
    run = ScriptRun(work / "nope.sh", environment, work / "work", work / "script.log")

    with pytest.raises(ExecutionError, match=r"nope\.sh"):
        ProcessExecutor().run(run, Watchdog(Deadline.none(), 0.0))


def test_missing_shell(run_script: RunScript) -> None:
    with pytest.raises(ExecutionError, match="/no/such/sh"):
        run_script("true\n", executor=ProcessExecutor(interpreter="/no/such/sh"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux limit of one variable")
def test_environment_too_large(run_script: RunScript, environment: dict[str, str]) -> None:
    with pytest.raises(ExecutionError, match="too large"):
        run_script("true\n", env={**environment, "EVENT": "x" * 200_000})


def test_nul_in_environment(run_script: RunScript, environment: dict[str, str]) -> None:
    with pytest.raises(ExecutionError):
        run_script("true\n", env={**environment, "BAD": "a\0b"})


def test_kill_group_reaches_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)

    kill_group(process.pid, 0.5, process=process)

    assert process.returncode is not None
    assert gone(process.pid)
    assert gone(read_pid(pidfile))


def test_kill_group_of_an_empty_group_returns() -> None:
    process = subprocess.Popen(["/bin/sh", "-c", "exit 0"], start_new_session=True)
    process.wait()

    kill_group(process.pid, 5.0, process=process)

    assert process.returncode == 0


def test_the_group_kill_times_its_grace_by_the_clock_it_is_given(tmp_path: Path) -> None:
    """A grace of an hour on a clock that has already passed it: SIGKILL follows SIGTERM at
    once (on the real clock the call would wait an hour for a script that ignores TERM)."""
    pidfile = tmp_path / "script.pid"
    process = subprocess.Popen(
        ["/bin/sh", "-c", f"trap '' TERM; echo $$ > {pidfile}; while :; do sleep 1; done"],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ticks = iter(range(0, 10**9, 10_000))

    kill_group(process.pid, 3600.0, process=process, clock=lambda: float(next(ticks)))

    assert process.wait(timeout=30) == -signal.SIGKILL
    assert gone(process.pid)


def test_watchdog_arithmetic() -> None:
    now = [100.0]
    watchdog = Watchdog(Deadline(110.0, lambda: now[0]), 3.0)

    assert watchdog.kill_at == 107.0
    assert watchdog.remaining() == 7.0
    assert not watchdog.expired()
    now[0] = 107.0
    assert watchdog.expired()
    assert watchdog.remaining() == 0.0
    assert Watchdog(Deadline.none(), 3.0).kill_at is None
    assert Watchdog(Deadline.none(), 3.0).remaining() is None
    assert not Watchdog(Deadline.none(), 3.0).expired()


@pytest.mark.parametrize("wait_for_the_escape", [True, False], ids=["escaped", "escaping"])
def test_a_process_that_left_the_group_is_killed_whenever_it_left(
    run_script: RunScript, work: Path, wait_for_the_escape: bool
) -> None:
    """Whether ``setsid`` has already taken the child out of the group when the script
    ends (it is then the reaper's) or not yet (the group kill gets it), it dies with the run."""
    body = (
        'setsid /bin/sh -c \'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60\' '
        '"$TMP_OUTPUT_DIR/escaped.pid" &\n'
    )
    if wait_for_the_escape:
        body += 'until [ -e "$TMP_OUTPUT_DIR/escaped.pid" ]; do sleep 0.01; done\n'

    result = run_script(body)

    assert result.succeeded
    pidfile = work / "output" / "escaped.pid"
    if pidfile.exists():
        assert gone(read_pid(pidfile))
    else:
        assert not wait_for_the_escape
