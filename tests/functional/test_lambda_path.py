"""The Lambda path carries no emulator of AWS: a cold start and an invocation in the zip
runtime, through the handler, import nothing of ``supervisor.local``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.functional.lambda_support import install_function

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter, as a Lambda execution environment starts: the handler
# module, one S3 event through it, then what was imported.
_INVOKE = """
import json, sys
from handlers import lambda_handler
from tests.functional.lambda_support import FakeLambdaContext

event = json.loads(sys.stdin.read())
response = lambda_handler.handler(event, FakeLambdaContext(function_name=sys.argv[1]))
local = sorted(m for m in sys.modules if m.split(".")[:2] == ["supervisor", "local"])
print(json.dumps({"status": response["statusCode"], "local": local}))
"""


def test_a_lambda_invocation_imports_no_local_emulator(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3: Any,
    make_bucket: Any,
    load_event: Any,
) -> None:
    source, results = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/photo.jpg", Body=b"hello world")
    function = install_function(
        monkeypatch,
        tmp_path,
        'cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.jpg"\n',
        {
            "input": [{"storage_provider": "s3", "path": f"{source}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{results}/done"}],
        },
    )
    event = json.loads(json.dumps(load_event("s3_put.json")).replace("input-bucket", source))

    done = subprocess.run(
        [sys.executable, "-c", _INVOKE, function.name],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=os.environ.copy(),
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": 200, "local": []}
    stored = s3.get_object(Bucket=results, Key="done/copy.jpg")["Body"].read()
    assert stored == b"hello world"
