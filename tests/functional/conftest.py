"""Fixtures of the functional tests (the shared ones, moto and the events, are in tests/)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def mark_dir(tmp_path: Path) -> Path:
    """An empty folder where a test's script leaves marks (``touch "$MARK_DIR/ran"``)."""
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder
