"""Containers: the user's script run inside ``container.image`` with udocker.

Owns what udocker does for the Lambda zip runtime, in four parts:

- ``images``: which tarball ``container.image_file`` is (``image_kind``), and the name a
  saved image gives itself (``saved_image_name``);
- ``driver``: udocker in a child process (``Udocker``), with an environment of its own;
- ``preparation``: the one container made from the image (``UdockerContainer``), made the
  first time a script needs it, against the invocation's deadline, and reused after;
- ``executor``: ``UdockerExecutor``, which runs the script in that container.
"""

from __future__ import annotations

from supervisor.container.driver import Udocker, UdockerResult
from supervisor.container.executor import UdockerExecutor, container_environment
from supervisor.container.images import ImageKind, image_kind, saved_image_name
from supervisor.container.preparation import UdockerContainer

__all__ = [
    "ImageKind",
    "Udocker",
    "UdockerContainer",
    "UdockerExecutor",
    "UdockerResult",
    "container_environment",
    "image_kind",
    "saved_image_name",
]
