"""The Batch job images: what their Dockerfiles say, read without a Docker engine."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "batch_entrypoint" / "Dockerfile"
GPU = ROOT / "batch_entrypoint" / "Dockerfile.gpu"
COMMAND = ["python", "-m", "supervisor"]
# The Python of the distributions a CUDA image can be based on.
UBUNTU_PYTHON = {"ubuntu20.04": (3, 8), "ubuntu22.04": (3, 10), "ubuntu24.04": (3, 12)}


@dataclass(frozen=True)
class Instruction:
    name: str
    arguments: str


def instructions(path: Path) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        name, _, arguments = text.partition(" ")
        found.append(Instruction(name.upper(), arguments.strip()))
    return found


def of(path: Path, name: str) -> list[str]:
    return [i.arguments for i in instructions(path) if i.name == name]


def base_image(path: Path) -> str:
    """The FROM image, with ARG defaults declared before it filled in."""
    defaults: dict[str, str] = {}
    for instruction in instructions(path):
        if instruction.name == "ARG":
            name, _, default = instruction.arguments.partition("=")
            defaults[name] = default
        elif instruction.name == "FROM":
            image = instruction.arguments.split()[0]
            return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], image)
    raise AssertionError(f"{path}: no FROM")


def environment(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for arguments in of(path, "ENV"):
        for pair in shlex.split(arguments):
            name, _, value = pair.partition("=")
            values[name] = value
    return values


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str) -> bool:
    parts = Path(relative).parts
    return any(
        fnmatch.fnmatch(relative, pattern.removeprefix("**/"))
        or any(fnmatch.fnmatch(part, pattern.removeprefix("**/")) for part in parts)
        for pattern in dockerignore()
    )


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_the_command_is_python_m_supervisor(dockerfile: Path) -> None:
    commands = of(dockerfile, "CMD")

    assert commands, "no CMD"
    assert json.loads(commands[-1]) == COMMAND
    assert of(dockerfile, "ENTRYPOINT") == [], "Batch's command must reach python unchanged"


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_the_project_is_copied_in_and_installed_with_pip(dockerfile: Path) -> None:
    copied = [shlex.split(arguments)[:-1] for arguments in of(dockerfile, "COPY")]
    sources = {source.rstrip("/") for sources in copied for source in sources}

    # The installed package carries LICENSE (license-files in pyproject.toml).
    assert {
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "supervisor",
        "handlers",
        "batch_entrypoint",
    } <= sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
    runs = [shlex.split(arguments.replace("&&", " && ")) for arguments in of(dockerfile, "RUN")]
    installs = [
        words[words.index("install") + 1 :]
        for words in runs
        if "pip" in words and "install" in words
    ]
    assert any(arguments[:1] == ["."] for arguments in installs), installs


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_the_job_runs_as_a_user_in_a_working_folder(dockerfile: Path) -> None:
    users = of(dockerfile, "USER")

    assert users, "no USER: the script would run as root"
    assert users[-1] not in ("root", "0")
    assert of(dockerfile, "WORKDIR")


@pytest.mark.parametrize("dockerfile", [CPU, GPU], ids=["cpu", "gpu"])
def test_the_image_python_is_one_the_project_supports(dockerfile: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = tuple(int(n) for n in project["requires-python"].removeprefix(">=").split("."))
    image = base_image(dockerfile)

    if image.startswith("python:"):
        version = tuple(int(n) for n in re.findall(r"\d+", image.split(":")[1])[:2])
    else:
        (distribution,) = [d for d in UBUNTU_PYTHON if image.endswith(d)]
        version = UBUNTU_PYTHON[distribution]
    assert version >= minimum, image


def test_the_cpu_image_is_a_python_image() -> None:
    assert base_image(CPU).startswith("python:3.12")


def test_the_gpu_image_is_a_cuda_runtime_image_with_a_python_command() -> None:
    image = base_image(GPU)
    env = environment(GPU)

    assert image.startswith("nvidia/cuda:")
    assert "-runtime-" in image
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert set(env["NVIDIA_DRIVER_CAPABILITIES"].split(",")) >= {"compute", "utility"}
    venv = env["VIRTUAL_ENV"]
    assert env["PATH"].startswith(f"{venv}/bin:"), "python must be the venv's python"
    assert any(f"-m venv {venv}" in arguments for arguments in of(GPU, "RUN"))


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    for path in (".venv", "build", "demo-output", ".git", ".mypy_cache", "supervisor/__pycache__"):
        assert ignored(path), path
