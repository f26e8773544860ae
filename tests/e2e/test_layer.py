"""The Lambda Layer as Lambda uses it: built by ``layer/build.py``, unzipped, imported bare.

The build runs once per session for every target whose Python is installed (it needs PyPI).
The smoke test unzips the layer for this machine's architecture and runs the handler in a
Python of the target version with nothing on ``sys.path`` but the standard library, the
layer and a boto3 as old as the project accepts (standing in for the runtime's), against
the moto server.  The other checks read the zips: each compiled extension is built for the
zip's architecture and Python, and each module is byte-compiled for that Python in
unchecked-hash mode.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import platform
import re
import struct
import subprocess
import sys
import time
import tomllib
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "layer" / "build.py"
EVENTS_DIR = ROOT / "tests" / "events"

PYTHONS = ("3.12", "3.13")
ARCHITECTURES = ("x86_64", "arm64")
TARGETS = [(python, arch) for python in PYTHONS for arch in ARCHITECTURES]
# e_machine in the ELF header of a shared object built for each Lambda architecture.
ELF_MACHINES = {"x86_64": 62, "arm64": 183}
ELF_TRIPLETS = {"x86_64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
JOB_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
# The .pyc flags word of a hash-based .pyc whose source is never checked (PEP 552).
UNCHECKED_HASH = 0b01

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("layer_build", BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the script is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


layer_build = _load_build_script()


def _canonical(requirement: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


# ---------------------------------------------------------------------------------------
# The build script's own parts, on small fakes (no PyPI).


def test_requirements_are_the_runtime_dependencies_less_what_the_runtime_ships() -> None:
    layer = {_canonical(line) for line in layer_build.layer_requirements()}
    project = {_canonical(line) for line in _project_dependencies()}
    runtime = {_canonical(name) for name in layer_build.RUNTIME_PROVIDED}

    assert layer == project - runtime
    assert "boto3" in project & runtime


def test_size_check_names_each_limit_a_zip_exceeds(tmp_path: Path) -> None:
    zip_path = tmp_path / "fake.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/a.py", "x = 1\n" * 1000)
        archive.writestr("python/b.txt", b"\0" * 5000)

    size = layer_build.measure(zip_path)

    assert size.unzipped_bytes == 6000 + 5000
    assert size.zip_bytes == zip_path.stat().st_size < 1000
    assert layer_build.size_problems(size) == []
    assert layer_build.size_problems(size, zip_limit=size.zip_bytes) == []
    assert layer_build.size_problems(size, zip_limit=size.zip_bytes - 1) == [
        f"the zip is {size.zip_bytes} bytes, over the limit of {size.zip_bytes - 1}"
    ]
    assert layer_build.size_problems(size, zip_limit=10, unzipped_limit=10_999) == [
        f"the zip is {size.zip_bytes} bytes, over the limit of 10",
        "the unzipped files are 11000 bytes, over the limit of 10999",
    ]
    assert (layer_build.ZIP_LIMIT, layer_build.UNZIPPED_LIMIT) == (50 * 2**20, 250 * 2**20)


def test_a_zip_of_the_same_files_is_byte_identical(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "python" / "pkg").mkdir(parents=True)
    (tree / "python" / "pkg" / "mod.py").write_text("x = 1\n")
    (tree / "python" / "top.py").write_text("y = 2\n")
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"

    layer_build.write_zip(tree, first)
    os.utime(tree / "python" / "top.py", (0, 1_000_000_000))
    layer_build.write_zip(tree, second)

    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["python/pkg/mod.py", "python/top.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_the_version_is_written_once_in_the_package() -> None:
    import importlib.metadata

    import supervisor

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert layer_build.project_version() == supervisor.__version__
    assert importlib.metadata.version("serverless-supervisor") == supervisor.__version__


def test_help_names_the_options() -> None:
    result = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    for option in ("--python", "--arch", "--out", "--with-boto3", "--interpreter"):
        assert option in result.stdout


# ---------------------------------------------------------------------------------------
# The built layer.


@pytest.fixture(scope="session")
def interpreters() -> dict[str, Path]:
    """A Python of each target version found on this machine (pyenv, then PATH)."""
    found = {version: layer_build.find_interpreter(version) for version in PYTHONS}
    return {version: path for version, path in found.items() if path is not None}


@pytest.fixture(scope="session")
def built_layer(
    tmp_path_factory: pytest.TempPathFactory, interpreters: dict[str, Path]
) -> tuple[dict[tuple[str, str], Path], str]:
    """``layer/build.py`` run once for every target with an interpreter: zips and stdout."""
    if not interpreters:
        pytest.skip(f"no Python {' or '.join(PYTHONS)} under ~/.pyenv/versions or on PATH")
    out = tmp_path_factory.mktemp("layer")
    command = [sys.executable, str(BUILD_SCRIPT), "--out", str(out), "--arch", *ARCHITECTURES]
    command += ["--python", *interpreters]
    for version, path in interpreters.items():
        command += ["--interpreter", f"{version}={path}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=840, check=False)
    assert result.returncode == 0, f"layer/build.py failed:\n{result.stdout}\n{result.stderr}"
    zips = {
        (python, arch): out / f"serverless-supervisor-py{python}-{arch}.zip"
        for python in interpreters
        for arch in ARCHITECTURES
    }
    return zips, result.stdout


@pytest.fixture
def layer_zip(
    request: pytest.FixtureRequest,
    interpreters: dict[str, Path],
    built_layer: tuple[dict[tuple[str, str], Path], str],
) -> Path:
    """The zip of the (python, arch) target the test is parametrized with, built once."""
    python, arch = request.param
    if python not in interpreters:
        pytest.skip(f"no Python {python} under ~/.pyenv/versions or on PATH to build its layer")
    return built_layer[0][(python, arch)]


@pytest.fixture(scope="session")
def magic_numbers(interpreters: dict[str, Path]) -> dict[str, bytes]:
    """The .pyc magic number of each target Python, as that Python reports it."""
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    return {
        version: bytes.fromhex(
            subprocess.run(
                [str(path), "-I", "-S", "-c", code],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
        for version, path in interpreters.items()
    }


def test_the_build_prints_both_sizes_of_every_zip(
    built_layer: tuple[dict[tuple[str, str], Path], str],
) -> None:
    zips, stdout = built_layer
    for zip_path in zips.values():
        size = layer_build.measure(zip_path)
        assert f"{zip_path}: {size.describe()}" in stdout.splitlines()
        assert re.search(r"MB zipped \(limit 50 MB\), [\d.]+ MB unzipped \(limit 250 MB\)", stdout)
        assert layer_build.size_problems(size) == []


@pytest.mark.parametrize("layer_zip", TARGETS, indirect=True, ids="py{0[0]}-{0[1]}".format)
def test_the_layer_holds_the_supervisor_and_its_dependencies_but_not_boto3(
    layer_zip: Path,
) -> None:
    with zipfile.ZipFile(layer_zip) as archive:
        names = archive.namelist()
    top = {name.split("/")[1] for name in names}

    assert {name.split("/")[0] for name in names} == {"python"}
    assert {"supervisor", "handlers", "batch_entrypoint", "faassupervisor"} <= top
    assert {"pydantic", "pydantic_core", "yaml", "aws_lambda_powertools", "watchtower"} <= top
    assert "udocker" in top
    assert "python/handlers/lambda_handler.py" in names
    assert "python/faassupervisor/supervisor.py" in names
    version = layer_build.project_version()
    dist_info = f"python/serverless_supervisor-{version}.dist-info"
    with zipfile.ZipFile(layer_zip) as archive:
        assert archive.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        assert f"Version: {version}\n" in archive.read(f"{dist_info}/METADATA").decode()
    assert not top & {"boto3", "botocore", "s3transfer", "dateutil", "urllib3", "jmespath", "bin"}
    assert not [name for name in top if name.startswith(("boto3-", "botocore-"))]


@pytest.mark.parametrize("layer_zip", TARGETS, indirect=True, ids="py{0[0]}-{0[1]}".format)
def test_every_compiled_extension_is_built_for_the_zips_architecture_and_python(
    layer_zip: Path,
) -> None:
    python, arch = _target_of(layer_zip)
    tag = "cpython-" + python.replace(".", "")
    with zipfile.ZipFile(layer_zip) as archive:
        shared = [name for name in archive.namelist() if re.search(r"\.so(\.[\d.]+)?$", name)]
        headers = {name: archive.open(name).read(20) for name in shared}

    assert any("pydantic_core/_pydantic_core." in name for name in shared), shared
    wrong = {}
    for name, header in headers.items():
        magic, elf_class, byte_order = header[:4], header[4], header[5]
        (machine,) = struct.unpack_from("<H", header, 18)
        if (magic, elf_class, byte_order, machine) != (b"\x7fELF", 2, 1, ELF_MACHINES[arch]):
            wrong[name] = f"class {elf_class}, byte order {byte_order}, e_machine {machine}"
    assert wrong == {}
    for name in shared:
        extension_tag = re.search(r"\.(cpython-[^./]+)\.so$", name)
        if extension_tag:
            assert extension_tag.group(1) == f"{tag}-{ELF_TRIPLETS[arch]}", name


@pytest.mark.parametrize("layer_zip", TARGETS, indirect=True, ids="py{0[0]}-{0[1]}".format)
def test_every_module_is_byte_compiled_for_the_target_python_unchecked(
    layer_zip: Path, magic_numbers: dict[str, bytes]
) -> None:
    python, _ = _target_of(layer_zip)
    tag = "cpython-" + python.replace(".", "")
    with zipfile.ZipFile(layer_zip) as archive:
        names = set(archive.namelist())
        pycs = {name: archive.open(name).read(8) for name in names if name.endswith(".pyc")}

    sources = {name for name in names if name.endswith(".py")}
    expected = {_pyc_of(name, tag) for name in sources}
    assert sources
    assert set(pycs) == expected
    wrong = {
        name: (header[:4].hex(), struct.unpack_from("<I", header, 4)[0])
        for name, header in pycs.items()
        if header[:4] != magic_numbers[python]
        or struct.unpack_from("<I", header, 4)[0] != UNCHECKED_HASH
    }
    assert wrong == {}


def _pyc_of(source: str, tag: str) -> str:
    folder, _, filename = source.rpartition("/")
    return f"{folder}/__pycache__/{filename.removesuffix('.py')}.{tag}.pyc"


def _target_of(zip_path: Path) -> tuple[str, str]:
    found = re.fullmatch(r"serverless-supervisor-py(\d+\.\d+)-(\w+)\.zip", zip_path.name)
    assert found, zip_path.name
    return found.group(1), found.group(2)


# ---------------------------------------------------------------------------------------
# The handler, from the unzipped layer, in a bare Python of the target version.

# Runs in that Python with -I -S: no site-packages, no PYTHON* variables, no script folder.
SMOKE_SCRIPT = """\
import json, sys, time

started = time.perf_counter()
layer, runtime, event_path, result_path, function_name = sys.argv[1:6]
sys.path[:0] = [layer, runtime]

from handlers import lambda_handler

imported = time.perf_counter()


class Context:
    memory_limit_in_mb = 512
    aws_request_id = "6f1c1e0e-0000-4000-8000-000000000001"
    log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"

    def __init__(self, name):
        self.function_name = name
        self.log_group_name = "/aws/lambda/" + name
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
        self.deadline = time.monotonic() + 30

    def get_remaining_time_in_millis(self):
        return int((self.deadline - time.monotonic()) * 1000)


with open(event_path) as source:
    event = json.load(source)
response = lambda_handler.handler(event, Context(function_name))
called = time.perf_counter()
modules = {
    name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())
}
with open(result_path, "w") as result:
    json.dump(
        {
            "response": response,
            "import_s": imported - started,
            "first_call_s": called - imported,
            "modules": modules,
            "stdlib": sys.base_prefix,
            "version": "%d.%d" % sys.version_info[:2],
        },
        result,
    )
"""


@pytest.fixture(scope="session")
def runtime_boto3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 at the oldest version the project accepts, standing in for the runtime's SDK.

    boto3, botocore and their dependencies are pure Python: one folder serves every target.
    """
    (floor,) = (
        re.sub(r"^boto3\s*>=\s*", "", line)
        for line in _project_dependencies()
        if _canonical(line) == "boto3"
    )
    target = tmp_path_factory.mktemp("runtime") / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(target),
            "--only-binary=:all:",
            f"boto3~={floor}.0",
        ],
        check=True,
        timeout=600,
    )
    return target


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


@pytest.mark.skipif(HOST_ARCH is None, reason=f"no Lambda architecture is {platform.machine()}")
@pytest.mark.parametrize("python", PYTHONS)
def test_the_handler_from_the_layer_submits_a_batch_job(
    python: str,
    tmp_path: Path,
    interpreters: dict[str, Path],
    built_layer: tuple[dict[tuple[str, str], Path], str],
    runtime_boto3: Path,
    aws_env: dict[str, str],
    batch_queue: Callable[[str], str],
    batch: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if python not in interpreters:
        pytest.skip(f"no Python {python} under ~/.pyenv/versions or on PATH")
    opt = tmp_path / "opt"
    with zipfile.ZipFile(built_layer[0][(python, str(HOST_ARCH))]) as archive:
        archive.extractall(opt)
    layer = opt / "python"
    before = _snapshot(layer)
    name = batch_queue(f"layer-{uuid.uuid4().hex[:10]}")
    function = tmp_path / "task"
    function.mkdir()
    (function / "process.sh").write_text('echo ran > "$TMP_OUTPUT_DIR/ran.txt"\n')
    definition = {
        "name": name,
        "execution_mode": "batch",
        "init_script": str(function / "process.sh"),
        "input": [{"storage_provider": "s3", "path": "input-bucket/incoming"}],
        "output": [{"storage_provider": "s3", "path": "output-bucket/results"}],
    }
    event_path = EVENTS_DIR / "s3_put.json"
    script = tmp_path / "smoke.py"
    script.write_text(SMOKE_SCRIPT)
    result_path = tmp_path / "result.json"
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **aws_env,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{python}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "FDL": base64.b64encode(yaml.safe_dump(definition).encode()).decode("ascii"),
        "SUPERVISOR_WORK_DIR": str(tmp_path / "work"),
    }
    command = [str(interpreters[python]), "-I", "-S", str(script)]
    command += [str(layer), str(runtime_boto3), str(event_path), str(result_path), name]

    started = time.perf_counter()
    run = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=120, check=False
    )
    wall = time.perf_counter() - started

    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(result_path.read_text())
    assert result["version"] == python
    response = result["response"]
    assert response["statusCode"] == 202, base64.b64decode(response["body"])
    (job_id,) = {
        summary["jobId"]
        for status in JOB_STATUSES
        for summary in batch.list_jobs(jobQueue=name, jobStatus=status)["jobSummaryList"]
    }
    assert job_id in base64.b64decode(response["body"]).decode()
    (job,) = batch.describe_jobs(jobs=[job_id])["jobs"]
    environment_of_job = {item["name"]: item["value"] for item in job["container"]["environment"]}
    assert json.loads(environment_of_job["EVENT"]) == json.loads(event_path.read_text())

    modules: dict[str, str | None] = result["modules"]
    from_layer = ("supervisor", "handlers", "pydantic", "pydantic_core", "yaml")
    for module in (*from_layer, "aws_lambda_powertools"):
        assert str(modules.get(module)).startswith(f"{layer}/"), (module, modules.get(module))
    assert str(modules["botocore"]).startswith(f"{runtime_boto3}/"), modules["botocore"]
    # Batch mode needs botocore alone: boto3 and s3transfer are for the modes that transfer.
    assert "boto3" not in modules
    assert "s3transfer" not in modules
    outside = {
        module: path
        for module, path in modules.items()
        if path
        and module != "__main__"
        and not path.startswith((f"{layer}/", f"{runtime_boto3}/", result["stdlib"]))
    }
    assert outside == {}
    # Every module came from its .pyc as it was in the zip: none was compiled, none rewritten.
    assert _snapshot(layer) == before

    with capsys.disabled():
        print(
            f"\ncold start from the py{python}-{HOST_ARCH} layer: import handlers.lambda_handler "
            f"{result['import_s']:.3f} s, first batch-mode invocation {result['first_call_s']:.3f}"
            f" s, whole process {wall:.3f} s"
        )
