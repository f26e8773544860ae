"""Why a run did not succeed: the ``delegate_on`` reasons and the sentence for a person."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.diagnosis import diagnose
from supervisor.execution import ExecutionResult


def result(exit_code: int | None, *, timed_out: bool = False) -> ExecutionResult:
    return ExecutionResult(exit_code, timed_out, 1.0, Path("/nonexistent/log"))


@pytest.mark.parametrize(
    ("run", "memory", "reasons", "detail"),
    [
        (result(-9, timed_out=True), 512, ("timeout",), "ran past the deadline less the reserve"),
        (result(-9), 512, ("resources", "failure"), "killed by SIGKILL (out of memory? the "),
        (result(137), 512, ("resources", "failure"), "exited with 137: a command it ran was"),
        (result(-9), 0, ("resources", "failure"), "killed by SIGKILL (out of memory?)"),
        (result(-15), 512, ("failure",), "the script exited with -15"),
        (result(1), 512, ("failure",), "the script exited with 1"),
    ],
)
def test_diagnose(run: ExecutionResult, memory: int, reasons: tuple[str, ...], detail: str) -> None:
    found, sentence = diagnose(run, memory)
    assert found == reasons
    assert detail in sentence
    assert ("512 MB" in sentence) is (memory > 0 and "resources" in reasons)
