"""udocker in a child process: its command line, its environment and one call of it.

udocker is driven through its Python API (``udocker.umain.UMain``) in a child
``python -c`` process, never through the ``udocker`` console script, whose first line
names the interpreter of the machine that built it.  The child's environment holds only
what udocker needs (the host's ``UDOCKER_*`` and ``PROOT_*`` settings; ``UDOCKER_TARBALL``
empty unless set, so that udocker never downloads its tools at run time).  The script's
variables never appear on a command line: ``run`` gets them from a file, which the child
reads, deletes and turns into ``--env`` options of its own, in-process argument list.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.environment import DEFAULT_PATH
from supervisor.errors import DeadlineError, ExecutionError
from supervisor.reaper import process_reaper
from supervisor.watchdog import kill_group

__all__ = ["Udocker", "UdockerResult"]

logger = logging.getLogger(__name__)

_OUTPUT_LINES = 6
_DRAIN_TIMEOUT = 2.0

# Runs in the child: argv[1] is the environment file ('' for none), the rest udocker's
# arguments.  The variables become --env options after the command name, in-process only.
_DRIVER = """\
import json, os, sys
from udocker.umain import UMain
from udocker.utils.fileutil import FileUtil
env_path, argv = sys.argv[1], ["udocker", *sys.argv[2:]]
if env_path:
    with open(env_path, encoding="utf-8") as env_file:
        variables = json.load(env_file)
    os.unlink(env_path)
    at = argv.index("run") + 1
    argv[at:at] = ["--env=%s=%s" % item for item in variables.items()]
try:
    status = UMain(argv).execute()
except SystemExit as exc:
    status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
finally:
    FileUtil().cleanup()
sys.exit(status)
"""


@dataclass(frozen=True)
class UdockerResult:
    """How one udocker command ended: its exit status and everything it printed."""

    returncode: int
    output: str

    def tail(self) -> str:
        """The last lines of the output, on one line, for an error message."""
        lines = [line.strip() for line in self.output.strip().splitlines() if line.strip()]
        return " | ".join(lines[-_OUTPUT_LINES:]) or "no output"


class Udocker:
    """udocker in a child process, with its repository in ``directory``.

    ``environ`` is the supervisor's environment, read for udocker's own settings only.
    """

    def __init__(
        self,
        directory: Path,
        environ: Mapping[str, str],
        *,
        python: str = sys.executable,
        grace: float = 0.5,
    ) -> None:
        self.directory = directory
        self._environ = dict(environ)
        self._python = python
        self._grace = grace
        self._environment: dict[str, str] | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The child's whole environment (udocker finds its package through PYTHONPATH)."""
        if self._environment is None:
            self._environment = self._build_environment()
        return self._environment

    def command(self, args: Sequence[str], env_file: Path | None = None) -> list[str]:
        """The command line of ``udocker ARGS``; ``env_file`` feeds ``run`` its variables.

        ``--allow-root``: a Batch or CI container may run as root, which udocker refuses
        by default; it changes nothing for another user.
        """
        return [self._python, "-c", _DRIVER, str(env_file or ""), "--allow-root", *args]

    def call(self, args: Sequence[str], timeout: float | None) -> UdockerResult:
        """Run ``udocker ARGS`` to its end, in its own process group, within ``timeout`` s.

        Raises ``DeadlineError`` (after killing the group) when it does not end in time,
        ``ExecutionError`` when it cannot be started.
        """
        environment = self.environment
        self.directory.mkdir(parents=True, exist_ok=True)
        reaper = process_reaper()
        watch = reaper.begin(f"udocker {args[0]}")
        try:
            process = subprocess.Popen(
                self.command(args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            reaper.end(watch)
            raise ExecutionError(f"cannot start udocker with {self._python}: {exc}") from exc
        watch.track(process.pid)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process.pid, self._grace, process=process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.communicate(timeout=_DRAIN_TIMEOUT)
            raise DeadlineError(
                f"udocker {args[0]} did not finish in the {timeout:.1f} s left before the "
                "deadline less the reserve"
            ) from None
        finally:
            kill_group(process.pid, self._grace, process=process)
            reaper.end(watch)
        result = UdockerResult(process.returncode, output.decode("utf-8", errors="replace"))
        logger.debug("udocker %s exited %d: %s", args[0], result.returncode, result.output)
        return result

    def has_container(self, name: str) -> bool:
        return (self.directory / "containers" / name).exists()

    @property
    def repositories(self) -> Path:
        """Where udocker keeps its images: ``UDOCKER_REPOS`` when the host sets it, as SCAR
        does for the images it loads into the function's zip, else ``repos`` in its folder."""
        preset = self._environ.get("UDOCKER_REPOS", "").strip()
        return Path(preset) if preset else self.directory / "repos"

    def has_image(self, image: str) -> bool:
        repository, _, tag = image.partition(":")
        return (self.repositories / repository / (tag or "latest")).is_dir()

    def is_ready(self, name: str) -> bool:
        """Whether container ``name`` was fully prepared (by this or an earlier process)."""
        return self._marker(name).is_file() and self.has_container(name)

    def mark_ready(self, name: str, facts: Mapping[str, Any]) -> None:
        marker = self._marker(name)
        marker.parent.mkdir(parents=True, exist_ok=True)
        partial = marker.with_suffix(".partial")
        partial.write_text(json.dumps(dict(facts)), encoding="utf-8")
        partial.replace(marker)

    def _marker(self, name: str) -> Path:
        return self.directory / "supervisor" / f"{name}.ready"

    def _build_environment(self) -> dict[str, str]:
        spec = importlib.util.find_spec("udocker")
        if spec is None or spec.origin is None:
            raise ExecutionError(
                "udocker is not installed: install the udocker package (PyPI) beside the "
                "supervisor to run container.image"
            )
        environ = self._environ
        environment: dict[str, str] = {
            name: environ[name] for name in ("PATH", "LANG", "LC_ALL", "TMPDIR") if name in environ
        }
        environment.setdefault("PATH", DEFAULT_PATH)
        environment.update(
            (name, value)
            for name, value in environ.items()
            if name.startswith(("UDOCKER_", "PROOT_"))
        )
        environment.setdefault("UDOCKER_TARBALL", "")
        environment["UDOCKER_DIR"] = str(self.directory)
        environment["HOME"] = str(self.directory)
        environment["PYTHONPATH"] = str(Path(spec.origin).parent.parent)
        return environment
