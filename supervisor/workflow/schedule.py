"""The uploads of a workflow run: files written into a bucket folder at given instants, as
the paper's experiment sent its videos."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Upload", "schedule_uploads"]


@dataclass(frozen=True)
class Upload:
    """A local ``file`` to write as ``bucket/key`` ``at`` seconds after the run starts."""

    file: Path
    bucket: str
    key: str
    at: float = 0.0


def schedule_uploads(
    schedule: str,
    time_scale: float,
    files: Sequence[Path],
    target: str,
    *,
    repeat: bool = True,
) -> list[Upload]:
    """The uploads of ``schedule`` (``AT:COUNT,...``: COUNT files AT seconds, divided by
    ``time_scale``) into ``target`` (``bucket/folder``), taking ``files`` in turn; a file
    sent more than once gets a numbered name.  ``repeat=False`` sends every file once, at
    the first instant of the schedule.  ``ValueError`` says what is wrong."""
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise ValueError(f"the time scale must be a number above 0, got {time_scale:g}")
    if not files:
        raise ValueError("no file to upload")
    bucket, _, folder = target.strip("/").partition("/")
    if not bucket.strip():
        raise ValueError(f"expected BUCKET/PATH to upload to, got {target!r}")
    instants: list[float] = []
    for part in schedule.split(","):
        when, _, count = part.strip().partition(":")
        try:
            seconds, number = float(when), int(count or "1")
        except ValueError:
            raise ValueError(f"schedule: expected AT:COUNT, got {part.strip()!r}") from None
        if not (math.isfinite(seconds) and seconds >= 0) or number < 1:
            raise ValueError(f"schedule: {part.strip()!r} needs 0 <= AT < inf and COUNT >= 1")
        instants += [seconds / time_scale] * number
    instants.sort()
    if not repeat:
        instants = [instants[0]] * len(files)
    # Numbered when a name would come twice: a file sent again, or two files of one name.
    numbered = len(instants) > len({file.name for file in files})
    uploads = []
    for index, at in enumerate(instants):
        file = files[index % len(files)]
        name = f"{file.stem}-{index + 1:02d}{file.suffix}" if numbered else file.name
        uploads.append(Upload(file, bucket, "/".join(p for p in (folder, name) if p), at))
    return uploads
