"""What the distribution is made of: its top-level packages.

The one list of them: the logging set-up configures their loggers, and the Layer build
(``layer/build.py``, which reads this file without importing it) copies them into the zip.
pyproject.toml cannot read it; ``tests/unit/test_distribution.py`` keeps its lists equal.
"""

from __future__ import annotations

__all__ = ["PACKAGES"]

PACKAGES = ("supervisor", "handlers", "batch_entrypoint", "faassupervisor")
