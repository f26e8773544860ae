"""Hardening: what keeps the supervisor's secrets out of the reach of the script it runs.

The supervisor holds the role's credentials and the definition (storage keys) in its
environment and memory; the script is untrusted.  Two kernel mechanisms keep them apart:

- ``protect_process`` makes the supervisor's process non-dumpable (``prctl(PR_SET_DUMPABLE,
  0)``, as ssh-agent does): its ``/proc/PID/{environ,mem,maps,fd,...}`` become unreadable to
  other processes of the same user, and ptrace attaches are refused.  Done once, before the
  first script starts (and not at import: ctypes costs a Batch job's cold start).  A
  script's own process is dumpable again from its ``execve``.
- ``ScriptUser``: where the supervisor runs as root (a Batch or OSCAR container), the script
  runs as another user, so that no process of the supervisor's user (the job's ``sh -c``
  shell, the one-file binary's launcher) is readable to it.  ``resolve_user`` turns the
  definition's ``script_user`` (``nobody``, a user name, ``UID`` or ``UID:GID``) into ids.

``prctl`` is Linux's ``prctl(2)`` through ctypes, for any option that takes one argument.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from dataclasses import dataclass
from typing import Final

from supervisor.errors import ConfigError, ExecutionError

__all__ = [
    "NOBODY",
    "PR_GET_DUMPABLE",
    "PR_SET_DUMPABLE",
    "ScriptUser",
    "prctl",
    "protect_process",
    "resolve_user",
]

logger = logging.getLogger(__name__)

PR_GET_DUMPABLE: Final = 3
PR_SET_DUMPABLE: Final = 4

_lock = threading.Lock()
_protected = False


@dataclass(frozen=True)
class ScriptUser:
    """The user and group the script runs as, with no supplementary groups."""

    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


# The unprivileged user of most images, by number where the image does not name it.
NOBODY: Final = ScriptUser(65534, 65534)


def prctl(option: int, arg: int) -> int:
    """``prctl(option, arg)``: its result, or ``OSError`` with the kernel's errno (ENOSYS
    where the C library has no ``prctl``: not Linux)."""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError as exc:
        raise OSError(errno.ENOSYS, "prctl is not available on this system") from exc
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    result: int = function(option, arg, 0, 0, 0)
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}, {arg}): {os.strerror(code)}")
    return result


def protect_process() -> None:
    """Make this process non-dumpable, once: its memory, environment and open files are
    then unreadable to the script, even when it runs as the same user.

    Raise ``ExecutionError`` when the kernel refuses; where there is no ``prctl`` (not
    Linux: a developer's machine), log a warning and go on.
    """
    global _protected
    with _lock:
        if _protected:
            return
        try:
            prctl(PR_SET_DUMPABLE, 0)
        except OSError as exc:
            if exc.errno != errno.ENOSYS:
                raise ExecutionError(
                    f"cannot make the supervisor's process unreadable to its script: {exc}"
                ) from exc
            logger.warning(
                "this system has no prctl: the script can read the supervisor's process "
                "(its environment and memory) when it runs as the same user"
            )
        _protected = True


def resolve_user(setting: str) -> ScriptUser:
    """The ids of ``setting``: ``UID``, ``UID:GID``, ``NAME`` or ``NAME:GROUP`` (names from
    this host's user and group databases; a user's group is its primary group unless
    given).  ``nobody`` is 65534:65534 where the host does not name it.

    Raise ``ConfigError`` naming ``script_user`` and the value when a name is unknown.
    """
    user, _, group = setting.partition(":")
    if user.isdigit():
        uid, primary = int(user), None
    else:
        uid, primary = _user_ids(user, setting)
    if group:
        gid = int(group) if group.isdigit() else _group_id(group, setting)
    elif primary is not None:
        gid = primary
    else:
        gid = uid
    return ScriptUser(uid, gid)


def _user_ids(name: str, setting: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name == "nobody":
            return NOBODY.uid, NOBODY.gid
        raise ConfigError(
            f"script_user: {setting!r}: there is no user {name!r} on this host "
            "(give a number, UID or UID:GID)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _group_id(name: str, setting: str) -> int:
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise ConfigError(
            f"script_user: {setting!r}: there is no group {name!r} on this host "
            "(give a number, UID:GID)"
        ) from None
