"""What runs for an event: the definition's script, or what a caller may choose of it."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from supervisor import events
from supervisor.config import Platform, parse_config
from supervisor.errors import EventError
from supervisor.run_choice import RunChoice, choose_run

OWN = base64.b64encode(b"echo own\n").decode()
CALLERS = base64.b64encode(b"cat /etc/passwd\n").decode()


@dataclass
class _Executor:
    runs_image: bool


def choose(
    event: dict[str, Any],
    *,
    platform: Platform = "lambda-zip",
    runs_image: bool = False,
    allow: bool = True,
    own: str | None = OWN,
) -> RunChoice:
    config = parse_config(f"name: fn\nallow_event_script: {str(allow).lower()}\n")
    return choose_run(
        events.parse(event),
        config,
        platform=platform,
        script=own,
        executor=_Executor(runs_image),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("event", "platform", "runs_image", "expected"),
    [
        ({}, "lambda-zip", False, RunChoice(OWN, None, ())),
        ({"script": CALLERS}, "lambda-zip", False, RunChoice(CALLERS, None, ())),
        ({"cmd_args": ["-v"]}, "lambda-zip", False, RunChoice(OWN, None, ("-v",))),
        ({"cmd_args": ["ls", "/"]}, "lambda-zip", True, RunChoice(OWN, ("ls", "/"), ())),
        # A caller's script replaces the definition's, and the arguments are its own.
        (
            {"script": CALLERS, "cmd_args": ["x"]},
            "lambda-zip",
            True,
            RunChoice(CALLERS, None, ("x",)),
        ),
        # A job never takes what runs from its event.
        ({"script": CALLERS}, "batch", False, RunChoice(OWN, None, ())),
        ({"script": CALLERS}, "oscar", False, RunChoice(OWN, None, ())),
        ({"cmd_args": ["ls"]}, "batch", True, RunChoice(OWN, None, ("ls",))),
    ],
)
def test_what_runs(
    event: dict[str, Any], platform: Platform, runs_image: bool, expected: RunChoice
) -> None:
    assert choose(event, platform=platform, runs_image=runs_image) == expected


@pytest.mark.parametrize(
    ("event", "runs_image", "what"),
    [
        ({"script": CALLERS}, False, "a script"),
        ({"cmd_args": ["sh", "-c", "id"]}, True, "the command line of the image"),
    ],
)
def test_a_caller_cannot_choose_what_the_definition_forbids(
    event: dict[str, Any], runs_image: bool, what: str
) -> None:
    with pytest.raises(EventError, match=f"function fn does not accept {what}"):
        choose(event, runs_image=runs_image, allow=False)


def test_arguments_for_a_script_need_no_permission() -> None:
    assert choose({"cmd_args": ["-v"]}, allow=False) == RunChoice(OWN, None, ("-v",))


def test_nothing_to_run_without_a_script() -> None:
    assert choose({}, own=None).empty
    assert not choose({"cmd_args": ["ls"]}, own=None, runs_image=True).empty
