"""Who runs the script, and the switch that makes the supervisor's process unreadable."""

from __future__ import annotations

import json
import pwd
import subprocess
import sys

import pytest

from supervisor.config import load_config, parse_config
from supervisor.errors import ConfigError
from supervisor.hardening import NOBODY, ScriptUser, resolve_user
from supervisor.users import script_user


def _nobody() -> ScriptUser:
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return NOBODY
    return ScriptUser(entry.pw_uid, entry.pw_gid)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("1000", ScriptUser(1000, 1000)),
        ("1000:50", ScriptUser(1000, 50)),
        ("root", ScriptUser(0, 0)),
        ("root:0", ScriptUser(0, 0)),
    ],
)
def test_a_script_user_is_a_number_or_a_name(setting: str, expected: ScriptUser) -> None:
    assert resolve_user(setting) == expected


def test_nobody_is_the_hosts_or_65534() -> None:
    assert resolve_user("nobody") == _nobody()


@pytest.mark.parametrize("setting", ["no-such-user-here", "1000:no-such-group-here"])
def test_an_unknown_name_is_an_error_naming_the_key(setting: str) -> None:
    with pytest.raises(ConfigError, match=f"script_user: '{setting}'"):
        resolve_user(setting)


@pytest.mark.parametrize("setting", ["a b", "-1", "1000:", ":1000", "x;id"])
def test_a_malformed_script_user_fails_at_load(setting: str) -> None:
    with pytest.raises(ConfigError, match="script_user"):
        parse_config(json.dumps({"name": "f", "script_user": setting}))


def test_the_environment_overrides_the_definitions_script_user() -> None:
    config = load_config(
        {"FUNCTION_CONFIG": "name: f\nscript_user: root\n", "SUPERVISOR_SCRIPT_USER": "1000"}
    )
    assert config.script_user == "1000"


BATCH = {"AWS_BATCH_JOB_ID": "job-1"}


@pytest.mark.parametrize(
    ("setting", "platform", "environ", "euid", "expected"),
    [
        # As root in a Batch job or an OSCAR service: nobody unless told.
        (None, "batch", BATCH, 0, "nobody"),
        (None, "oscar", {}, 0, "nobody"),
        ("root", "batch", BATCH, 0, None),
        ("0", "oscar", {}, 0, None),
        ("1000:1000", "batch", BATCH, 0, ScriptUser(1000, 1000)),
        # A local Batch job, a local run, Lambda: the user that runs the supervisor.
        (None, "batch", {"SUPERVISOR_BATCH_JOB_ID": "local"}, 0, None),
        (None, "local", {}, 0, None),
        (None, "lambda-zip", {}, 0, None),
        ("1000", "local", {}, 0, ScriptUser(1000, 1000)),
        # Not root: no user can be changed.
        (None, "batch", BATCH, 1000, None),
        ("nobody", "oscar", {}, 1000, None),
        ("root", "batch", BATCH, 1000, None),
    ],
)
def test_who_runs_the_script(
    setting: str | None,
    platform: str,
    environ: dict[str, str],
    euid: int,
    expected: ScriptUser | str | None,
) -> None:
    config = parse_config(json.dumps({"name": "f", "script_user": setting}))
    want = _nobody() if expected == "nobody" else expected
    assert script_user(config, platform, environ, euid) == want  # type: ignore[arg-type]


def test_the_supervisor_is_dumpable_until_its_first_script_starts() -> None:
    code = (
        "from supervisor import hardening\n"
        "before = hardening.prctl(hardening.PR_GET_DUMPABLE, 0)\n"
        "hardening.protect_process()\n"
        "print(before, hardening.prctl(hardening.PR_GET_DUMPABLE, 0))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["1", "0"]


def test_importing_the_supervisor_loads_no_ctypes() -> None:
    code = (
        "import sys\n"
        "import supervisor.execution, supervisor.runtime, batch_entrypoint.job\n"
        "print('ctypes' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
