"""What runs for the records of an event: the definition's script, or what the caller chose.

A direct invocation may carry a ``script`` (base64) and ``cmd_args``.  Where the definition
allows it (``allow_event_script``), the caller's script replaces the definition's, and
``cmd_args`` are the script's arguments, or the command line of the container image when
the function runs its script in an image here.  A job (Batch, OSCAR) never takes what runs
from its event: the supervisor that handed the event on passed the caller's script as
``SCRIPT`` when it was allowed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor.errors import EventError

if TYPE_CHECKING:
    from supervisor.config import FunctionConfig, Platform
    from supervisor.events import ParsedEvent
    from supervisor.execution import Executor

__all__ = ["JOB_PLATFORMS", "RunChoice", "choose_run"]

logger = logging.getLogger(__name__)

# Where the supervisor runs a job handed to it, never deciding what runs from the event.
JOB_PLATFORMS = ("batch", "oscar")


@dataclass(frozen=True)
class RunChoice:
    """What runs for each record: the script (base64) and its arguments, or the image with
    a command line of the caller's."""

    script: str | None
    image_command: tuple[str, ...] | None
    args: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Whether there is nothing to run: no script, and no command line for an image."""
        return self.script is None and self.image_command is None


def choose_run(
    parsed: ParsedEvent,
    config: FunctionConfig,
    *,
    platform: Platform,
    script: str | None,
    executor: Executor,
) -> RunChoice:
    """What runs for ``parsed``, given the function's own ``script`` (base64) and the
    ``executor`` that runs it (``cmd_args`` are an image's command line when it runs one).

    Raises ``EventError`` when the event chooses what the definition does not let it.
    """
    chosen_script = _script_for(parsed, config, platform, script)
    image_command = _image_command_for(parsed, config, platform, executor)
    args = () if image_command else parsed.cmd_args or ()
    return RunChoice(chosen_script, image_command, args)


def _script_for(
    parsed: ParsedEvent, config: FunctionConfig, platform: Platform, script: str | None
) -> str | None:
    """The caller's script (the top level of a direct invocation) where the definition
    allows it, else the job's ``SCRIPT`` or the definition's."""
    if parsed.script is None:
        return script
    if platform in JOB_PLATFORMS:
        logger.warning("The event carries a script: ignored, a job runs SCRIPT or the definition's")
        return script
    _check_caller_may_choose(config, "a script")
    return parsed.script


def _image_command_for(
    parsed: ParsedEvent, config: FunctionConfig, platform: Platform, executor: Executor
) -> tuple[str, ...] | None:
    """``cmd_args`` run the container image with that command line when the function
    runs its script in an image here (a script in the event wins, as it replaces the
    definition's); elsewhere they are the script's arguments."""
    if parsed.cmd_args is None or parsed.script is not None:
        return None
    if not executor.runs_image or platform in JOB_PLATFORMS:
        return None
    _check_caller_may_choose(config, "the command line of the image (cmd_args)")
    return parsed.cmd_args


def _check_caller_may_choose(config: FunctionConfig, what: str) -> None:
    if not config.allow_event_script:
        raise EventError(
            f"function {config.name} does not accept {what} in the event "
            "(allow_event_script is false in its definition)"
        )
