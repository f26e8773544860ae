"""Why a run of the script did not succeed, for the runtime to decide what follows.

``diagnose`` gives the ``batch.delegate_on`` reasons a run counts as (``timeout``,
``resources``, ``failure``) and a sentence for a person.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.config import DelegateReason
    from supervisor.execution import ExecutionResult

__all__ = ["diagnose"]

_SIGKILL = int(signal.SIGKILL)


def diagnose(result: ExecutionResult, memory_mb: int) -> tuple[tuple[DelegateReason, ...], str]:
    """Why a run did not succeed: its ``delegate_on`` reasons and a sentence for a person.

    The watchdog kills only at the deadline (a timeout), so any other SIGKILL came from
    outside, most likely the kernel's out-of-memory killer: a lack of resources as well as
    a failure.  A shell reports a command of its own killed that way as exit code 128 + 9.
    """
    if result.timed_out:
        return ("timeout",), "the script ran past the deadline less the reserve"
    killed: tuple[DelegateReason, ...] = ("resources", "failure")
    memory = f" the function has {memory_mb} MB" if memory_mb > 0 else ""
    if result.killed_by_signal == _SIGKILL:
        return killed, f"the script was killed by SIGKILL (out of memory?{memory})"
    if result.exit_code == 128 + _SIGKILL:
        return killed, (
            f"the script exited with {result.exit_code}: a command it ran was killed by "
            f"SIGKILL (out of memory?{memory})"
        )
    return ("failure",), f"the script exited with {result.exit_code}"
