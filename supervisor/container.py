"""Containers: the user's script run inside ``container.image`` with udocker.

Owns what udocker does for the Lambda zip runtime: the image (pulled from a registry,
loaded or imported from a local tarball, ``container.image_file``, or found in udocker's
repository when a deployment tool loaded it there), the one container made from it, its
execution mode (``udocker setup --execmode``), the NVIDIA libraries
(``udocker setup --nvidia`` when the host has a GPU), and the ``udocker run`` command
that runs the script in it.

The container is prepared once per execution environment under ``UDOCKER_DIR`` (default:
``udocker`` in the work folder) and reused by the warm invocations, and by a later process
of the same environment: a marker file says that its preparation finished.  Preparation
counts against the invocation's deadline: each step runs with the time left before the
watchdog's kill instant (``Watchdog.kill``) as its timeout, and ``DeadlineError`` is raised
when it cannot finish in time.

udocker is driven through its Python API (``udocker.umain.UMain``) in a child
``python -c`` process, never through the ``udocker`` console script, whose first line
names the interpreter of the machine that built it.  The child's environment holds only
what udocker needs (the host's ``UDOCKER_*`` and ``PROOT_*`` settings; ``UDOCKER_TARBALL``
empty unless set, so that udocker never downloads its tools at run time).  The script's
variables never appear on a command line: they are written to a 0600 JSON file in the
invocation folder, which the child reads, deletes and turns into ``--env`` options of its
own, in-process argument list.  ``udocker run`` starts through
``ProcessExecutor.run_command`` in its own process group, so the watchdog kills udocker,
proot, the script and its children together.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from supervisor import gpu
from supervisor.environment import DEFAULT_PATH, IMAGE_OWN_VARIABLES
from supervisor.errors import DeadlineError, ExecutionError
from supervisor.execution import ExecutionResult, ProcessExecutor, ScriptRun
from supervisor.reaper import process_reaper
from supervisor.watchdog import Watchdog, kill_group

__all__ = [
    "ImageKind",
    "Udocker",
    "UdockerExecutor",
    "UdockerResult",
    "container_environment",
    "image_kind",
    "saved_image_name",
]

logger = logging.getLogger(__name__)

ImageKind = Literal["docker-save", "rootfs"]

# Settings of the host that mean nothing inside the image, which brings its own.
# Top-level members of a `docker save` (or OCI) archive; a root file system has none.
_SAVED_FILES = frozenset({"manifest.json", "repositories", "oci-layout", "index.json"})
_SAVED_LAYER = re.compile(r"[0-9a-f]{64}(\.json)?$")
_ROOTFS_DIRS = frozenset(
    {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "media", "mnt", "opt"}
    | {"proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"}
)
_SHELL = "/bin/sh"
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

    ``host`` is the supervisor's environment, read for udocker's own settings only.
    """

    def __init__(
        self,
        directory: Path,
        host: Mapping[str, str],
        *,
        python: str = sys.executable,
        grace: float = 0.5,
    ) -> None:
        self.directory = directory
        self._host = dict(host)
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
        preset = self._host.get("UDOCKER_REPOS", "").strip()
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
        host = self._host
        environment: dict[str, str] = {
            name: host[name] for name in ("PATH", "LANG", "LC_ALL", "TMPDIR") if name in host
        }
        environment.setdefault("PATH", DEFAULT_PATH)
        environment.update(
            (name, value) for name, value in host.items() if name.startswith(("UDOCKER_", "PROOT_"))
        )
        environment.setdefault("UDOCKER_TARBALL", "")
        environment["UDOCKER_DIR"] = str(self.directory)
        environment["HOME"] = str(self.directory)
        environment["PYTHONPATH"] = str(Path(spec.origin).parent.parent)
        return environment


class UdockerExecutor:
    """Runs the script with ``/bin/sh`` inside a udocker container of ``image``.

    The image comes from ``image_file`` when given (``image`` then names it), else from a
    registry.  ``gpu`` says whether the host has NVIDIA GPUs to hand to the container.
    ``host`` is the supervisor's environment, used to tell the host's own ``PATH``,
    ``HOME``... from variables the function set.
    """

    def __init__(
        self,
        image: str | None,
        *,
        udocker: Udocker,
        image_file: Path | None = None,
        execmode: str = "P1",
        gpu: Callable[[], bool] = lambda: False,
        host: Mapping[str, str] | None = None,
        process: ProcessExecutor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not image and image_file is None:
            raise ValueError("a udocker executor needs an image or an image file")
        self.image = image
        self.image_file = image_file
        self.execmode = execmode
        self._udocker = udocker
        self._gpu = gpu
        self._host = dict(host or {})
        self._process = process or ProcessExecutor()
        self._clock = clock
        self._name: str | None = None
        self._ready = False
        self._preloaded: bool | None = None

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
            host=environ,
        )

    @property
    def source(self) -> str:
        """The image as a person named it, for messages."""
        if self.image_file is None or self.preloaded:
            return f"image {self.image}"
        return f"image file {self.image_file}"

    runs_image = True

    @property
    def preloaded(self) -> bool:
        """Whether ``image_file`` is not on this host but ``image`` is in udocker's repository.

        SCAR loads ``container.image_file`` into the function's zip (``/var/task/udocker``,
        with ``UDOCKER_REPOS`` pointing there) and leaves the deploying machine's path in the
        definition: the image is then used from the repository, never loaded again.
        """
        if self._preloaded is None:
            self._preloaded = bool(
                self.image_file is not None
                and self.image
                and not self.image_file.exists()
                and self._udocker.has_image(self.image)
            )
        return self._preloaded

    def run(self, run: ScriptRun, watchdog: Watchdog) -> ExecutionResult:
        name = self.prepare(watchdog)
        environment = container_environment(run.environment, self._host)
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

    def prepare(self, watchdog: Watchdog) -> str:
        """The name of the container, made ready now unless it already is."""
        name = self._container_name()
        if self._ready:
            return name
        if self._udocker.is_ready(name):
            logger.info("udocker container %s of %s reused", name, self.source)
            self._ready = True
            return name
        started = self._clock()
        if self._udocker.has_container(name):
            self._call(["rm", "-f", name], watchdog, check=False)
        if self.preloaded:
            image = str(self.image)
            logger.info(
                "udocker: image %s is in the repository %s (container.image_file %s is not "
                "on this host)",
                image,
                self._udocker.repositories,
                self.image_file,
            )
            self._call(["create", f"--name={name}", image], watchdog)
        elif self.image_file is None:
            image = str(self.image)
            logger.info("udocker: pulling image %s", image)
            self._call(["pull", image], watchdog)
            self._call(["create", f"--name={name}", image], watchdog)
        elif image_kind(self.image_file) == "docker-save":
            image = self.image or saved_image_name(self.image_file)
            if self._udocker.has_image(image):
                self._call(["rmi", "-f", image], watchdog, check=False)
            logger.info("udocker: loading image %s from %s", image, self.image_file)
            self._call(["load", f"--input={self.image_file}"], watchdog)
            self._call(["create", f"--name={name}", image], watchdog)
        else:
            logger.info("udocker: importing the file system in %s", self.image_file)
            names = [self.image] if self.image else []
            self._call(
                ["import", "--tocontainer", f"--name={name}", str(self.image_file), *names],
                watchdog,
            )
        self._call(["setup", f"--execmode={self.execmode}", name], watchdog)
        nvidia = self._gpu()
        if nvidia:
            self._setup_nvidia(name, watchdog)
        self._udocker.mark_ready(
            name, {"source": self.source, "execmode": self.execmode, "nvidia": nvidia}
        )
        self._ready = True
        logger.info(
            "udocker container %s of %s ready in %.2f s (execmode %s, NVIDIA %s)",
            name,
            self.source,
            self._clock() - started,
            self.execmode,
            "yes" if nvidia else "no",
        )
        return name

    def _setup_nvidia(self, name: str, watchdog: Watchdog) -> None:
        # `udocker setup --nvidia` exits 0 even when it copied nothing: ask for the mode after.
        done = self._call(["setup", "--nvidia", "--force", name], watchdog)
        mode = self._call(["setup", name], watchdog)
        if "nvidiamode: True" not in mode.output:
            raise ExecutionError(
                f"the host has NVIDIA GPUs but udocker could not give their libraries to "
                f"container {name} of {self.source}: {done.tail()}"
            )

    def _call(
        self, args: list[str], watchdog: Watchdog | None = None, *, check: bool = True
    ) -> UdockerResult:
        timeout = None if watchdog is None else watchdog.kill.remaining()
        if timeout is not None and timeout <= 0:
            raise DeadlineError(
                f"no time left before the deadline less the reserve to run udocker {args[0]} "
                f"for {self.source}"
            )
        result = self._udocker.call(args, timeout)
        if check and result.returncode != 0:
            raise ExecutionError(
                f"udocker {args[0]} failed for {self.source} (exit {result.returncode}): "
                f"{result.tail()}"
            )
        return result

    def _container_name(self) -> str:
        """A name that changes with the image, the image file's contents and the mode."""
        if self._name is None:
            facts: dict[str, Any] = {"image": self.image, "execmode": self.execmode}
            if self.preloaded:
                facts.update(repositories=str(self._udocker.repositories))
            elif self.image_file is not None:
                try:
                    stat = self.image_file.stat()
                except OSError as exc:
                    raise ExecutionError(
                        f"cannot prepare a udocker container of {self.image or 'the image'}: "
                        f"container.image_file {self.image_file}: {exc.strerror}, and "
                        f"udocker's repository {self._udocker.repositories} has no image "
                        f"{self.image or '(container.image is not set)'}"
                    ) from exc
                facts.update(file=str(self.image_file), size=stat.st_size, mtime=stat.st_mtime_ns)
            digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
            self._name = f"supervisor-{digest[:16]}"
        return self._name


def image_kind(path: Path) -> ImageKind:
    """Whether ``path`` holds an image saved by ``docker save`` (for ``udocker load``) or a
    root file system (for ``udocker import``), told by the first member that shows it."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = _member_parts(member)
                if not parts:
                    continue
                top = parts[0]
                if (len(parts) == 1 and top in _SAVED_FILES) or top == "blobs":
                    return "docker-save"
                if _SAVED_LAYER.match(top):
                    return "docker-save"
                if top in _ROOTFS_DIRS:
                    return "rootfs"
    except (OSError, tarfile.TarError) as exc:
        raise ExecutionError(
            f"container.image_file {path}: not a readable tar archive: {exc}"
        ) from exc
    return "rootfs"


def saved_image_name(path: Path) -> str:
    """The first ``repository:tag`` that a ``docker save`` archive names."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = _member_parts(member)
                if parts not in (["manifest.json"], ["repositories"]):
                    continue
                content = archive.extractfile(member)
                if content is None:
                    continue
                data = json.load(content)
                if parts == ["manifest.json"]:
                    tags = [tag for item in data for tag in item.get("RepoTags") or ()]
                else:
                    tags = [f"{repo}:{tag}" for repo, by_tag in data.items() for tag in by_tag]
                if tags:
                    return str(tags[0])
    except (OSError, tarfile.TarError, ValueError, AttributeError, TypeError) as exc:
        raise ExecutionError(
            f"container.image_file {path}: cannot read the image's name: {exc}"
        ) from exc
    raise ExecutionError(
        f"container.image_file {path} names no image: set container.image to the "
        "repository:tag to run"
    )


def container_environment(
    environment: Mapping[str, str], host: Mapping[str, str]
) -> dict[str, str]:
    """The script's variables as the container gets them.

    The host's own values of ``environment.IMAGE_OWN_VARIABLES`` (``PATH``, ``HOME``,
    ``LD_LIBRARY_PATH``, ``TMPDIR``) are left out: the image and udocker set their own.
    The same names set by the function stay.
    """
    host_values = {name: host.get(name) for name in IMAGE_OWN_VARIABLES}
    host_values["PATH"] = host.get("PATH", DEFAULT_PATH)
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


def _member_parts(member: tarfile.TarInfo) -> list[str]:
    return [part for part in member.name.split("/") if part not in ("", ".")]
