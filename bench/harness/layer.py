"""Ours' packages as a Lambda function finds them: the layer's tree, built once and cached.

In Lambda, ours' dependencies come from the layer (``/opt/python``) and the SDK (boto3,
botocore, s3transfer and what they need) from the runtime's own folder: a few dozen
distributions, where the development environment holds some 130.  Their number costs at a
cold start (pydantic, for one, reads the entry points of every distribution on
``sys.path`` for its plugins), so ours runs on the same tree as a layer:

- ``python/``: the dependencies of ``pyproject.toml`` as ``layer/build.py`` builds them for
  this interpreter's Python and this machine's architecture (binary wheels, byte-compiled in
  ``unchecked-hash`` mode), unzipped; the project's own packages are taken out of it, as the
  working tree comes first on the path;
- ``runtime/``: the SDK, at the versions of the bench's environment (the floor driver and
  faas-supervisor use the same), as the Lambda runtime provides it.

The tree is rebuilt when the project's version, its dependencies, the SDK's versions, the
Python or the architecture change (``built-for.json`` records them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.settings import BENCH, ROOT

LAYER_DIR = BENCH / ".layer-ours"
BUILDER = ROOT / "layer" / "build.py"
STAMP = "built-for.json"
# platform.machine() -> Lambda's name of the architecture.
LAMBDA_ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


def ours_path(given: str | None = None, folder: Path = LAYER_DIR) -> str:
    """Ours' ``PYTHONPATH``: ``given`` (checked), else the working tree, then the layer's
    ``python/`` and ``runtime/`` folders of ``folder``, built if missing or stale."""
    if given is not None:
        missing = [part for part in given.split(os.pathsep) if not Path(part).is_dir()]
        if missing:
            raise SystemExit(f"--ours-path {given}: no such folder: {', '.join(missing)}")
        return given
    tree = ensure_layer(folder)
    return os.pathsep.join(str(path) for path in (ROOT, tree / "python", tree / "runtime"))


def ensure_layer(folder: Path = LAYER_DIR) -> Path:
    """``folder`` holding the layer's tree for this project and interpreter; build it if
    it is missing or was built for something else."""
    wanted = _built_for()
    stamp = folder / STAMP
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return folder
    print(f"building ours' layer into {folder} (layer/build.py, about a minute)...", flush=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=folder.parent))
    try:
        _build_tree(partial, wanted)
        _check_tree(partial)
        (partial / STAMP).write_text(json.dumps(wanted, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def _built_for() -> dict[str, Any]:
    """What the tree depends on: a change to any of it means a rebuild."""
    builder = _builder()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    machine = platform.machine()
    if machine not in LAMBDA_ARCHITECTURES:
        raise SystemExit(f"ours' layer: Lambda has no architecture for this machine ({machine})")
    return {
        "version": builder.project_version(),
        "dependencies": project["dependencies"],
        "sdk": _sdk_versions(builder),
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "arch": LAMBDA_ARCHITECTURES[machine],
    }


def _sdk_versions(builder: ModuleType) -> dict[str, str]:
    """The versions in this environment of what the Lambda runtime provides."""
    versions: dict[str, str] = {}
    for name in builder.RUNTIME_PROVIDED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise SystemExit(
                f"ours' layer: {name} is not installed in {sys.prefix}; the SDK is taken at "
                "this environment's versions (./build.sh test installs them)"
            ) from None
    return versions


def _build_tree(tree: Path, wanted: dict[str, Any]) -> None:
    builder = _builder()
    target = builder.Target(wanted["python"], wanted["arch"])
    with tempfile.TemporaryDirectory(prefix="layer-zip-") as out:
        try:
            zip_path: Path = builder.build(target, Path(sys.executable), Path(out))
        except builder.BuildError as exc:
            raise SystemExit(
                f"ours' layer could not be built: {exc}\n(--ours-path PATH runs ours on "
                "another tree; --site on the development environment)"
            ) from None
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(tree)
    for package in builder.project_packages():
        shutil.rmtree(tree / "python" / package)
    pins = [f"{name}=={version}" for name, version in wanted["sdk"].items()]
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "--no-input", "--no-deps", "--target", str(tree / "runtime"), *pins],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"ours' layer: pip install {' '.join(pins)} failed:\n{done.stdout}{done.stderr}"
        )
    # Console scripts point at this machine's interpreter; nothing runs them.
    shutil.rmtree(tree / "runtime" / "bin", ignore_errors=True)


def _check_tree(tree: Path) -> None:
    """The handler module and the SDK import from the tree alone (``-S``: no site-packages)."""
    path = os.pathsep.join(str(p) for p in (ROOT, tree / "python", tree / "runtime"))
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import handlers.lambda_handler, boto3, pydantic, yaml"],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"ours' layer in {tree} does not import:\n{done.stderr[-2000:]}")


def _builder() -> ModuleType:
    """``layer/build.py``, loaded by its path (``layer/`` is no package)."""
    name = "serverless_supervisor_layer_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILDER)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load the layer builder {BUILDER}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it is being executed.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
