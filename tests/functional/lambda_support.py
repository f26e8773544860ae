"""What the Lambda runtime gives the handler, for tests that call it in-process.

``FakeLambdaContext`` stands in for the context object (it is the clock of an invocation:
``get_remaining_time_in_millis`` counts down from a ``time.monotonic`` deadline).
``install_function`` writes a function definition and its ``init_script`` to a folder and
sets the environment the handler reads in the zip runtime (``FDL``, ``AWS_EXECUTION_ENV``,
``SUPERVISOR_WORK_DIR``), then forgets any supervisor built before, so the next call is a
cold start.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers import lambda_handler

ZIP_RUNTIME = "AWS_Lambda_python3.12"

# What a deployment, a Batch job or another test may have left in the environment.
_HOST_VARIABLES = (
    "FUNCTION_CONFIG",
    "FDL",
    "SCRIPT",
    "EXECUTION_MODE",
    "LOG_LEVEL",
    "TIMEOUT_THRESHOLD",
    "SUPERVISOR_STORAGE_ROOT",
    "SUPERVISOR_BATCH_JOB_ID",
    "SUPERVISOR_LOG_GROUP",
    "AWS_BATCH_JOB_ID",
)


@dataclass
class FakeLambdaContext:
    """The Lambda context object: identifiers, and the time left until ``timeout_s`` ran out."""

    function_name: str = "supervisor-test"
    timeout_s: float = 30.0
    memory_limit_in_mb: int | str = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef"
    invoked_function_arn: str = ""
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.timeout_s
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.invoked_function_arn = (
            self.invoked_function_arn
            or f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class LambdaFunction:
    """A function installed by ``install_function``."""

    name: str
    folder: Path
    script: Path
    work_dir: Path
    definition: Mapping[str, Any]

    def context(self, timeout_s: float = 30.0, **fields: Any) -> FakeLambdaContext:
        return FakeLambdaContext(function_name=self.name, timeout_s=timeout_s, **fields)


def install_function(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    script: str,
    definition: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    execution_env: str = ZIP_RUNTIME,
) -> LambdaFunction:
    """Ship ``script`` and a definition as the zip runtime would; return where things are.

    ``definition`` is merged over ``name``, ``execution_mode: lambda`` and ``init_script``
    (an absolute path, as a relative one would resolve against the working directory).
    ``name`` defaults to a fresh one, so that the powertools logger of each function is
    built anew and writes to the current test's stdout.
    """
    name = name or f"fn-{uuid.uuid4().hex[:10]}"
    function = folder / "function"
    function.mkdir(parents=True, exist_ok=True)
    script_path = function / "process.sh"
    script_path.write_text(script)
    work_dir = folder / "work"
    data: dict[str, Any] = {
        "name": name,
        "execution_mode": "lambda",
        "init_script": str(script_path),
        **(definition or {}),
    }
    text = yaml.safe_dump(data, sort_keys=False)
    for variable in _HOST_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FDL", base64.b64encode(text.encode()).decode("ascii"))
    monkeypatch.setenv("SUPERVISOR_WORK_DIR", str(work_dir))
    monkeypatch.setenv("AWS_EXECUTION_ENV", execution_env)
    lambda_handler.reset()
    return LambdaFunction(name, function, script_path, work_dir, data)
