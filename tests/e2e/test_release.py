"""``./build.sh release``: the wheel, the sdist and the layer zips in one folder, checksummed.

The release is built once for the module (without the static binary, which
``tests/e2e/test_binary.py`` builds and checks, and with one layer zip), as a user runs it;
the tests then read what a user of each file would: ``sha256sum -c``, the wheel's metadata
and licence, the sdist's files, the layer's licence.
"""

from __future__ import annotations

import email
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import supervisor

ROOT = Path(__file__).resolve().parents[2]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "x86_64")
VERSION = supervisor.__version__
REPOSITORY = "https://github.com/serverless-supervisor/serverless-supervisor"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("release") / "release"
    out.mkdir()
    (out / "left-from-an-older-release.whl").write_text("old")
    environment = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    done = subprocess.run(
        [str(ROOT / "build.sh"), "release", "--no-binary", "--python", PYTHON, "--arch", ARCH,
         "--out", str(out)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_folder_holds_this_release_only_and_its_checksums_verify(release: Path) -> None:
    layer = f"serverless-supervisor-py{PYTHON}-{ARCH}.zip"

    assert sorted(path.name for path in release.iterdir()) == sorted(
        [
            "SHA256SUMS",
            layer,
            f"serverless_supervisor-{VERSION}-py3-none-any.whl",
            f"serverless_supervisor-{VERSION}.tar.gz",
        ]
    )
    sums = (release / "SHA256SUMS").read_text().splitlines()
    assert [line.split("  ", 1)[1] for line in sums] == sorted(
        path.name for path in release.iterdir() if path.name != "SHA256SUMS"
    )
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+", line) for line in sums)
    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"],
        cwd=release,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == 3


def test_a_changed_file_fails_the_checksums(release: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    with (copy / f"serverless_supervisor-{VERSION}.tar.gz").open("ab") as file:
        file.write(b"\0")

    checked = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=copy, capture_output=True, text=True, check=False
    )

    assert checked.returncode == 1
    assert f"serverless_supervisor-{VERSION}.tar.gz: FAILED" in checked.stdout


def test_the_wheel_carries_the_licence_the_version_and_the_project_urls(release: Path) -> None:
    wheel = release / f"serverless_supervisor-{VERSION}-py3-none-any.whl"
    dist_info = f"serverless_supervisor-{VERSION}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        licence = archive.read(f"{dist_info}/licenses/LICENSE")
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
        names = archive.namelist()

    assert licence == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in licence
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert sorted(metadata.get_all("Project-URL") or []) == sorted(
        [
            f"Homepage, {REPOSITORY}",
            f"Documentation, {REPOSITORY}/tree/main/docs",
            f"Source, {REPOSITORY}",
            f"Changelog, {REPOSITORY}/blob/main/CHANGELOG.md",
            f"Issues, {REPOSITORY}/issues",
        ]
    )
    assert "supervisor/cli/__init__.py" in names
    assert not [name for name in names if name.startswith(("layer/", "tests/"))]


def test_the_sdist_carries_the_licence(release: Path) -> None:
    with tarfile.open(release / f"serverless_supervisor-{VERSION}.tar.gz") as archive:
        names = set(archive.getnames())
        top = f"serverless_supervisor-{VERSION}"
        licence = archive.extractfile(f"{top}/LICENSE")
        assert licence is not None
        assert licence.read() == (ROOT / "LICENSE").read_bytes()

    assert f"{top}/pyproject.toml" in names
    assert f"{top}/supervisor/__init__.py" in names


def test_the_layer_zip_carries_the_licence_and_the_version(release: Path) -> None:
    with zipfile.ZipFile(release / f"serverless-supervisor-py{PYTHON}-{ARCH}.zip") as archive:
        dist_info = f"python/serverless_supervisor-{VERSION}.dist-info"
        licence = archive.read(f"{dist_info}/licenses/LICENSE")
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))

    assert licence == (ROOT / "LICENSE").read_bytes()
    assert metadata["Name"] == "serverless-supervisor"
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"
