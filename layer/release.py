"""Build everything a release ships into one folder (``build/release`` by default).

- the wheel and the sdist (``python -m build``), named with the version of
  ``supervisor/__init__.py``;
- the Lambda Layer zips (``layer/build.py``), one per Python and architecture;
- the static binary for Batch and OSCAR jobs (``layer/binary.py``), as
  ``supervisor-VERSION-linux-ARCH``;
- ``SHA256SUMS``, the SHA-256 of every file above as ``sha256sum -c SHA256SUMS`` reads it.

The folder is emptied first, so that it holds this release only.  Run it as ``./build.sh
release`` or ``python layer/release.py --help``; ``--no-binary`` leaves the binary out
(it is the slow part), ``--python`` and ``--arch`` are passed to the layer build.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "release"
CHECKSUMS = "SHA256SUMS"
# The machine names of the binary's architectures, as Lambda names them.
MACHINES = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


class ReleaseError(Exception):
    """A part of the release could not be built; the message says which."""


def _version() -> str:
    """The version, read by layer/build.py from supervisor/__init__.py."""
    path = ROOT / "layer" / "build.py"
    spec = importlib.util.spec_from_file_location("serverless_supervisor_layer_build", path)
    if spec is None or spec.loader is None:
        raise ReleaseError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    version: str = module.project_version()
    return version


def _run(command: list[str], what: str) -> None:
    print(f"==> {what}", file=sys.stderr)
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise ReleaseError(f"{what} failed; see the messages above")


def build_packages(out: Path) -> list[Path]:
    """The wheel and the sdist, built in isolated environments."""
    before = set(out.iterdir())
    _run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(ROOT)],
        "the wheel and the sdist (python -m build)",
    )
    return sorted(set(out.iterdir()) - before)


def build_layers(out: Path, pythons: Sequence[str], arches: Sequence[str]) -> list[Path]:
    """The layer zips, one per Python and architecture."""
    command = [sys.executable, str(ROOT / "layer" / "build.py"), "--out", str(out)]
    if pythons:
        command += ["--python", *pythons]
    if arches:
        command += ["--arch", *arches]
    before = set(out.iterdir())
    _run(command, "the Lambda Layer zips (layer/build.py)")
    return sorted(set(out.iterdir()) - before)


def build_binary(out: Path, version: str) -> Path:
    """The static binary, named with the version and the architecture of this machine."""
    arch = MACHINES.get(platform.machine(), platform.machine())
    with tempfile.TemporaryDirectory(prefix="release-binary-") as scratch:
        _run(
            [sys.executable, str(ROOT / "layer" / "binary.py"), "--out", scratch],
            "the static binary (layer/binary.py)",
        )
        binary = out / f"supervisor-{version}-linux-{arch}"
        shutil.copy2(Path(scratch) / "supervisor", binary)
    return binary


def write_checksums(out: Path, files: Sequence[Path]) -> Path:
    """``SHA256SUMS`` in ``out``: a line ``HEX  NAME`` per file, sorted by name."""
    lines = []
    for path in sorted(files, key=lambda item: item.name):
        digest = hashlib.sha256()
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.name}\n")
    checksums = out / CHECKSUMS
    checksums.write_text("".join(lines))
    return checksums


def release(
    out: Path, *, pythons: Sequence[str], arches: Sequence[str], binary: bool
) -> list[Path]:
    """Build every part into an emptied ``out``; return the files, SHA256SUMS last."""
    version = _version()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = build_packages(out)
    files += build_layers(out, pythons, arches)
    if binary:
        files.append(build_binary(out, version))
    return [*files, write_checksums(out, files)]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="layer/release.py",
        description=(
            "Build a release of serverless-supervisor into one folder: the wheel, the sdist, "
            "the Lambda Layer zips, the static binary and a SHA256SUMS file."
        ),
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="the folder, emptied first (build/release)"
    )
    parser.add_argument(
        "--python",
        nargs="+",
        default=[],
        metavar="VERSION",
        help="the layers' Pythons (default: layer/build.py's)",
    )
    parser.add_argument(
        "--arch", nargs="+", default=[], help="the layers' architectures (default: both)"
    )
    parser.add_argument(
        "--no-binary", action="store_true", help="leave the static binary out (the slow part)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    out = args.out.resolve()
    try:
        files = release(out, pythons=args.python, arches=args.arch, binary=not args.no_binary)
    except ReleaseError as exc:
        print(f"layer/release.py: error: {exc}", file=sys.stderr)
        return 1
    for path in files:
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
