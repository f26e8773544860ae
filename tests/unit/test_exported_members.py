"""The API for tools that embed the supervisor: exactly these names, each one usable, and
nothing heavy imported until a name is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import supervisor

EXPORTED = {
    "Backend",
    "ConfigError",
    "DeadlineError",
    "Definition",
    "DelegationError",
    "EventError",
    "ExecutionError",
    "ExecutionResult",
    "Executor",
    "FunctionConfig",
    "InvocationContext",
    "InvocationError",
    "JobRequest",
    "Outcome",
    "RecordOutcome",
    "ScriptRun",
    "StagingError",
    "StorageProvider",
    "Stores",
    "Supervisor",
    "SupervisorError",
    "UploadItem",
    "__version__",
    "load",
    "parse_config",
    "start",
}


def test_the_exported_names_are_pinned() -> None:
    assert set(supervisor.__all__) == EXPORTED
    assert sorted(supervisor.__all__) == supervisor.__all__
    assert set(dir(supervisor)) >= EXPORTED


def test_every_exported_name_resolves_to_what_its_module_defines() -> None:
    for name in supervisor.__all__:
        value = getattr(supervisor, name)
        assert value is not None, name
        if name != "__version__":
            assert getattr(value, "__module__", "").startswith("supervisor"), name


def test_errors_form_one_tree() -> None:
    for name in EXPORTED:
        if name.endswith("Error"):
            assert issubclass(getattr(supervisor, name), supervisor.SupervisorError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nothing_here"):
        supervisor.nothing_here  # type: ignore[attr-defined]  # noqa: B018


def test_import_supervisor_imports_nothing_heavy() -> None:
    """A cold start pays for the facade only when a name is used."""
    code = (
        "import sys, supervisor\n"
        "heavy = [m for m in ('pydantic', 'boto3', 'botocore', 'yaml', 'supervisor.runtime',"
        " 'supervisor.config', 'aws_lambda_powertools') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
