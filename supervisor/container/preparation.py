"""The container: the one udocker container made from ``container.image``, and making it.

The image is pulled from a registry, loaded or imported from a local tarball
(``container.image_file``), or found in udocker's repository when a deployment tool
loaded it there.  The container made from it gets its execution mode
(``udocker setup --execmode``) and, when the host has a GPU, the NVIDIA libraries
(``udocker setup --nvidia``).

The container is made once per execution environment under ``UDOCKER_DIR`` and reused by
the warm invocations, and by a later process of the same environment: a marker file says
that it was made to the end.  Making it counts against the invocation's deadline: each
step runs with the time left before the watchdog's kill instant (``Watchdog.kill``) as
its timeout, and ``DeadlineError`` is raised when it cannot finish in time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from supervisor.container.driver import Udocker, UdockerResult
from supervisor.container.images import image_kind, saved_image_name
from supervisor.errors import DeadlineError, ExecutionError
from supervisor.watchdog import Watchdog

__all__ = ["UdockerContainer"]

logger = logging.getLogger(__name__)


class UdockerContainer:
    """The container of ``image`` in ``udocker``'s folder, made the first time it is needed.

    The image comes from ``image_file`` when given (``image`` then names it), else from a
    registry.  ``gpu`` says whether the host has NVIDIA GPUs to hand to the container.
    """

    def __init__(
        self,
        image: str | None,
        *,
        udocker: Udocker,
        image_file: Path | None = None,
        execmode: str = "P1",
        gpu: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not image and image_file is None:
            raise ValueError("a udocker container needs an image or an image file")
        self.image = image
        self.image_file = image_file
        self.execmode = execmode
        self._udocker = udocker
        self._gpu = gpu
        self._clock = clock
        self._name: str | None = None
        self._ready = False
        self._preloaded: bool | None = None

    @property
    def source(self) -> str:
        """The image as a person named it, for messages."""
        if self.image_file is None or self.preloaded:
            return f"image {self.image}"
        return f"image file {self.image_file}"

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

    def name(self) -> str:
        """A name that changes with the image, the image file's contents and the mode."""
        if self._name is None:
            facts: dict[str, Any] = {"image": self.image, "execmode": self.execmode}
            if self.preloaded:
                facts.update(repositories=str(self._udocker.repositories))
            elif self.image_file is not None:
                facts.update(self._image_file_facts(self.image_file))
            digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()
            self._name = f"supervisor-{digest[:16]}"
        return self._name

    def ensure(self, watchdog: Watchdog) -> str:
        """The name of the container, made now (within ``watchdog``'s time) unless it was
        made before, by this process or an earlier one."""
        name = self.name()
        if self._ready:
            return name
        if self._udocker.is_ready(name):
            logger.info("udocker container %s of %s reused", name, self.source)
            self._ready = True
            return name
        started = self._clock()
        if self._udocker.has_container(name):
            self._call(["rm", "-f", name], watchdog, check=False)
        self._create(name, watchdog)
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

    def _create(self, name: str, watchdog: Watchdog) -> None:
        """Container ``name`` made from the image, wherever the image comes from."""
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

    def _setup_nvidia(self, name: str, watchdog: Watchdog) -> None:
        # `udocker setup --nvidia` exits 0 even when it copied nothing: ask for the mode after.
        done = self._call(["setup", "--nvidia", "--force", name], watchdog)
        mode = self._call(["setup", name], watchdog)
        if "nvidiamode: True" not in mode.output:
            raise ExecutionError(
                f"the host has NVIDIA GPUs but udocker could not give their libraries to "
                f"container {name} of {self.source}: {done.tail()}"
            )

    def _call(self, args: list[str], watchdog: Watchdog, *, check: bool = True) -> UdockerResult:
        timeout = watchdog.kill.remaining()
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

    def _image_file_facts(self, image_file: Path) -> dict[str, Any]:
        try:
            stat = image_file.stat()
        except OSError as exc:
            raise ExecutionError(
                f"cannot prepare a udocker container of {self.image or 'the image'}: "
                f"container.image_file {image_file}: {exc.strerror}, and "
                f"udocker's repository {self._udocker.repositories} has no image "
                f"{self.image or '(container.image is not set)'}"
            ) from exc
        return {"file": str(image_file), "size": stat.st_size, "mtime": stat.st_mtime_ns}
