"""``bench/harness/layer.py``: ours' layer tree is reused while it matches, rebuilt when not.

The build itself (pip, PyPI) runs in ``tests/e2e/test_bench.py``; here it is replaced by one
that writes a marker, so that what is checked is the cache: when it builds, what it keeps.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def layer() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        import harness.layer

        yield harness.layer
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture
def builds(layer: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Each tree that ``ensure_layer`` builds, in order; a build writes a marker file."""
    built: list[Path] = []

    def build_tree(tree: Path, wanted: dict[str, Any]) -> None:
        for folder in ("python", "runtime"):
            (tree / folder).mkdir()
        (tree / "python" / "marker").write_text(str(len(built)))
        built.append(tree)

    monkeypatch.setattr(layer, "_build_tree", build_tree)
    monkeypatch.setattr(layer, "_check_tree", lambda tree: None)
    return built


def test_a_missing_tree_is_built_and_stamped(
    layer: ModuleType, builds: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / ".layer-ours"
    assert layer.ensure_layer(folder) == folder
    assert len(builds) == 1
    assert (folder / "python" / "marker").read_text() == "0"
    stamp = json.loads((folder / "built-for.json").read_text())
    assert stamp["sdk"]["botocore"] == __import__("botocore").__version__
    assert stamp["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert sorted(path.name for path in tmp_path.iterdir()) == [".layer-ours"]  # no scratch


def test_a_matching_tree_is_reused(layer: ModuleType, builds: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / ".layer-ours"
    layer.ensure_layer(folder)
    layer.ensure_layer(folder)
    assert len(builds) == 1


def test_a_tree_built_for_another_version_is_rebuilt(
    layer: ModuleType, builds: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / ".layer-ours"
    layer.ensure_layer(folder)
    stamp = folder / "built-for.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "version": "0.0.0"}))
    (folder / "python" / "stale.py").write_text("")
    layer.ensure_layer(folder)
    assert len(builds) == 2
    assert (folder / "python" / "marker").read_text() == "1"
    assert not (folder / "python" / "stale.py").exists()


def test_the_path_is_the_working_tree_then_the_layer_then_the_sdk(
    layer: ModuleType, builds: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / ".layer-ours"
    path = layer.ours_path(folder=folder).split(os.pathsep)
    assert path == [str(BENCH.parent), str(folder / "python"), str(folder / "runtime")]


def test_a_given_path_is_used_as_it_is(layer: ModuleType, tmp_path: Path) -> None:
    given = os.pathsep.join([str(tmp_path), str(BENCH)])
    assert layer.ours_path(given) == given


def test_a_given_path_with_a_missing_folder_is_refused(layer: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no-such-folder"):
        layer.ours_path(os.pathsep.join([str(tmp_path), str(tmp_path / "no-such-folder")]))
