"""A storage type added in one module (``tests/memory_storage.py``) serves a whole
invocation: the definition names it, the input is staged in from it, a /bin/sh script runs,
and the output is uploaded to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from supervisor import storage
from supervisor.models import Model

ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter, as a tool that embeds the supervisor starts: the type is registered
# (by importing its module) before the definition is loaded.
_INVOKE = """
import json, os, sys
from pathlib import Path
import tests.memory_storage as memory
import supervisor

definition = supervisor.load(os.environ, path=Path(sys.argv[1]), strict=True)
runtime = supervisor.start(definition, os.environ, platform="local", work_root=Path(sys.argv[2]))
event = json.loads(sys.stdin.read())
outcome = runtime.invoke(event, supervisor.InvocationContext.local(definition.config.name))
objects = {address: data.decode() for address, data in memory.STORES["lab"].objects.items()}
print(json.dumps({"status": outcome.status, "objects": objects}))
"""

SCRIPT = """\
set -eu
tr 'a-z' 'A-Z' < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/shout.txt"
"""


def _event(bucket: str, key: str) -> dict[str, object]:
    """OSCAR's delegated event naming the provider (``memory.lab``) of an S3-shaped record."""
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": "2026-11-28T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 5}},
    }
    return {"storage_provider": "memory.lab", "event": json.dumps({"Records": [record]})}


def test_an_invocation_runs_through_a_storage_type_added_in_one_module(tmp_path: Path) -> None:
    script = tmp_path / "shout.sh"
    script.write_text(SCRIPT)
    definition = tmp_path / "function.yaml"
    definition.write_text(
        yaml.safe_dump(
            {
                "name": "shout",
                "init_script": str(script),
                "input": [{"storage_provider": "memory.lab", "path": "photos/incoming"}],
                "output": [{"storage_provider": "memory.lab", "path": "results/done"}],
                "storage_providers": {
                    "memory": {"lab": {"objects": {"photos/incoming/note.txt": "hello"}}}
                },
            }
        )
    )
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SUPERVISOR_", "AWS_")) and name not in ("FDL", "FUNCTION_CONFIG")
    }

    done = subprocess.run(
        [sys.executable, "-c", _INVOKE, str(definition), str(tmp_path / "work")],
        input=json.dumps(_event("photos", "incoming/note.txt")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=environ,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "status": "succeeded",
        "objects": {"photos/incoming/note.txt": "hello", "results/done/shout.txt": "HELLO"},
    }


def test_a_type_registered_after_the_definition_models_is_refused() -> None:
    import supervisor.config  # noqa: F401  (derives the models, closing the registry)

    def build(ident: str, settings: Model, clients: storage.Clients) -> storage.StorageProvider:
        raise AssertionError("never built")

    late = storage.StorageType("late", Model, "Too late.", build)
    with pytest.raises(RuntimeError, match="register before importing it"):
        storage.register(late)
    assert "late" not in [kind.name for kind in storage.registered()]
