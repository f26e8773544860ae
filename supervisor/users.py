"""Who runs the script, and handing its work folder over to that user.

``script_user`` decides, from the definition's ``script_user``, the platform and this
process's effective user, whether the script runs as a user of its own (only root can run
it as another user).  ``check_reachable`` tells at start whether that user can reach the
work folder, and ``hand_over`` gives it the folders of one run.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.errors import ConfigError, ExecutionError
from supervisor.hardening import ScriptUser, resolve_user

if TYPE_CHECKING:
    from supervisor.config import FunctionConfig, Platform
    from supervisor.workspace import InvocationPaths

__all__ = ["check_reachable", "hand_over", "script_user"]

logger = logging.getLogger(__name__)


def script_user(
    config: FunctionConfig, platform: Platform, environ: Mapping[str, str], euid: int
) -> ScriptUser | None:
    """Who runs the script when not the supervisor's own user (``None``).

    Only root can run it as another user.  Then ``script_user`` says who (``root``: root
    itself); unset, ``nobody`` in a Batch job (``AWS_BATCH_JOB_ID``) and an OSCAR service,
    where other processes of the container hold the secrets as root.  A local run, and a
    job of the local Batch backend, keep the user that started them.
    """
    setting = config.script_user
    if euid != 0:
        if setting is not None:
            logger.info(
                "script_user %s has no effect: the supervisor runs as user %d, not root, "
                "and so does the script",
                setting,
                euid,
            )
        return None
    if setting is None:
        if platform == "oscar" or (platform == "batch" and environ.get("AWS_BATCH_JOB_ID")):
            setting = "nobody"
        else:
            return None
    if setting == "root":
        return None
    user = resolve_user(setting)
    if user.uid == 0:
        return None
    logger.info("Scripts run as user %s (script_user %s)", user, setting)
    return user


def check_reachable(folder: Path, user: ScriptUser) -> None:
    """Raise ``ConfigError`` unless ``user`` may enter ``folder`` and every folder above it:
    the script's folders are made in it, and the script opens them by their whole path."""
    for path in (folder.resolve(), *folder.resolve().parents):
        mode = path.stat()
        if mode.st_uid == user.uid:
            allowed = mode.st_mode & stat.S_IXUSR
        elif mode.st_gid == user.gid:
            allowed = mode.st_mode & stat.S_IXGRP
        else:
            allowed = mode.st_mode & stat.S_IXOTH
        if not allowed:
            raise ConfigError(
                f"the script runs as user {user} (script_user), which cannot enter {path} "
                f"(mode {stat.S_IMODE(mode.st_mode):04o}) to reach the work folder {folder}: "
                "set SUPERVISOR_WORK_DIR to a folder it can reach, or script_user to root"
            )


def hand_over(paths: InvocationPaths, user: ScriptUser) -> None:
    """Let ``user`` run the script in ``paths.work``: enter it (not list it), read the script
    and its event (``EVENT_FILE``), and own its input, output, TMPDIR and HOME folders with
    all that is in them (the staged input).

    The rest of the work folder (the script's log) stays the supervisor's; links are not
    followed.
    """
    work = paths.work
    try:
        work.chmod(0o711)
        for readable in (paths.script, paths.event_file):
            if readable.exists():
                readable.chmod(0o644)
        for folder in (paths.input_dir, paths.output_dir, paths.scratch, paths.home):
            os.lchown(folder, user.uid, user.gid)
            for root, dirs, files in os.walk(folder):
                for name in (*dirs, *files):
                    os.lchown(os.path.join(root, name), user.uid, user.gid)
    except OSError as exc:
        raise ExecutionError(
            f"cannot give the work folder {work} to the script's user {user}: {exc}"
        ) from exc
