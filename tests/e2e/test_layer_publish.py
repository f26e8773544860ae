"""``python -m supervisor layer publish`` against the moto server's Lambda.

The command runs in a subprocess with the moto server as its AWS endpoint, as a user runs
it against AWS.  The quick tests publish zips shaped like the layer (the supervisor's
``__init__.py`` with a version) and read back, region by region, what Lambda holds: the
layer versions, their runtimes, architectures, licence, description and permissions.

The slow test builds the real layer for this machine's Python and architecture through the
command, creates a function with the printed ARN in moto, reads the function's layer back
and checks that its bytes are the zip that was published (moto keeps no copy to download),
then runs that zip as the Lambda runtime would: unzipped, in a bare Python with only the
layer and the runtime's boto3 and awslambdaric on ``sys.path``, awslambdaric's bootstrap
serving a Runtime API (``runtime_api.RuntimeAPI``), on an upload in the moto server's S3.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

import supervisor
from supervisor import publish
from tests.e2e.runtime_api import RuntimeAPI

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's
HOST_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def fake_layer(folder: Path, python: str, arch: str, version: str = "9.8.7") -> Path:
    """A zip laid out like the layer, holding the supervisor's version."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"serverless-supervisor-py{python}-{arch}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("python/supervisor/__init__.py", f'__version__ = "{version}"\n')
        archive.writestr("python/handlers/lambda_handler.py", "def handler(e, c):\n    pass\n")
    return path


@pytest.fixture
def lambda_in(aws_env: dict[str, str]) -> Callable[[str], Any]:
    def client(region: str) -> Any:
        return boto3.client("lambda", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=region)

    return client


@pytest.fixture
def cli(
    aws_env: dict[str, str], clean_environ: dict[str, str], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``python -m supervisor layer publish ARGS`` with the moto server as AWS.

    PATH and pyenv's folder are empty: no interpreter can build a zip missing from
    ``--zip-dir``, so the quick tests never start a build."""
    pyenv, programs = tmp_path / "pyenv", tmp_path / "bin"
    (pyenv / "versions").mkdir(parents=True)
    programs.mkdir()

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            **clean_environ,
            **aws_env,
            "PATH": str(programs),
            "PYENV_ROOT": str(pyenv),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "supervisor", "layer", "publish", *args],
            env=environment,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    return run


def _policy(client: Any, name: str, number: int) -> list[dict[str, Any]]:
    policy = client.get_layer_version_policy(LayerName=name, VersionNumber=number)["Policy"]
    statements: list[dict[str, Any]] = json.loads(policy)["Statement"]
    return statements


def test_every_zip_goes_to_every_region_public_with_its_runtime_and_architecture(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    lambda_in: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    zips = tmp_path / "zips"
    for python in ("3.12", "3.13"):
        for arch in ("x86_64", "arm64"):
            fake_layer(zips, python, arch)
    name = f"sup{uuid.uuid4().hex[:8]}"
    out = tmp_path / "arns.json"

    done = cli("--regions", "eu-west-1,us-east-1", "--public", "--zip-dir", str(zips),
               "--name", name, "--json", str(out))  # fmt: skip

    assert done.returncode == 0, done.stderr
    published = json.loads(out.read_text())
    layers = published["layers"]
    assert len(layers) == 8
    assert {(item["region"], item["python"], item["architecture"]) for item in layers} == {
        (region, python, arch)
        for region in ("eu-west-1", "us-east-1")
        for python in ("3.12", "3.13")
        for arch in ("x86_64", "arm64")
    }
    # 3.11 and 3.14 have no zip here and no interpreter to build one: named, not published.
    assert [item["python"] for item in published["skipped"]] == ["3.11", "3.14"]
    assert "skipped Python 3.14: no Python 3.14 on this machine" in done.stderr
    assert published["handler"] == "handlers.lambda_handler.handler"
    table = done.stdout.splitlines()
    assert table[0].split() == ["REGION", "PYTHON", "ARCH", "LAYER", "VERSION", "ARN"]
    assert len(table) == 9
    for item in layers:
        region, python, arch = item["region"], item["python"], item["architecture"]
        layer_name = f"{name}-python{python.replace('.', '')}-{arch}"
        arn = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{layer_name}:1"
        assert item["arn"] == arn
        assert f"{region}  {python}    {arch:<6}  {arn}" in table
        client = lambda_in(region)
        version = client.get_layer_version(LayerName=layer_name, VersionNumber=1)
        assert version["LayerVersionArn"] == arn
        assert version["CompatibleRuntimes"] == [f"python{python}"]
        assert version["CompatibleArchitectures"] == [arch]
        assert version["LicenseInfo"] == "Apache-2.0"
        assert version["Description"] == (
            f"serverless-supervisor 9.8.7 for Python {python} on {arch}; "
            "handler handlers.lambda_handler.handler"
        )
        zip_bytes = (zips / f"serverless-supervisor-py{python}-{arch}.zip").read_bytes()
        sha = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
        assert version["Content"]["CodeSha256"] == item["code_sha256"] == sha
        (statement,) = _policy(client, layer_name, 1)
        assert statement["Action"] == "lambda:GetLayerVersion"
        assert statement["Principal"] == "*"
        assert statement["Effect"] == "Allow"
    assert "shared with every AWS account" in done.stderr


def test_accounts_are_granted_one_by_one_and_only_the_asked_targets_are_published(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    lambda_in: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    zips = tmp_path / "zips"
    for arch in ("x86_64", "arm64"):
        fake_layer(zips, "3.12", arch)
        fake_layer(zips, "3.13", arch)
    name = f"sup{uuid.uuid4().hex[:8]}"

    done = cli("--regions", "eu-central-1", "--account", "111122223333", "--account",
               "444455556666", "--python", "3.12", "--arch", "arm64", "--zip-dir", str(zips),
               "--name", name)  # fmt: skip

    assert done.returncode == 0, done.stderr
    client = lambda_in("eu-central-1")
    names = {layer["LayerName"] for layer in client.list_layers()["Layers"]}
    assert {n for n in names if n.startswith(name)} == {f"{name}-python312-arm64"}
    statements = _policy(client, f"{name}-python312-arm64", 1)
    principals = " ".join(str(s["Principal"]) for s in statements)
    assert "111122223333" in principals
    assert "444455556666" in principals
    assert "*" not in principals
    # Without --json, the table is written beside the zips.
    written = json.loads((zips / "layers.json").read_text())
    assert [item["shared_with"] for item in written["layers"]] == [["111122223333", "444455556666"]]


def test_without_sharing_only_the_own_account_may_use_the_layer(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    lambda_in: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    zips = tmp_path / "zips"
    fake_layer(zips, "3.13", "x86_64")
    name = f"sup{uuid.uuid4().hex[:8]}"

    done = cli("--regions", "us-west-2", "--python", "3.13", "--arch", "x86_64",
               "--zip-dir", str(zips), "--name", name)  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "shared with no other account (--public or --account to share)" in done.stderr
    client = lambda_in("us-west-2")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_layer_version_policy(LayerName=f"{name}-python313-x86_64", VersionNumber=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--regions", "eu-west-1", "--python", "3.14", "--arch", "x86_64"],
            "layer publish: error: Python 3.14: no Python 3.14 on this machine "
            "(~/.pyenv/versions/3.14.* or python3.14 on PATH) to build its zip and check it: "
            "install one, or pass --zip-dir with a zip built where there is one",
        ),
        (
            ["--regions", "eu-west-1", "--account", "12345"],
            "layer publish: error: --account 12345: an AWS account id is 12 digits, "
            "such as 123456789012",
        ),
        (
            ["--regions", "s3://eu-west-1"],
            "layer publish: error: --regions 's3://eu-west-1': expected region names separated "
            "by commas, such as eu-west-1,us-east-1",
        ),
        (
            ["--regions", "eu-west-1", "--name", "my layer"],
            "layer publish: error: --name 'my layer': letters, digits, - and _ only, at most 40 "
            "characters (the Python and the architecture are appended)",
        ),
    ],
    ids=["python-3.14-unchecked", "bad-account", "bad-region", "bad-name"],
)
def test_a_mistake_is_named_and_nothing_is_published(
    cli: Callable[..., subprocess.CompletedProcess[str]],
    lambda_in: Callable[[str], Any],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    zips = tmp_path / "zips"
    zips.mkdir()
    before = lambda_in("eu-west-1").list_layers()["Layers"]

    done = cli(*args, "--zip-dir", str(zips))

    assert done.returncode == 1
    assert message in done.stderr.splitlines()
    assert done.stdout == ""
    assert lambda_in("eu-west-1").list_layers()["Layers"] == before


def test_a_zip_that_is_not_the_layer_is_refused(
    cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    zips = tmp_path / "zips"
    zips.mkdir()
    stranger = zips / "serverless-supervisor-py3.12-x86_64.zip"
    with zipfile.ZipFile(stranger, "w") as archive:
        archive.writestr("python/other/__init__.py", "")

    done = cli("--regions", "eu-west-1", "--python", "3.12", "--arch", "x86_64",
               "--zip-dir", str(zips))  # fmt: skip

    assert done.returncode == 1
    assert (
        f"layer publish: error: {stranger} is not a serverless-supervisor layer zip: it has no "
        "readable python/supervisor/__init__.py"
    ) in done.stderr


def test_help_names_the_command_and_its_options(
    cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = cli("--help")
    top = subprocess.run(
        [sys.executable, "-m", "supervisor", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0
    for option in ("--regions", "--public", "--account", "--python", "--arch", "--name",
                   "--zip-dir", "--json"):  # fmt: skip
        assert option in done.stdout
    assert "3.11, 3.12, 3.13, 3.14" in " ".join(done.stdout.split())
    assert "publish the Lambda Layer and print its ARNs" in " ".join(top.stdout.split())


def test_public_and_accounts_together_are_a_usage_error(
    cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = cli("--regions", "eu-west-1", "--public", "--account", "111122223333")

    assert done.returncode == 2
    assert "argument --account: not allowed with argument --public" in done.stderr


def test_installed_from_a_wheel_it_asks_for_the_zips(
    cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    # The packages as a wheel installs them: no layer/ folder beside them.
    site = tmp_path / "site"
    for package in ("supervisor", "handlers", "batch_entrypoint", "faassupervisor"):
        _copy_tree(ROOT / package, site / package)

    done = cli("--regions", "eu-west-1", PYTHONPATH=str(site))

    assert done.returncode == 1, done.stderr
    assert (
        "layer publish: error: this serverless-supervisor was installed from a wheel, which "
        "cannot build the layer (layer/build.py is in the source tree only): pass --zip-dir DIR "
        "with the zips built in a clone (./build.sh layer) or taken from a release"
    ) in done.stderr.splitlines()

    zips = tmp_path / "zips"
    zips.mkdir()
    done = cli("--regions", "eu-west-1", "--python", "3.12", "--zip-dir", str(zips),
               PYTHONPATH=str(site))  # fmt: skip

    assert done.returncode == 1
    assert (
        f"{zips} has no serverless-supervisor-py3.12-x86_64.zip, serverless-supervisor-py3.12-"
        "arm64.zip, and this serverless-supervisor was installed from a wheel"
    ) in done.stderr


def _copy_tree(source: Path, destination: Path) -> None:
    for path in source.rglob("*"):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        target = destination / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())


# ---------------------------------------------------------------------------------------
# The real layer: built, published, attached to a function, run by awslambdaric.

# Runs in a Python of the layer's version with -I -S: the standard library, then only what
# Lambda's runtime puts on sys.path (the layer's python/ folder, the runtime's packages).
BOOTSTRAP = """\
import sys

layer, runtime, handler = sys.argv[1:4]
sys.path[:0] = [layer, runtime]

from awslambdaric.__main__ import main

main(["awslambdaric", handler])
"""

SCRIPT = """\
set -eu
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy-of-$(basename "$INPUT_FILE_PATH")"
echo "processed $STORAGE_OBJECT_KEY"
"""


@pytest.fixture(scope="session")
def lambda_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the Lambda Python runtime has beside the layers: boto3 and awslambdaric."""
    target = tmp_path_factory.mktemp("runtime") / "site-packages"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "--only-binary=:all:", "--target", str(target),
         "boto3", "awslambdaric"],
        check=True,
        timeout=600,
    )  # fmt: skip
    return target


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(HOST_ARCH is None, reason=f"no Lambda architecture is {platform.machine()}")
def test_a_function_created_with_the_published_arn_runs_the_layer(
    aws_env: dict[str, str],
    lambda_in: Callable[[str], Any],
    lambda_runtime: Path,
    make_bucket: Callable[[str], str],
    s3: Any,
    tmp_path: Path,
    clean_environ: dict[str, str],
) -> None:
    builder = publish.load_builder()
    assert builder is not None
    interpreter = builder.find_interpreter(PYTHON)
    if interpreter is None:
        pytest.skip(f"no bare Python {PYTHON} under ~/.pyenv/versions or on PATH")
    region = "eu-west-1"
    name = f"sup{uuid.uuid4().hex[:8]}"
    item = _publish_the_built_layer(tmp_path, region, name, {**clean_environ, **aws_env})
    arn = item["arn"]

    client = lambda_in(region)
    bucket_in, bucket_out = make_bucket("input"), make_bucket("output")
    s3.put_object(Bucket=bucket_in, Key="incoming/report.txt", Body=b"twelve bytes")
    task = tmp_path / "task"
    task.mkdir()
    (task / "process.sh").write_text(SCRIPT)
    definition = {
        "name": name,
        "execution_mode": "lambda",
        "init_script": str(task / "process.sh"),
        "input": [{"storage_provider": "s3", "path": f"{bucket_in}/incoming"}],
        "output": [{"storage_provider": "s3", "path": f"{bucket_out}/results"}],
    }
    _create_function(client, aws_env, tmp_path, name, arn, definition)

    # What Lambda would run: the function's configuration and its layer, read back.
    configuration = client.get_function_configuration(FunctionName=name)
    opt = _check_the_attached_layer(client, configuration, arn, item, tmp_path)

    runtime = _LambdaRuntime(interpreter, opt, lambda_runtime, task, tmp_path)
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": "2026-12-03T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket_in},
                    "object": {"key": "incoming/report.txt", "size": 12},
                },
            }
        ]
    }
    invocation, log = runtime.invoke(name, configuration, aws_env, event)

    assert invocation.outcome == "response", log.read_text(errors="replace")
    response = invocation.json()
    assert response["statusCode"] == 200, log.read_text(errors="replace")
    assert base64.b64decode(response["body"]).decode() == "processed incoming/report.txt\n"
    landed = s3.get_object(Bucket=bucket_out, Key="results/copy-of-report.txt")["Body"].read()
    assert landed == b"twelve bytes"


def _publish_the_built_layer(
    tmp_path: Path, region: str, name: str, environment: dict[str, str]
) -> dict[str, Any]:
    """Publish with nothing in --zip-dir: the command builds the zip there from this clone."""
    zips, out = tmp_path / "zips", tmp_path / "arns.json"
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "layer", "publish", "--regions", region,
         "--python", PYTHON, "--arch", str(HOST_ARCH), "--zip-dir", str(zips), "--name", name,
         "--account", "111122223333", "--json", str(out)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"building the Python {PYTHON} layer zips into {zips}" in done.stderr
    (item,) = json.loads(out.read_text())["layers"]
    assert item["supervisor_version"] == supervisor.__version__
    assert item["arn"] in done.stdout
    return dict(item)


def _create_function(
    client: Any,
    aws_env: dict[str, str],
    tmp_path: Path,
    name: str,
    arn: str,
    definition: dict[str, Any],
) -> None:
    """A function in moto with the layer's ARN, its handler, and the definition in FDL."""
    region = client.meta.region_name
    iam = boto3.client("iam", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=region)
    role = iam.create_role(
        RoleName=f"{name}-role",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    placeholder = tmp_path / "function.zip"
    with zipfile.ZipFile(placeholder, "w") as archive:
        archive.writestr("README", "the handler is in the layer\n")
    client.create_function(
        FunctionName=name,
        Runtime=f"python{PYTHON}",
        Role=role,
        Handler="handlers.lambda_handler.handler",
        Code={"ZipFile": placeholder.read_bytes()},
        Layers=[arn],
        Architectures=[str(HOST_ARCH)],
        Timeout=60,
        Environment={
            "Variables": {"FDL": base64.b64encode(json.dumps(definition).encode()).decode()}
        },
    )


def _check_the_attached_layer(
    client: Any, configuration: dict[str, Any], arn: str, item: dict[str, Any], tmp_path: Path
) -> Path:
    """The function's layer is the published zip, for the function's runtime and
    architecture; the zip unpacked as Lambda's /opt."""
    (attached,) = configuration["Layers"]
    assert attached["Arn"] == arn
    # (moto answers GetLayerVersionByArn with an error: the ARN's parts are asked for instead.)
    layer_arn, _, number = attached["Arn"].rpartition(":")
    layer = client.get_layer_version(LayerName=layer_arn, VersionNumber=int(number))
    assert layer["CompatibleRuntimes"] == [configuration["Runtime"]]
    assert layer["CompatibleArchitectures"] == configuration["Architectures"]
    assert layer["LicenseInfo"] == "Apache-2.0"
    zip_bytes = Path(item["zip"]).read_bytes()
    sha = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
    assert layer["Content"]["CodeSha256"] == sha
    assert layer["Content"]["CodeSize"] == len(zip_bytes)
    opt = tmp_path / "opt"
    with zipfile.ZipFile(Path(item["zip"])) as archive:
        archive.extractall(opt)
    license_file = opt / "python" / f"serverless_supervisor-{item['supervisor_version']}.dist-info"
    assert (license_file / "licenses" / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    return opt


class _LambdaRuntime:
    """The unpacked layer run as the Lambda Python runtime runs it: a bare interpreter,
    awslambdaric's bootstrap, and a Runtime API that hands it one event."""

    def __init__(
        self, interpreter: Path, opt: Path, packages: Path, task: Path, tmp_path: Path
    ) -> None:
        self.interpreter, self.opt, self.packages = interpreter, opt, packages
        self.task, self.tmp_path = task, tmp_path

    def invoke(
        self,
        name: str,
        configuration: dict[str, Any],
        aws_env: dict[str, str],
        event: dict[str, Any],
    ) -> tuple[Any, Path]:
        """The invocation of the event, answered, and the function's log."""
        tmp_path = self.tmp_path
        api = RuntimeAPI(name).start()
        bootstrap = tmp_path / "bootstrap.py"
        bootstrap.write_text(BOOTSTRAP)
        log = tmp_path / "function.log"
        environment = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            **aws_env,
            **configuration["Environment"]["Variables"],
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration['Runtime']}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/12/03/[$LATEST]{uuid.uuid4().hex}",
            "LAMBDA_TASK_ROOT": str(self.task),
            "_HANDLER": configuration["Handler"],
            "SUPERVISOR_WORK_DIR": str(tmp_path / "tmp"),
        }
        command = [str(self.interpreter), "-I", "-S", str(bootstrap), str(self.opt / "python")]
        command += [str(self.packages), configuration["Handler"]]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command, env=environment, cwd=self.task, stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            invocation = api.invoke(event, 60)
            give_up = time.monotonic() + 120
            while not invocation.done.wait(0.1):
                if process.poll() is not None or time.monotonic() > give_up:
                    pytest.fail(
                        f"no answer; the function's log:\n{log.read_text(errors='replace')}"
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)
            api.close()
        return invocation, log


def test_a_region_that_fails_stops_the_command_listing_what_was_published(
    lambda_in: Callable[[str], Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from botocore.config import Config

    zips = tmp_path / "zips"
    fake_layer(zips, "3.12", "x86_64")
    name = f"sup{uuid.uuid4().hex[:8]}"
    unreachable = "http://127.0.0.1:1"

    def client_for(region: str) -> Any:
        if region != "ap-south-2":
            return lambda_in(region)
        # The fault: this region's endpoint refuses connections.
        return boto3.client(
            "lambda",
            endpoint_url=unreachable,
            region_name=region,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5),
        )

    parser = argparse.ArgumentParser()
    publish.configure_parser(parser)
    args = parser.parse_args(
        ["--regions", "eu-west-1,ap-south-2,us-east-1", "--python", "3.12", "--arch", "x86_64",
         "--zip-dir", str(zips), "--name", name]
    )  # fmt: skip

    code = publish.run(args, client_for=client_for)

    captured = capsys.readouterr()
    assert code == 1
    arn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:{name}-python312-x86_64:1"
    assert captured.out.splitlines()[1:] == [f"eu-west-1  3.12    x86_64  {arn}"]
    assert (
        "layer publish: error: ap-south-2: publishing serverless-supervisor-py3.12-x86_64.zip as "
        f'{name}-python312-x86_64 failed: Could not connect to the endpoint URL: "{unreachable}/'
    ) in captured.err
    written = json.loads((zips / "layers.json").read_text())
    assert [item["arn"] for item in written["layers"]] == [arn]
    layer_name = f"{name}-python312-x86_64"
    later = lambda_in("us-east-1").list_layer_versions(LayerName=layer_name)["LayerVersions"]
    assert later == []
