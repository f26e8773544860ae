"""The layer zips to publish: found in a folder, built by the clone's ``layer/build.py`` when
missing, and checked to be layers of the supervisor."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from supervisor.publish.errors import PublishError

__all__ = [
    "ARCHITECTURES",
    "BUILDER",
    "PYTHONS",
    "SOURCE_ROOT",
    "ZIP_FILE_LIMIT",
    "LayerZip",
    "Plan",
    "load_builder",
    "plan",
    "read_zip",
    "zip_name",
]

# Every Python that Lambda runs and the project supports, and Lambda's architectures.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
ARCHITECTURES = ("x86_64", "arm64")
# What PublishLayerVersion accepts inline (Content.ZipFile); larger layers go through S3.
ZIP_FILE_LIMIT = 50 * 1024 * 1024
# The clone's layer builder; a wheel does not hold it.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
BUILDER = SOURCE_ROOT / "layer" / "build.py"

# A pattern as text: ``python -m supervisor`` builds the command's parser at every start, so
# importing this module compiles nothing (re caches it when first used).
_VERSION = r"""(?m)^__version__\s*=\s*["']([^"']+)["']"""

_Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


class LayerZip(NamedTuple):
    """One built layer: the zip for a Python and an architecture, and what it holds."""

    python: str
    arch: str
    path: Path
    version: str

    @property
    def runtime(self) -> str:
        return f"python{self.python}"

    def layer_name(self, prefix: str) -> str:
        return f"{prefix}-python{self.python.replace('.', '')}-{self.arch}"


class Plan(NamedTuple):
    """What ``run`` publishes, and the Pythons it could not build, with the reason."""

    zips: list[LayerZip]
    skipped: dict[str, str]


def zip_name(python: str, arch: str) -> str:
    """The file name ``layer/build.py`` gives the zip of a target."""
    return f"serverless-supervisor-py{python}-{arch}.zip"


def read_zip(path: Path, python: str, arch: str) -> LayerZip:
    """The zip at ``path``, checked to be a layer of the supervisor; its version read from it."""
    try:
        with zipfile.ZipFile(path) as archive:
            source = archive.read("python/supervisor/__init__.py").decode("utf-8")
    except FileNotFoundError:
        raise PublishError(f"{path}: no such file") from None
    except zipfile.BadZipFile as exc:
        raise PublishError(f"{path} is not a zip file: {exc}") from exc
    except (KeyError, UnicodeDecodeError) as exc:
        raise PublishError(
            f"{path} is not a serverless-supervisor layer zip: it has no readable "
            "python/supervisor/__init__.py"
        ) from exc
    found = re.search(_VERSION, source)
    if found is None:
        raise PublishError(f"{path}: python/supervisor/__init__.py has no __version__")
    size = path.stat().st_size
    if size > ZIP_FILE_LIMIT:
        raise PublishError(
            f"{path} is {size} bytes, over the {ZIP_FILE_LIMIT} bytes that "
            "PublishLayerVersion accepts without S3"
        )
    return LayerZip(python=python, arch=arch, path=path, version=found.group(1))


def load_builder(path: Path = BUILDER) -> ModuleType | None:
    """``layer/build.py`` of the clone this package runs from, as a module; None from a wheel."""
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("serverless_supervisor_layer_build", path)
    if spec is None or spec.loader is None:
        raise PublishError(f"cannot load the layer builder {path}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def plan(
    folder: Path,
    pythons: Sequence[str],
    arches: Sequence[str],
    *,
    builder: ModuleType | None,
    required: bool,
    rebuild: bool,
    runner: _Runner | None = None,
) -> Plan:
    """The zips to publish: those in ``folder``, and those missing built there by ``builder``.

    ``rebuild`` builds every one, even those already there.  A Python whose zip can be
    neither found nor built is skipped with the reason, or, when ``required`` (it was asked
    for by name), is an error."""
    targets = [(python, arch) for python in pythons for arch in arches]
    missing: dict[str, list[str]] = {}
    for python, arch in targets:
        if rebuild or not (folder / zip_name(python, arch)).is_file():
            missing.setdefault(python, []).append(arch)
    if missing and builder is None and (required or len(missing) == len(pythons)):
        names = ", ".join(zip_name(python, arch) for python in missing for arch in missing[python])
        raise PublishError(
            f"{folder} has no {names}, and this serverless-supervisor was installed from a "
            "wheel, which cannot build them (layer/build.py is in the source tree only). "
            "Pass --zip-dir DIR with the zips built in a clone (./build.sh layer) or taken "
            "from a release"
        )
    interpreters, skipped = _interpreters(builder, missing, folder)
    if skipped and required:
        raise PublishError("; ".join(f"Python {python}: {why}" for python, why in skipped.items()))
    if len(skipped) == len(pythons):
        raise PublishError(
            "nothing to publish: " + "; ".join(f"Python {p}: {why}" for p, why in skipped.items())
        )
    for python, interpreter in interpreters.items():
        assert builder is not None
        _build(builder, python, interpreter, missing[python], folder, runner or _run_builder)
    return Plan(
        [
            read_zip(folder / zip_name(python, arch), python, arch)
            for python, arch in targets
            if python not in skipped
        ],
        skipped,
    )


def _interpreters(
    builder: ModuleType | None, missing: dict[str, list[str]], folder: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """The interpreter that builds each missing Python's zips, and why the others have none."""
    interpreters: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for python, arches in missing.items():
        found = builder.find_interpreter(python) if builder is not None else None
        if builder is None:
            skipped[python] = f"no {zip_name(python, arches[0])} in {folder}"
        elif found is None:
            skipped[python] = (
                f"no Python {python} on this machine (~/.pyenv/versions/{python}.* or "
                f"python{python} on PATH) to build its zip and check it: install one, or pass "
                "--zip-dir with a zip built where there is one"
            )
        else:
            interpreters[python] = Path(found)
    return interpreters, skipped


def _build(
    builder: ModuleType,
    python: str,
    interpreter: Path,
    arches: Sequence[str],
    out: Path,
    runner: _Runner,
) -> None:
    command = [sys.executable, str(builder.__file__), "--out", str(out)]
    command += ["--python", python, "--arch", *arches, "--interpreter", f"{python}={interpreter}"]
    print(f"building the Python {python} layer zips into {out}", file=sys.stderr)
    result = runner(command)
    # The builder's size lines go with the other progress messages, away from the table.
    sys.stderr.write(result.stdout)
    if result.returncode != 0:
        raise PublishError(f"layer/build.py failed for Python {python} (exit {result.returncode})")


def _run_builder(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
