"""The udocker executor: the user's script run with ``/bin/sh`` in the image's container.

``udocker run`` starts through ``ProcessExecutor.run_command`` in its own process group,
so the watchdog kills udocker, proot, the script and its children together.  The
script's variables never appear on a command line: they are written to a 0600 JSON file
in the invocation folder, which udocker's child process reads and deletes
(``supervisor.container.driver``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from supervisor import gpu
from supervisor.container.driver import Udocker
from supervisor.container.preparation import UdockerContainer
from supervisor.environment import DEFAULT_PATH, IMAGE_OWN_VARIABLES
from supervisor.errors import ExecutionError
from supervisor.execution import ExecutionResult, ProcessExecutor, ScriptRun
from supervisor.watchdog import Watchdog

__all__ = ["UdockerExecutor", "container_environment"]

logger = logging.getLogger(__name__)

_SHELL = "/bin/sh"


class UdockerExecutor:
    """Runs the script with ``/bin/sh`` inside a udocker container of ``image``.

    The image comes from ``image_file`` when given (``image`` then names it), else from a
    registry.  ``gpu`` says whether the host has NVIDIA GPUs to hand to the container.
    ``environ`` is the supervisor's environment, used to tell the host's own ``PATH``,
    ``HOME``... from variables the function set.
    """

    runs_image = True

    def __init__(
        self,
        image: str | None,
        *,
        udocker: Udocker,
        image_file: Path | None = None,
        execmode: str = "P1",
        gpu: Callable[[], bool] = lambda: False,
        environ: Mapping[str, str] | None = None,
        process: ProcessExecutor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.container = UdockerContainer(
            image, udocker=udocker, image_file=image_file, execmode=execmode, gpu=gpu, clock=clock
        )
        self._udocker = udocker
        self._environ = dict(environ or {})
        self._process = process or ProcessExecutor()

    @classmethod
    def for_host(
        cls,
        image: str | None,
        *,
        image_file: str | None,
        execmode: str,
        environ: Mapping[str, str],
        work_root: Path,
    ) -> UdockerExecutor:
        """The executor wired to this host: ``UDOCKER_DIR`` or ``WORK_ROOT/udocker``."""
        directory = Path(environ.get("UDOCKER_DIR", "").strip() or work_root / "udocker")
        return cls(
            image,
            udocker=Udocker(directory, environ),
            image_file=Path(image_file) if image_file else None,
            execmode=execmode,
            gpu=lambda: gpu.present(environ),
            environ=environ,
        )

    def ensure_container(self, watchdog: Watchdog) -> str:
        """The container's name, pulled, loaded or imported and set up now (within
        ``watchdog``'s time) unless that was done before (``UdockerContainer.ensure``)."""
        return self.container.ensure(watchdog)

    def run(self, run: ScriptRun, watchdog: Watchdog) -> ExecutionResult:
        name = self.ensure_container(watchdog)
        environment = container_environment(run.environment, self._environ)
        env_file = _write_environment(run.workdir, environment)
        try:
            command = self._udocker.command(
                [
                    "--quiet",
                    "run",
                    "--nobanner",
                    *(f"--volume={path}" for path in _bind_paths(run)),
                    f"--workdir={run.workdir}",
                    name,
                    *(
                        (_SHELL, str(run.script), *run.args)
                        if run.image_command is None
                        else run.image_command
                    ),
                ],
                env_file,
            )
            logger.info("script %s runs in udocker container %s", run.script, name)
            return self._process.run_command(run, watchdog, command, self._udocker.environment)
        finally:
            env_file.unlink(missing_ok=True)


def container_environment(
    environment: Mapping[str, str], environ: Mapping[str, str]
) -> dict[str, str]:
    """The script's variables as the container gets them.

    The host's own values of ``environment.IMAGE_OWN_VARIABLES`` (``PATH``, ``HOME``,
    ``LD_LIBRARY_PATH``, ``TMPDIR``) are left out: the image and udocker set their own.
    The same names set by the function stay.
    """
    host_values = {name: environ.get(name) for name in IMAGE_OWN_VARIABLES}
    host_values["PATH"] = environ.get("PATH", DEFAULT_PATH)
    return {
        name: value
        for name, value in environment.items()
        if name not in host_values or value != host_values[name]
    }


def _bind_paths(run: ScriptRun) -> list[str]:
    """The folders bound into the container, each at its own path: the invocation folder
    (script, input, output), and the input and output folders if they lie elsewhere."""
    paths = [run.workdir]
    for name in ("TMP_INPUT_DIR", "TMP_OUTPUT_DIR"):
        value = run.environment.get(name)
        if value and not any(Path(value).is_relative_to(path) for path in paths):
            paths.append(Path(value))
    return [str(path) for path in paths]


def _write_environment(folder: Path, environment: Mapping[str, str]) -> Path:
    """The variables in a JSON file only this user can read (mkstemp creates it 0600)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".environment-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as env_file:
            json.dump(dict(environment), env_file)
    except OSError as exc:
        raise ExecutionError(f"cannot write the script's environment in {folder}: {exc}") from exc
    return Path(name)
