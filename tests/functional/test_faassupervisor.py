"""``faassupervisor.supervisor.main``, the entry SCAR's function handler calls, and the
definition SCAR ships as ``function_config.yaml`` in the Lambda task root.

The task root is a temporary folder named by ``LAMBDA_TASK_ROOT``, as Lambda names
``/var/task``; the function's zip holds the definition and the script beside it, with a
relative ``init_script`` as SCAR writes it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from faassupervisor.supervisor import main
from handlers import lambda_handler
from supervisor import bootstrap
from supervisor.errors import ConfigError
from tests.functional.lambda_support import ZIP_RUNTIME, FakeLambdaContext

SCRIPT = 'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"\necho done\n'


def task_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, definition: dict[str, Any]) -> Path:
    """A function's zip as SCAR makes it, extracted where ``LAMBDA_TASK_ROOT`` points."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "process.sh").write_text(SCRIPT)
    (task / "function_config.yaml").write_text(yaml.safe_dump(definition))
    for name in ("FDL", "FUNCTION_CONFIG", "EXECUTION_MODE", "SCRIPT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(task))
    monkeypatch.setenv("AWS_EXECUTION_ENV", ZIP_RUNTIME)
    monkeypatch.setenv("SUPERVISOR_WORK_DIR", str(tmp_path / "work"))
    lambda_handler.reset()
    return task


def test_the_definition_in_the_task_root_wins_over_fdl(tmp_path: Path) -> None:
    (tmp_path / "function_config.yaml").write_text("name: from-task-root\n")
    fdl = base64.b64encode(b"name: from-fdl\n").decode()
    environ = {"LAMBDA_TASK_ROOT": str(tmp_path), "FDL": fdl, "AWS_EXECUTION_ENV": ZIP_RUNTIME}

    assert bootstrap.load(environ).config.name == "from-task-root"


def test_without_the_file_the_definition_comes_from_fdl(tmp_path: Path) -> None:
    environ = {"LAMBDA_TASK_ROOT": str(tmp_path), "FDL": "name: from-fdl\n"}

    assert bootstrap.load(environ).config.name == "from-fdl"


def test_main_runs_the_handler_for_an_s3_event(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    aws_env: dict[str, str],
    s3: Any,
    make_bucket: Callable[[str], str],
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="input/a.txt", Body=b"shim\n")
    task = task_root(
        monkeypatch,
        tmp_path,
        {
            "name": f"scar-{uuid.uuid4().hex[:8]}",
            "init_script": "process.sh",
            "input": [{"storage_provider": "s3", "path": f"{source}/input"}],
            "output": [{"storage_provider": "s3", "path": f"{out}/output"}],
            # Keys SCAR writes into the definition, which the supervisor does not use.
            "runtime": "python3.12",
            "supervisor": {"version": "1.5.8", "layer_name": "serverless-supervisor"},
            "handler": "scar-function.lambda_handler",
        },
    )
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "s3": {"bucket": {"name": source}, "object": {"key": "input/a.txt"}},
            }
        ]
    }

    response = main(event=event, context=FakeLambdaContext(function_name="scar-function"))

    assert response["statusCode"] == 200, response
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == b"done\n"
    got = s3.get_object(Bucket=out, Key="output/upper.txt")["Body"].read()
    assert got == b"SHIM\n"
    assert (task / "function_config.yaml").is_file()


def test_main_answers_a_bad_event_as_the_handler_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str]
) -> None:
    task_root(monkeypatch, tmp_path, {"name": "scar-bad", "init_script": "process.sh"})
    event = {"Records": [{"eventSource": "aws:s3", "s3": {}}]}

    shim = main(event, FakeLambdaContext(aws_request_id="one"))
    lambda_handler.reset()
    direct = lambda_handler.handler(event, FakeLambdaContext(aws_request_id="one"))

    assert shim["statusCode"] == direct["statusCode"] == 400
    assert shim["body"] == direct["body"]


def test_main_without_a_context_says_it_runs_only_in_lambda() -> None:
    with pytest.raises(ConfigError, match="context is None"):
        main({})
