"""The project's packages are listed once (``supervisor.distribution``): pyproject.toml,
which cannot read it, and the Layer build, which reads it without importing it, agree."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

from supervisor import logs
from supervisor.distribution import PACKAGES

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _layer_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_build_lists", ROOT / "layer/build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_pyproject_packages_are_the_projects() -> None:
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == [f"{name}*" for name in PACKAGES]
    assert _pyproject()["tool"]["mypy"]["packages"] == list(PACKAGES)
    assert set(setuptools["package-data"]) <= set(PACKAGES)


def test_every_package_data_pattern_matches_a_file() -> None:
    for package, patterns in _pyproject()["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"{package}: {pattern}"


def test_the_layer_and_the_logs_use_the_one_list() -> None:
    assert _layer_build().project_packages() == PACKAGES
    assert logs.PACKAGE_LOGGERS == PACKAGES
    for name in PACKAGES:
        assert (ROOT / name / "__init__.py").is_file(), name


def test_the_layers_requirements_are_pyprojects_less_what_the_runtime_ships() -> None:
    build = _layer_build()
    dependencies = _pyproject()["project"]["dependencies"]

    requirements = build.layer_requirements()

    assert [d for d in dependencies if d not in requirements] == ["boto3>=1.34"]
    assert requirements == [d for d in dependencies if not d.startswith("boto3")]
