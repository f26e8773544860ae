"""Bucket notifications on one machine: the bus of a local workflow.

A local storage folder announces each object it writes the way a bucket does, with the S3
``ObjectCreated`` event of the object, here one JSON file per object in a notifications
folder (``notify``).  A local workflow reads that folder and turns each file into an
invocation; a job of the local Batch backend learns the folder from
``SUPERVISOR_STORAGE_EVENTS`` (``STORAGE_EVENTS_VARIABLE``) and announces what it writes
there too.  ``announcer`` gives the callback that ``supervisor.storage.local.LocalStorage``
calls after each write.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from pathlib import Path

from supervisor.events import object_created

__all__ = ["STORAGE_EVENTS_VARIABLE", "announcer", "notify"]

# The variable that tells a job of the local Batch backend where to announce its objects.
STORAGE_EVENTS_VARIABLE = "SUPERVISOR_STORAGE_EVENTS"

_lock = threading.Lock()
_last = 0


def notify(folder: Path, bucket: str, key: str, size: int) -> Path:
    """Write the ``ObjectCreated`` event of ``bucket/key`` into ``folder``, atomically.

    File names sort in the order the objects were written (nanoseconds since the epoch,
    then a random part); a reader skips the temporary ``.tmp-*`` files.
    """
    global _last
    with _lock:
        # Strictly increasing in this process, even on a coarse clock or one set back.
        now = _last = max(time.time_ns(), _last + 1)
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(object_created(bucket, key, size, when=now / 1e9)).encode()
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        path = folder / f"{now:020d}-{uuid.uuid4().hex}.json"
        os.replace(temporary, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def announcer(folder: Path) -> Callable[[str, str, int], Path]:
    """The callback of a local storage that announces its objects in ``folder``."""
    return partial(notify, folder)
