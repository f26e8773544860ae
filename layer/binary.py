"""Build ``build/binary/supervisor``: one executable that runs the job in any Linux image.

AWS Batch jobs made by SCAR run ``/bin/sh -c 'echo $EVENT | /opt/faas-supervisor/bin/supervisor'``
and OSCAR's jobs ``echo $EVENT | /oscar/bin/supervisor``: a file mounted into the user's
image, which may have no Python and no C library at all (Alpine's musl, busybox).  This
script makes that file in two steps:

1. PyInstaller bundles the command line (``supervisor.cli:main``, what ``python -m
   supervisor`` runs) with the interpreter, the project's packages and their
   dependencies into one self-extracting file.  Every module of ``supervisor``,
   ``handlers`` and ``batch_entrypoint`` is bundled, so the lazily imported ones are there
   too, with what they import (boto3, botocore and its data, pydantic, PyYAML, watchtower,
   aws-lambda-powertools); the build fails when one of ``REQUIRED_MEMBERS`` is missing.
2. staticx wraps that file with the C library and every other shared library it loads,
   so that it needs nothing from the image but a kernel and a writable ``$TMPDIR`` (or
   ``/tmp``), where both steps unpack themselves when the binary starts.

staticx needs a bundle built by the distribution's own Python (``/usr/bin/python3``,
whose ``libpython`` is a system library that ``ldd`` can resolve), not a pyenv one, so the
build runs in its own virtual environment made from that interpreter (``build/binary-venv``
by default) with the tools pinned in ``layer/binary-requirements.txt``, and the
project's runtime dependencies from ``pyproject.toml``.  staticx also runs ``patchelf``,
``objcopy``, ``strip`` and ``ldd``: on Debian, ``apt-get install python3-venv python3-dev
patchelf binutils`` (``./build.sh binary`` does it).

The binary is for the machine that builds it: x86_64 here; the same command on an arm64
(aarch64) host builds the arm64 one.  Run it as ``./build.sh binary`` or ``python
layer/binary.py --help``; it prints the binary's size and SHA-256 and writes the checksum
beside it (``supervisor.sha256``, as ``sha256sum -c`` reads it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "layer" / "binary-requirements.txt"
DEFAULT_OUT = ROOT / "build" / "binary"
DEFAULT_VENV = ROOT / "build" / "binary-venv"
DEFAULT_PYTHON = Path("/usr/bin/python3")
NAME = "supervisor"

PROJECT_PACKAGES = ("supervisor", "handlers", "batch_entrypoint")
# What the binary is built from: a change to any of these makes a built binary stale.
SOURCES = (*PROJECT_PACKAGES, "pyproject.toml", "layer/binary.py", "layer/binary-requirements.txt")
# Programs staticx runs, and the Debian package of each.
STATICX_TOOLS = {
    "patchelf": "patchelf",
    "objcopy": "binutils",
    "strip": "binutils",
    "ldd": "libc-bin",
}

# What a job needs that only a lazy import or a data file lookup reaches: the build
# fails when PyInstaller left one of them out.
REQUIRED_MEMBERS = (
    "supervisor.cli",
    "batch_entrypoint.job",
    "handlers.lambda_handler",
    "supervisor.staging",
    "supervisor.delegation",
    "supervisor.logs",
    "boto3",
    "botocore.client",
    "botocore/data/endpoints.json",
    "botocore/data/sdk-default-configuration.json",
    "botocore/data/s3/2006-03-01/service-2.json.gz",
    "botocore/data/batch/2016-08-10/service-2.json.gz",
    "botocore/data/logs/2014-03-28/service-2.json.gz",
    "botocore/cacert.pem",
    "s3transfer.manager",
    "pydantic",
    "pydantic_core._pydantic_core",
    "yaml",
    "watchtower",
    "aws_lambda_powertools.logging.logger",
)

# The program the bundle starts: what ``python -m supervisor`` runs.
ENTRY = """\
import sys

from supervisor.cli import main

sys.exit(main())
"""

MB = 1024 * 1024
_PT_INTERP = 3
_PT_DYNAMIC = 2


class BuildError(Exception):
    """The binary could not be built; the message says what is missing or wrong."""


def sources(root: Path = ROOT) -> list[Path]:
    """Every file the binary is built from."""
    found: list[Path] = []
    for name in SOURCES:
        path = root / name
        if path.is_dir():
            found.extend(
                item
                for item in path.rglob("*")
                if item.is_file() and "__pycache__" not in item.parts
            )
        elif path.is_file():
            found.append(path)
    return found


def is_stale(binary: Path, root: Path = ROOT) -> bool:
    """Whether ``binary`` is missing or older than one of the files it is built from."""
    if not binary.is_file():
        return True
    built = binary.stat().st_mtime
    return any(path.stat().st_mtime > built for path in sources(root))


def elf_segments(path: Path) -> list[int]:
    """The types of the program headers of a 64-bit little-endian ELF file."""
    with path.open("rb") as elf:
        header = elf.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            raise BuildError(f"{path} is not a 64-bit little-endian ELF file")
        (phoff,) = struct.unpack_from("<Q", header, 32)
        entry_size, count = struct.unpack_from("<HH", header, 54)
        types = []
        for index in range(count):
            elf.seek(phoff + index * entry_size)
            (kind,) = struct.unpack("<I", elf.read(4))
            types.append(kind)
    return types


def is_static(path: Path) -> bool:
    """Whether the ELF file at ``path`` runs without a dynamic loader or shared libraries."""
    segments = elf_segments(path)
    return _PT_INTERP not in segments and _PT_DYNAMIC not in segments


def project_dependencies(root: Path = ROOT) -> list[str]:
    """The runtime requirements of ``pyproject.toml`` (``[project] dependencies``)."""
    with (root / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    return list(project["dependencies"])


def missing_tools(which: Iterable[str] = STATICX_TOOLS) -> list[str]:
    """The programs staticx runs that are not on PATH."""
    return [tool for tool in which if shutil.which(tool) is None]


def prepare_venv(python: Path, venv: Path) -> Path:
    """Create (once) the build environment from ``python``; install the pinned tools and the
    project's dependencies; return its interpreter."""
    interpreter = venv / "bin" / "python"
    if not interpreter.is_file():
        if not python.is_file():
            raise BuildError(
                f"no {python}: the build needs the distribution's Python "
                "(apt-get install python3 python3-venv python3-dev) or --python PATH"
            )
        print(f"==> creating {venv} from {python}", file=sys.stderr)
        _run([str(python), "-m", "venv", str(venv)], f"{python} could not create {venv}")
    print(f"==> installing {TOOLS.relative_to(ROOT)} and the dependencies", file=sys.stderr)
    _run(
        [
            str(interpreter),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--requirement",
            str(TOOLS),
            *project_dependencies(),
        ],
        f"pip could not install the build tools or the dependencies into {venv}",
    )
    return interpreter


def bundle(interpreter: Path, scratch: Path) -> Path:
    """Run PyInstaller (one file) on the command line; return the dynamic executable."""
    entry = scratch / "supervisor_main.py"
    entry.write_text(ENTRY, encoding="utf-8")
    collect = [arg for package in PROJECT_PACKAGES for arg in ("--collect-submodules", package)]
    print("==> PyInstaller: bundling the command line", file=sys.stderr)
    _run(
        [
            str(interpreter),
            "-m",
            "PyInstaller",
            "--onefile",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--name",
            NAME,
            "--paths",
            str(ROOT),
            *collect,
            # Tests and tools of the dependencies that a job never runs.
            "--exclude-module",
            "tkinter",
            "--exclude-module",
            "pytest",
            "--distpath",
            str(scratch / "dist"),
            "--workpath",
            str(scratch / "work"),
            "--specpath",
            str(scratch),
            str(entry),
        ],
        "PyInstaller could not bundle the command line; see its message above",
    )
    return scratch / "dist" / NAME


def archive_members(interpreter: Path, executable: Path) -> set[str]:
    """The names of the modules and files PyInstaller put in ``executable``."""
    viewer = interpreter.parent / "pyi-archive_viewer"
    result = subprocess.run(
        [str(viewer), "--recursive", "--brief", str(executable)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BuildError(f"pyi-archive_viewer could not list {executable}: {result.stderr}")
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def lacking(members: set[str], required: Iterable[str] = REQUIRED_MEMBERS) -> list[str]:
    """The required modules and files that are not among ``members``.  A module may be an
    extension: a file such as ``pydantic_core/_pydantic_core.cpython-311-x86_64-linux-gnu.so``."""
    absent = []
    for name in required:
        extension = name.replace(".", "/") + "."
        if name in members or any(
            member.startswith(extension) and member.endswith(".so") for member in members
        ):
            continue
        absent.append(name)
    return absent


def make_static(interpreter: Path, executable: Path, output: Path) -> None:
    """Wrap ``executable`` with its shared libraries into ``output`` (staticx)."""
    missing = missing_tools()
    if missing:
        packages = sorted({STATICX_TOOLS[tool] for tool in missing})
        raise BuildError(
            f"staticx needs {', '.join(missing)} on PATH: apt-get install {' '.join(packages)}"
        )
    print("==> staticx: adding the C library and the other shared libraries", file=sys.stderr)
    partial = output.with_name(output.name + ".partial")
    _run(
        [str(interpreter.parent / "staticx"), str(executable), str(partial)],
        "staticx could not make the bundle static; see its message above",
    )
    partial.chmod(0o755)
    partial.replace(output)


def verify(binary: Path) -> str:
    """Check that ``binary`` is static and starts; return what ``--version`` printed."""
    if not is_static(binary):
        raise BuildError(f"{binary} still needs a dynamic loader")
    # No inherited settings: the binary must start on the image's bare environment.
    environment = {"PATH": "/usr/bin:/bin"}
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            env=environment,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"{binary} --version did not run: {exc}") from exc
    if result.returncode != 0 or "supervisor" not in result.stdout:
        raise BuildError(
            f"{binary} --version exited {result.returncode}: {result.stdout}{result.stderr}"
        )
    return result.stdout.strip()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def build(python: Path, venv: Path, out: Path) -> Path:
    """Build, check and checksum ``out/supervisor``; return its path."""
    interpreter = prepare_venv(python, venv)
    out.mkdir(parents=True, exist_ok=True)
    binary = out / NAME
    with tempfile.TemporaryDirectory(prefix="binary-") as folder:
        scratch = Path(folder)
        executable = bundle(interpreter, scratch)
        members = archive_members(interpreter, executable)
        absent = lacking(members)
        if absent:
            raise BuildError(f"the bundle lacks {', '.join(absent)}")
        make_static(interpreter, executable, binary)
    version = verify(binary)
    digest = sha256(binary)
    (out / f"{NAME}.sha256").write_text(f"{digest}  {NAME}\n", encoding="ascii")
    size = binary.stat().st_size
    print(f"{binary}: {version}, {platform.machine()}, static, {size / MB:.1f} MB")
    print(f"sha256 {digest}")
    return binary


def _run(command: Sequence[str], failure: str) -> None:
    # The build tools print to our stderr; a failure names the step that failed.
    environment = {**os.environ, "PYTHONNOUSERSITE": "1"}
    environment.pop("PYTHONPATH", None)
    if subprocess.run(command, env=environment, check=False).returncode != 0:
        raise BuildError(failure)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="layer/binary.py",
        description=(
            "Build build/binary/supervisor: the command line (python -m supervisor) as one "
            "static executable for this machine's architecture (PyInstaller one-file, then "
            "staticx), which runs in any Linux image of that architecture, with or without "
            "glibc or Python. Needs the distribution's python3 with venv and dev files, "
            "patchelf and binutils."
        ),
    )
    parser.add_argument(
        "--python",
        type=Path,
        default=DEFAULT_PYTHON,
        help=f"the distribution's Python to build with (default: {DEFAULT_PYTHON}; not pyenv's)",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=DEFAULT_VENV,
        help="the build tools' virtual environment, made once (default: build/binary-venv)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the binary (default: build/binary)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    try:
        build(args.python, args.venv.resolve(), args.out.resolve())
    except BuildError as exc:
        print(f"layer/binary.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
