"""The error of ``layer publish``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from supervisor.publish.versions import Published

__all__ = ["PublishError"]


class PublishError(SupervisorError):
    """The layer could not be built or published; ``published`` lists what was, before."""

    def __init__(self, message: str, published: Sequence[Published] = ()) -> None:
        super().__init__(message)
        self.published = list(published)
