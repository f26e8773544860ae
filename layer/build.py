"""Build the AWS Lambda Layer zips of serverless-supervisor, one per Python and architecture.

Each zip holds ``python/``, which Lambda extracts to ``/opt/python`` and puts on
``sys.path``: the packages ``supervisor``, ``handlers`` and ``batch_entrypoint``,
``faassupervisor`` (the entry that functions deployed by SCAR call), the project's own
``serverless_supervisor-VERSION.dist-info`` (its version, for ``importlib.metadata``, and
its licence, ``licenses/LICENSE``), and the runtime dependencies of ``pyproject.toml``
(``layer_requirements``) as pip installs them for the target (``manylinux2014`` binary
wheels for the target CPython and architecture, such as pydantic-core's).  The list of the
project's packages is ``supervisor/distribution.py``'s, read without importing it.

boto3 comes from the Lambda runtime, which ships boto3, botocore, s3transfer and their
dependencies (``RUNTIME_PROVIDED``): pip pulls them in (watchtower requires boto3) and the
build removes them again.  botocore alone is some 30 MB unzipped, and the runtime's copy is
already on disk and in the page cache.  ``--with-boto3`` keeps them, for a function that
wants the SDK pinned to the version the layer was built with.

Every module is byte-compiled by an interpreter of the target version, in
``unchecked-hash`` mode: a zip round trip does not keep the sources' modification times,
so timestamp-checked .pyc files would all look stale, and ``/opt`` is read-only in Lambda,
so they could not be rewritten either; every cold start would compile the layer again.

The build fails when a zip exceeds what Lambda accepts (``ZIP_LIMIT``, ``UNZIPPED_LIMIT``)
and prints both sizes of every zip.  Run it as ``./build.sh layer`` or
``python layer/build.py --help``.
"""

from __future__ import annotations

import argparse
import ast
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LICENSE = ROOT / "LICENSE"
# The one place the version is written; pyproject.toml reads it too.
VERSION_SOURCE = ROOT / "supervisor" / "__init__.py"
# The one place the project's top-level packages are listed.
PACKAGES_SOURCE = ROOT / "supervisor" / "distribution.py"
DEFAULT_OUT = ROOT / "build" / "layer"

PYTHONS = ("3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHONS = ("3.12", "3.13")
# Lambda's name for an architecture -> the machine name in wheel tags and ELF headers.
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
DEFAULT_ARCHITECTURES = ("x86_64", "arm64")

# Distributions every Lambda Python runtime ships (boto3 and what it depends on).
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)

# Where Lambda extracts the zip's python/ folder; the .pyc files name their sources there.
INSTALL_ROOT = "/opt/python"


def _load_sibling(name: str) -> ModuleType:
    """``layer/NAME.py`` beside this file, loaded by its path: ``layer/`` is no package, and
    this file runs as a script or is itself loaded by path."""
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"serverless_supervisor_layer_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import archive
else:
    archive = _load_sibling("archive")

# The names of layer/archive.py are this module's too, for those that load this file.
BuildError = archive.BuildError
LayerSize = archive.LayerSize
MB, ZIP_LIMIT, UNZIPPED_LIMIT = archive.MB, archive.ZIP_LIMIT, archive.UNZIPPED_LIMIT
measure, size_problems = archive.measure, archive.size_problems
remove_distributions, write_zip = archive.remove_distributions, archive.write_zip


@dataclass(frozen=True)
class Target:
    """One layer zip: a CPython version and a Lambda architecture."""

    python: str
    arch: str

    @property
    def name(self) -> str:
        return f"py{self.python}-{self.arch}"

    @property
    def zip_name(self) -> str:
        return f"serverless-supervisor-{self.name}.zip"

    @property
    def platform(self) -> str:
        return f"manylinux2014_{ARCHITECTURES[self.arch]}"

    @property
    def cache_tag(self) -> str:
        """The tag of the target's .pyc files and extension modules, such as ``cpython-312``."""
        return "cpython-" + self.python.replace(".", "")


def find_interpreter(version: str, *, pyenv_root: Path | None = None) -> Path | None:
    """A CPython of ``version`` (``3.12``): the newest under pyenv, else ``python3.12`` on PATH."""
    root = pyenv_root or Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pattern = str(root / "versions" / f"{glob.escape(version)}.*" / "bin" / f"python{version}")
    found = sorted((Path(path) for path in glob.glob(pattern)), key=_patch_level, reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(Path(on_path))
    for candidate in found:
        if _reports_version(candidate, version):
            return candidate
    return None


def _patch_level(interpreter: Path) -> tuple[int, ...]:
    release = interpreter.parent.parent.name
    return tuple(int(part) for part in re.findall(r"\d+", release))


def _reports_version(interpreter: Path, version: str) -> bool:
    # A pyenv shim exists for every installed version but fails for one not selected.
    try:
        result = subprocess.run(
            [str(interpreter), "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def project_version(source: Path = VERSION_SOURCE) -> str:
    """``__version__`` of the supervisor package, read without importing it."""
    found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", source.read_text(), re.MULTILINE)
    if found is None:
        raise BuildError(f'{source} has no __version__ = "..." line')
    return found.group(1)


def project_packages(source: Path = PACKAGES_SOURCE) -> tuple[str, ...]:
    """``PACKAGES`` of ``supervisor/distribution.py``, read without importing it."""
    for node in ast.parse(source.read_text(), str(source)).body:
        if isinstance(node, ast.Assign) and [
            target.id for target in node.targets if isinstance(target, ast.Name)
        ] == ["PACKAGES"]:
            return tuple(ast.literal_eval(node.value))
    raise BuildError(f"{source} has no PACKAGES = (...) line")


def layer_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The runtime dependencies of ``pyproject.toml``, less those the Lambda runtime ships
    (``RUNTIME_PROVIDED``)."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    provided = {archive.canonical_name(name) for name in RUNTIME_PROVIDED}
    return [
        requirement
        for requirement in dependencies
        if archive.canonical_name(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
        not in provided
    ]


def write_metadata(site: Path, version: str) -> Path:
    """The project's dist-info folder in ``site``: its name, version and licence."""
    dist_info = site / f"serverless_supervisor-{version}.dist-info"
    (dist_info / "licenses").mkdir(parents=True)
    shutil.copyfile(LICENSE, dist_info / "licenses" / "LICENSE")
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.4\n"
        "Name: serverless-supervisor\n"
        f"Version: {version}\n"
        "Summary: Event-driven file processing runtime for AWS Lambda and AWS Batch\n"
        "License-Expression: Apache-2.0\n"
        "License-File: LICENSE\n",
        encoding="utf-8",
    )
    (dist_info / "top_level.txt").write_text("\n".join(project_packages()) + "\n")
    return dist_info


def build(target: Target, interpreter: Path, out: Path, *, with_boto3: bool = False) -> Path:
    """Install, compile and zip one target; return the zip's path."""
    with tempfile.TemporaryDirectory(prefix=f"layer-{target.name}-") as scratch:
        tree = Path(scratch)
        site = tree / "python"
        _install_requirements(target, site)
        if not with_boto3:
            remove_distributions(site, RUNTIME_PROVIDED)
        # Console scripts point at the build machine's interpreter; nothing in Lambda runs them.
        shutil.rmtree(site / "bin", ignore_errors=True)
        _copy_project(site)
        write_metadata(site, project_version())
        _compile(site, interpreter, target)
        out.mkdir(parents=True, exist_ok=True)
        zip_path = out / target.zip_name
        write_zip(tree, zip_path)
    return zip_path


def _install_requirements(target: Target, site: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        "--target",
        str(site),
        "--platform",
        target.platform,
        "--python-version",
        target.python,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--upgrade",
        *layer_requirements(),
    ]
    if subprocess.run(command, check=False).returncode != 0:
        raise BuildError(
            f"pip could not install the dependencies of pyproject.toml for {target.name} "
            f"({target.platform}, CPython {target.python}); see pip's message above"
        )


def _copy_project(site: Path) -> None:
    for package in project_packages():
        destination = site / package
        if destination.exists():
            raise BuildError(f"a dependency installed a top-level {package!r}, as the project does")
        shutil.copytree(
            ROOT / package,
            destination,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
        )


def _compile(site: Path, interpreter: Path, target: Target) -> None:
    command = [
        str(interpreter),
        "-I",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(site),
        "-p",
        INSTALL_ROOT,
        str(site),
    ]
    if subprocess.run(command, check=False).returncode != 0:
        raise BuildError(f"{interpreter} could not byte-compile every module for {target.name}")
    stray = sorted(
        str(path.relative_to(site))
        for path in site.rglob("*.pyc")
        if path.parent.name != "__pycache__" or not path.name.endswith(f".{target.cache_tag}.pyc")
    )
    if stray:
        raise BuildError(f".pyc files not compiled for {target.cache_tag}: {', '.join(stray)}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="layer/build.py",
        description=(
            "Build the serverless-supervisor Lambda Layer: one zip per Python version and "
            "architecture, with python/ holding supervisor, handlers and the runtime "
            "dependencies for that platform, byte-compiled for the target Python. boto3 is "
            "left to the Lambda runtime unless --with-boto3 is given. Fails if a zip is over "
            f"{ZIP_LIMIT // MB} MB or its files over {UNZIPPED_LIMIT // MB} MB."
        ),
    )
    parser.add_argument(
        "--python",
        nargs="+",
        choices=PYTHONS,
        default=list(DEFAULT_PYTHONS),
        metavar="VERSION",
        help=f"target Python versions (default: {' '.join(DEFAULT_PYTHONS)})",
    )
    parser.add_argument(
        "--arch",
        nargs="+",
        choices=sorted(ARCHITECTURES),
        default=list(DEFAULT_ARCHITECTURES),
        help=f"target architectures (default: {' '.join(DEFAULT_ARCHITECTURES)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the zips (default: build/layer)",
    )
    parser.add_argument(
        "--with-boto3",
        action="store_true",
        help="also put boto3, botocore and s3transfer in the layer instead of using the runtime's",
    )
    parser.add_argument(
        "--interpreter",
        action="append",
        default=[],
        metavar="VERSION=PATH",
        help=(
            "the Python that byte-compiles for VERSION (default: the newest "
            "$PYENV_ROOT/versions/VERSION.*, else pythonVERSION on PATH)"
        ),
    )
    return parser.parse_args(argv)


def _interpreters(versions: Sequence[str], given: Sequence[str]) -> dict[str, Path]:
    chosen: dict[str, Path] = {}
    for item in given:
        version, separator, path = item.partition("=")
        if not separator or version not in PYTHONS:
            raise BuildError(
                f"--interpreter {item!r}: expected VERSION=PATH, such as 3.12=/usr/bin/python3.12"
            )
        if not _reports_version(Path(path), version):
            raise BuildError(f"--interpreter {item!r}: {path} is not a working Python {version}")
        chosen[version] = Path(path)
    for version in versions:
        if version not in chosen:
            found = find_interpreter(version)
            if found is None:
                raise BuildError(
                    f"no Python {version} to byte-compile the layer with: looked for "
                    f"~/.pyenv/versions/{version}.*/bin/python{version} and python{version} on "
                    f"PATH; install one or pass --interpreter {version}=PATH"
                )
            chosen[version] = found
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    versions = list(dict.fromkeys(args.python))
    targets = [Target(python, arch) for python in versions for arch in dict.fromkeys(args.arch)]
    failed = []
    try:
        interpreters = _interpreters(versions, args.interpreter)
        for target in targets:
            interpreter = interpreters[target.python]
            print(f"==> {target.name}: building with {interpreter}", file=sys.stderr)
            zip_path = build(target, interpreter, args.out, with_boto3=args.with_boto3)
            size = measure(zip_path)
            print(f"{zip_path}: {size.describe()}")
            problems = size_problems(size)
            if problems:
                failed.append(f"{zip_path.name}: {'; '.join(problems)}")
    except BuildError as exc:
        print(f"layer/build.py: error: {exc}", file=sys.stderr)
        return 1
    for message in failed:
        print(f"layer/build.py: error: {message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
