"""SCAR 4.3.1, the deployment tool, deploys functions that run on this project's layer.

The real client: SCAR from PyPI in its own virtual environment (it brings its own boto3),
cached under ``build/scar-client/``, runs ``scar init`` with a function definition file
against the moto server of ``tests/conftest.py`` (endpoint and credentials through the
environment and an AWS config file, as SCAR's ``boto3.Session(profile_name=...)`` reads
them).  This project's layer zip is published first under SCAR's ``supervisor.layer_name``
with ``supervisor.version`` as its Description, so SCAR reuses it, as a user does after
following ``docs/migrating-from-faas-supervisor.md``.

What is not real, because nothing here reaches the internet:

- SCAR's look-ups on GitHub (``scar.http.request.get_file``: the release ``1.5.8``, its
  source zip and the URL of its ``supervisor`` binary) are answered in SCAR's process by
  ``_SCAR_RUNNER``, and SCAR's cache folder (``/var/tmp/cache/scar``) is moved into the
  test's folder.  The source zip it gets is the real faas-supervisor 1.5.8 distribution
  from PyPI (which holds the real ``function_handler.py`` that SCAR copies into each
  function as ``<name>.py``), laid out as GitHub's zipball, with ``extra/udocker.zip``
  holding udocker 1.3.17 (PyPI) where the release has its own udocker: SCAR runs it to load
  ``container.image_file`` into the function's zip.
- Lambda and Batch are played here.  Lambda: the function's zip as SCAR uploaded it (read
  back from moto's ``/moto-api/data.json``) extracted into a task root, the layer's
  ``python/`` on ``sys.path``, the handler ``<name>.lambda_handler`` loaded by awslambdaric's
  own loader, in a subprocess with the environment SCAR set on the function.  Two settings
  of this host are added to it: udocker's execution mode P1 with Debian's proot (Lambda has
  no ptrace and uses F1, whose tools would be downloaded) and a private ``UDOCKER_DIR``
  (Lambda's ``/tmp`` is private to the function).  Batch: the job definition's command as
  registered, with its environment and the overrides of the job our Lambda side submitted,
  in a udocker container of the function's busybox image (no Python, no C library) with
  this project's binary (``./build.sh binary``) mounted at ``/opt/faas-supervisor/bin``, as
  the host folder where SCAR's launch template puts it is mounted there.

faas-supervisor 1.5.8 itself (its own virtual environment) is run on the same inputs as a
control; ``test_faas_supervisor_control`` records which cases it handles.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from supervisor.checks import unknown_keys
from supervisor.config import parse_config
from supervisor.container import Udocker
from tests.e2e.test_binary import BINARY, BUILD_SCRIPT, Box, builder, udocker_box

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "scar-client"
SCAR_VERSION = "4.3.1"
FAAS_VERSION = "1.5.8"
LAYER_NAME = "serverless-supervisor"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PROOT = shutil.which("proot")
BUSYBOX = Path("/bin/busybox")
IMAGE = "scar/busybox:1"
APPLETS = ("sh", "cat", "tr", "wc", "echo", "ls", "env", "cp", "printf", "test", "[", "sleep")
RELEASE = "busybox for SCAR's functions\n"
TIMEOUT = 300
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(PROOT is None, reason="needs Debian's proot (apt-get install proot)"),
    pytest.mark.skipif(
        not BUSYBOX.is_file(), reason="needs /bin/busybox (apt-get install busybox-static)"
    ),
]

# Runs SCAR's own command line in SCAR's interpreter, with its GitHub look-ups answered from
# the files given in SCAR_TEST_GITHUB (a JSON object: URL -> path of the bytes to return).
_SCAR_RUNNER = """\
import json, os, sys
import scar.http.request as request
import scar.utils as utils
answers = json.loads(os.environ["SCAR_TEST_GITHUB"])
def get_file(url):
    if url not in answers:
        raise RuntimeError("no answer for %s in this test" % url)
    with open(answers[url], "rb") as answer:
        return answer.read()
request.get_file = get_file
utils.SupervisorUtils._SUPERVISOR_CACHE_DIR = os.environ["SCAR_TEST_CACHE"]
from scar.scarcli import main
sys.argv = ["scar", *sys.argv[1:]]
main()
"""

# faas-supervisor's layer gives udocker as /opt/udocker/udocker.py; SCAR runs the copy in the
# release's extra/udocker.zip as `python3 udocker/udocker.py load -i FILE` and takes the image's
# name from the second line it prints.  udocker 1.3 first announces the repository it creates,
# which the release's udocker did not: the repository is made beforehand, silently.
# --allow-root: CI runs as root, which udocker refuses by default.  faas-supervisor runs it as
# /opt/udocker/udocker.py with --execmode=F1; SCAR_TEST_EXECMODE puts this host's mode instead.
_UDOCKER_LAUNCHER = """\
#!/usr/bin/env python3
import os, subprocess, sys
if sys.argv[1:2] == ["load"]:
    made = "import sys; sys.path.insert(0, ''); from udocker.maincmd import main; main()"
    subprocess.run([sys.executable, "-c", made, "--allow-root", "--quiet", "mkrepo",
                    os.environ["UDOCKER_DIR"]], capture_output=True, check=False,
                   cwd=os.path.dirname(os.path.abspath(__file__)))
mode = os.environ.get("SCAR_TEST_EXECMODE")
if mode:
    sys.argv[1:] = ["--execmode=" + mode if a.startswith("--execmode=") else a
                    for a in sys.argv[1:]]
from udocker.maincmd import main
sys.argv[1:1] = ["--allow-root"]
sys.exit(main())
"""

_GITHUB_API = "https://api.github.com/repos/grycap/faas-supervisor"
_ZIPBALL = f"{_GITHUB_API}/zipball/{FAAS_VERSION}"
_BINARY = f"https://github.com/grycap/faas-supervisor/releases/download/{FAAS_VERSION}/supervisor"

SCRIPT = """\
#!/bin/sh
echo "script of $STORAGE_OBJECT_KEY: $# args: $*"
if [ -n "$INPUT_FILE_PATH" ] && [ -f "$INPUT_FILE_PATH" ]; then
  tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/upper.txt"
  wc -c < "$INPUT_FILE_PATH" | tr -d ' ' > "$TMP_OUTPUT_DIR/size.txt"
fi
cat /etc/image-release 2>/dev/null || echo "no image release"
echo "greeting: $GREETING"
"""
OTHER_SCRIPT = 'echo "the caller\'s script ran: $GREETING"\n'


# ---------------------------------------------------------------------------------------------
# Installed clients, cached across sessions under build/scar-client/


# faas-supervisor 1.5.8's wheel declares ``webdavclient3 (==3.14.6requests)``, which pip 23.3
# and later refuse to read (they then find no faas-supervisor 1.5.8 at all): what touches that
# wheel uses pip 23.2.
LEGACY_PIP = "pip==23.2.1"


def _venv(
    folder: Path, *requirements: str, no_deps: tuple[str, ...] = (), pip_version: str = ""
) -> Path:
    """A virtual environment with ``requirements``; made once, reused while its marker stays."""
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    wanted = json.dumps([requirements, no_deps, pip_version])
    if marker.is_file() and marker.read_text() == wanted and python.exists():
        return python
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=TIMEOUT)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if pip_version:
        subprocess.run([*pip, pip_version], check=True, timeout=TIMEOUT)
    if requirements:
        subprocess.run([*pip, *requirements], check=True, timeout=TIMEOUT)
    if no_deps:
        subprocess.run([*pip, "--no-deps", *no_deps], check=True, timeout=TIMEOUT)
    marker.write_text(wanted)
    return python


@pytest.fixture(scope="session")
def scar_python() -> Path:
    """SCAR 4.3.1 from PyPI, in its own environment: its dependencies are not ours."""
    return _venv(CACHE / f"scar-{SCAR_VERSION}", f"scar=={SCAR_VERSION}")


@pytest.fixture(scope="session")
def faas_wheel(faas_python: Path) -> Path:
    """faas-supervisor 1.5.8's distribution from PyPI (downloaded with pip 23.2)."""
    folder = CACHE / "wheels"
    name = f"faas_supervisor-{FAAS_VERSION}-py3-none-any.whl"
    if not (folder / name).is_file():
        subprocess.run(
            [
                str(faas_python),
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--dest",
                str(folder),
                f"faas-supervisor=={FAAS_VERSION}",
            ],
            check=True,
            timeout=TIMEOUT,
        )
    return folder / name


@pytest.fixture(scope="session")
def faas_python() -> Path:
    """faas-supervisor 1.5.8 from PyPI; its wheel's ``webdavclient3 (==3.14.6requests)`` is
    no valid requirement, so it is installed without dependencies and those by hand."""
    return _venv(
        CACHE / f"faas-supervisor-{FAAS_VERSION}",
        "boto3",
        "pyyaml",
        "requests",
        "setuptools<70",
        "webdavclient3==3.14.6",
        "awslambdaric",
        no_deps=(f"faas-supervisor=={FAAS_VERSION}",),
        pip_version=LEGACY_PIP,
    )


@pytest.fixture(scope="session")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project's layer for the Python running the tests, built from this checkout."""
    out = tmp_path_factory.mktemp("layer")
    version = PYTHON
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "layer" / "build.py"),
            "--python",
            version,
            "--arch",
            "x86_64",
            "--interpreter",
            f"{version}={sys.executable}",
            "--out",
            str(out),
        ],
        check=True,
        timeout=TIMEOUT,
        stdout=subprocess.DEVNULL,
    )
    (path,) = out.glob("*.zip")
    return path


@pytest.fixture(scope="session")
def layer_python(layer_zip: Path) -> Path:
    """The layer's ``python/`` folder, as Lambda extracts it to ``/opt/python``."""
    folder = layer_zip.parent / "opt"
    _extract(layer_zip.read_bytes(), folder)
    return folder / "python"


# ---------------------------------------------------------------------------------------------
# SCAR's inputs: the GitHub answers, the image, the function definition file


@pytest.fixture(scope="session")
def github(tmp_path_factory: pytest.TempPathFactory, faas_wheel: Path) -> dict[str, str]:
    """URL -> file for the look-ups SCAR makes on GitHub."""
    folder = tmp_path_factory.mktemp("github")
    udocker_zip = folder / "udocker.zip"
    package = Path(Udocker(folder, {}).environment["PYTHONPATH"]) / "udocker"
    with zipfile.ZipFile(udocker_zip, "w") as archive:
        launcher = zipfile.ZipInfo("udocker/udocker.py")
        launcher.external_attr = (stat.S_IFREG | 0o755) << 16
        archive.writestr(launcher, _UDOCKER_LAUNCHER)
        for path in sorted(package.rglob("*.py")):
            archive.write(path, f"udocker/udocker/{path.relative_to(package)}")
    top = f"grycap-faas-supervisor-{FAAS_VERSION}"
    zipball = folder / "zipball.zip"
    with zipfile.ZipFile(faas_wheel) as wheel, zipfile.ZipFile(zipball, "w") as archive:
        for name in wheel.namelist():
            if name.startswith("faassupervisor/"):
                archive.writestr(f"{top}/{name}", wheel.read(name))
        archive.write(udocker_zip, f"{top}/extra/udocker.zip")
    release = {
        "tag_name": FAAS_VERSION,
        "zipball_url": _ZIPBALL,
        "assets": [{"name": "supervisor", "browser_download_url": _BINARY}],
    }
    (folder / "release.json").write_text(json.dumps(release))
    return {
        f"{_GITHUB_API}/releases/tags/{FAAS_VERSION}": str(folder / "release.json"),
        f"{_GITHUB_API}/releases/latest": str(folder / "release.json"),
        _ZIPBALL: str(zipball),
    }


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root file system of busybox-static and its applets: no Python, no C library."""
    root = tmp_path_factory.mktemp("busybox-root")
    for folder in ("bin", "etc", "tmp", "root"):
        (root / folder).mkdir()
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "image-release").write_text(RELEASE)
    rootfs = root.parent / "busybox-rootfs.tar.gz"
    with tarfile.open(rootfs, "w:gz") as archive:
        archive.add(root, arcname=".")
    return rootfs


@pytest.fixture(scope="session")
def saved_image(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Path:
    """A ``docker save`` archive of the busybox image, made offline with udocker."""
    folder = tmp_path_factory.mktemp("saved-image")
    saved = folder / "busybox.tar"
    scratch = Udocker(folder / "udocker", {"UDOCKER_TARBALL": ""})
    for args in (["import", str(busybox_rootfs), IMAGE], ["save", "-o", str(saved), IMAGE]):
        made = scratch.call(args, TIMEOUT)
        assert made.returncode == 0, made.output
    return saved


@pytest.fixture(scope="session")
def binary() -> Path:
    """``build/binary/supervisor`` (``./build.sh binary``), built when missing or stale, as
    ``tests/e2e/test_binary.py`` builds it."""
    if builder.is_stale(BINARY):
        result = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert result.returncode == 0, f"layer/binary.py failed:\n{result.stdout}{result.stderr}"
    return BINARY


@pytest.fixture(scope="session")
def job_box(tmp_path_factory: pytest.TempPathFactory, busybox_rootfs: Path) -> Box:
    """A Batch job's container: the function's busybox image under udocker (P1), as
    ``tests/e2e/test_binary.py`` runs the binary, with Debian's proot less its ``-k``."""
    work = tmp_path_factory.mktemp("job-udocker")
    return udocker_box(work, busybox_rootfs, "job-busybox:latest")


@dataclass(frozen=True)
class Deployment:
    """What ``scar init`` made in moto: the functions by execution mode, and the bucket."""

    bucket: str
    names: Mapping[str, str]
    scar_output: str
    home: Path


def _iam_role(endpoint: str) -> str:
    """The function's role, and the Batch roles an account has (SCAR's defaults name them)."""
    iam = _client("iam", endpoint)
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    roles = {role["RoleName"] for role in iam.list_roles()["Roles"]}
    if "AWSBatchServiceRole" not in roles:
        iam.create_role(
            RoleName="AWSBatchServiceRole", Path="/service-role/", AssumeRolePolicyDocument=policy
        )
        iam.create_role(RoleName="ecsInstanceRole", AssumeRolePolicyDocument=policy)
        iam.create_instance_profile(InstanceProfileName="ecsInstanceRole")
        iam.add_role_to_instance_profile(
            InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole"
        )
    name = f"scar-lambda-{uuid.uuid4().hex[:8]}"
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy)["Role"]["Arn"])


def _scar_config(scar_python: Path, role: str, endpoint: str) -> dict[str, Any]:
    """SCAR's own default ``scar.cfg`` with the keys the migration guide tells users to set."""
    printed = subprocess.run(
        [
            str(scar_python),
            "-c",
            "import json\nfrom scar.parser.cfgfile import _DEFAULT_CFG\n"
            "print(json.dumps(_DEFAULT_CFG))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    config: dict[str, Any] = json.loads(printed.stdout)
    aws = config["aws"]
    aws["iam"]["role"] = role
    aws["lambda"]["runtime"] = f"python{PYTHON}"
    aws["lambda"]["supervisor"].update(version=FAAS_VERSION, layer_name=LAYER_NAME)
    # Batch's managed compute environments need the account's network (SCAR leaves it empty).
    ec2 = _client("ec2", endpoint)
    aws["batch"]["compute_resources"].update(
        subnets=[ec2.describe_subnets()["Subnets"][0]["SubnetId"]],
        security_group_ids=[ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]],
    )
    return config


@pytest.fixture(scope="session")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: str,
    scar_python: Path,
    github: dict[str, str],
    saved_image: Path,
    layer_zip: Path,
) -> Deployment:
    """``scar init -f functions.yaml`` with a lambda, a batch and a lambda-batch function."""
    home = tmp_path_factory.mktemp("scar-home")
    environment = _aws_environment(moto_server)
    lambda_client = _client("lambda", moto_server)
    lambda_client.publish_layer_version(
        LayerName=LAYER_NAME,
        Description=FAAS_VERSION,
        Content={"ZipFile": layer_zip.read_bytes()},
        CompatibleRuntimes=[f"python{PYTHON}"],
    )
    config_folder = home / ".scar"
    config_folder.mkdir()
    (config_folder / "scar.cfg").write_text(
        json.dumps(_scar_config(scar_python, _iam_role(moto_server), moto_server), indent=2)
    )
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = {AWS_ACCESS_KEY_ID}\n"
        "aws_secret_access_key = {AWS_SECRET_ACCESS_KEY}\n".format(**environment)
    )
    (home / ".aws" / "config").write_text(
        f"[default]\nregion = {REGION}\nendpoint_url = {moto_server}\n"
    )
    project = home / "project"
    project.mkdir()
    (project / "process.sh").write_text(SCRIPT)
    shutil.copy2(saved_image, project / "busybox.tar")
    suffix = uuid.uuid4().hex[:8]
    bucket = f"scar-data-{suffix}"
    names = {mode: f"scar-{mode}-{suffix}" for mode in ("lambda", "batch", "lambda-batch")}
    functions = []
    for mode, name in names.items():
        functions.append(
            {
                "lambda": {
                    "name": name,
                    "execution_mode": mode,
                    "init_script": "process.sh",
                    "deployment": {"bucket": f"scar-deploy-{suffix}"},
                    # This host's udocker mode (see the module's docstring).
                    "udocker": {"execmode": "P1"},
                    "container": {
                        "image": IMAGE,
                        "image_file": "busybox.tar",
                        "environment": {"Variables": {"GREETING": "hello from the FDL"}},
                    },
                    "input": [{"storage_provider": "s3", "path": f"{bucket}/{mode}/input"}],
                    "output": [{"storage_provider": "s3", "path": f"{bucket}/{mode}/output"}],
                },
                "batch": {"environment": {"Variables": {"BATCH_ONLY": "set in batch"}}},
            }
        )
    definition = project / "functions.yaml"
    definition.write_text(yaml.safe_dump({"functions": {"aws": functions}}, sort_keys=False))
    result = subprocess.run(
        [str(scar_python), "-c", _SCAR_RUNNER, "init", "-f", str(definition)],
        env={
            **environment,
            "PATH": f"{scar_python.parent}:{os.environ['PATH']}",
            "HOME": str(home),
            "SCAR_CONFIG_FOLDER": str(config_folder),
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "SCAR_TEST_GITHUB": json.dumps(github),
            "SCAR_TEST_CACHE": str(home / "cache"),
            # udocker would download its tools to load the image; loading needs none.
            "UDOCKER_TARBALL": "",
        },
        cwd=project,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in names.values():
        assert name in {f["FunctionName"] for f in lambda_client.list_functions()["Functions"]}, (
            output
        )
    return Deployment(bucket=bucket, names=names, scar_output=output, home=home)


def _client(service: str, endpoint: str) -> Any:
    environment = _aws_environment(endpoint)
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )


def _aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001",
        "AWS_SECRET_ACCESS_KEY": "moto-secret-access-key-do-not-log",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


# ---------------------------------------------------------------------------------------------
# Lambda, played: the function's zip in a task root, the layer in /opt, awslambdaric's loader

_LAMBDA_DRIVER = """\
import json, os, sys, time, uuid
from awslambdaric.bootstrap import _get_handler
from awslambdaric.lambda_context import LambdaContext
handler = _get_handler(os.environ["_HANDLER"])
event = json.load(sys.stdin)
deadline = int(time.time() * 1000) + int(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"]) * 1000
context = LambdaContext(str(uuid.uuid4()), None, None, deadline, os.environ["TEST_ARN"])
try:
    result = {"response": handler(event, context)}
except Exception as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
with open(sys.argv[1], "w") as out:
    json.dump(result, out, default=str)
"""


@pytest.fixture(scope="session")
def lambda_runtime() -> Path:
    """What a Lambda Python runtime gives beside the layers: boto3 and awslambdaric."""
    folder = CACHE / f"lambda-runtime-py{PYTHON}"
    marker = folder / ".installed"
    if not marker.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--target",
                str(folder),
                "boto3",
                "awslambdaric",
            ],
            check=True,
            timeout=TIMEOUT,
        )
        marker.write_text("boto3 awslambdaric\n")
    return folder


def _function_zip(endpoint: str, name: str) -> bytes:
    """The zip SCAR uploaded, read back from moto: with ``deployment.bucket`` set, SCAR puts
    it in S3 as ``lambda/<name>.zip`` and creates the function from there."""
    client = _client("lambda", endpoint)
    code = client.get_function(FunctionName=name)["Code"]
    key = f"lambda/{name}.zip"
    assert code["Location"].endswith(f"/{key}"), code
    bucket = f"scar-deploy-{name.rpartition('-')[2]}"
    return bytes(_client("s3", endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


@dataclass(frozen=True)
class LambdaHost:
    """A function as Lambda would run it here: task root, /opt, /tmp and the environment."""

    name: str
    task: Path
    opt: Path
    tmp: Path
    environment: dict[str, str]
    python: list[str]

    def invoke(self, event: Any, *, timeout_s: int = 120) -> dict[str, Any]:
        result = self.tmp.parent / f"result-{uuid.uuid4().hex[:8]}.json"
        completed = subprocess.run(
            [*self.python, "-c", _LAMBDA_DRIVER, str(result)],
            input=json.dumps(event),
            env={**self.environment, "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout_s)},
            cwd=self.task,
            capture_output=True,
            text=True,
            timeout=timeout_s + 60,
            check=False,
        )
        log = completed.stdout + completed.stderr
        assert result.is_file(), log
        answer: dict[str, Any] = json.loads(result.read_text())
        answer["log"] = log
        return answer


def _extract(data: bytes, folder: Path) -> None:
    """Unzip as Lambda does: symbolic links stay links (SCAR zips with ``zip -y``, and
    udocker's repository links each image's layers into its tag folder), modes are kept."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            mode = info.external_attr >> 16
            target = folder / info.filename
            if stat.S_ISLNK(mode):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(archive.read(info).decode())
                continue
            archive.extract(info, folder)
            if mode and not info.is_dir():
                target.chmod(stat.S_IMODE(mode))


def _host_path(value: str, places: Mapping[str, Path]) -> str:
    for prefix, folder in places.items():
        if value == prefix or value.startswith(prefix + "/"):
            return str(folder) + value[len(prefix) :]
    return value


def make_lambda_host(
    folder: Path,
    endpoint: str,
    name: str,
    *,
    opt: Path,
    python: list[str],
    python_path: list[Path],
) -> LambdaHost:
    """Extract the function's zip into a task root and build the environment Lambda gives it:
    the variables SCAR set on the function, with /var/task, /opt and /tmp mapped to folders
    of this host, and udocker's proot mode (see the module's docstring)."""
    task, tmp = folder / "task", folder / "tmp"
    tmp.mkdir(parents=True)
    _extract(_function_zip(endpoint, name), task)
    client = _client("lambda", endpoint)
    configuration = client.get_function_configuration(FunctionName=name)
    places = {"/var/task": task, "/opt": opt, "/tmp": tmp}
    variables = configuration["Environment"]["Variables"]
    environment = {key: _host_path(value, places) for key, value in variables.items()}
    environment.update(
        {
            **_aws_environment(endpoint),
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "TMPDIR": str(tmp),
            "HOME": str(tmp),
            "PYTHONPATH": ":".join(str(path) for path in [task, *python_path]),
            "LAMBDA_TASK_ROOT": str(task),
            "_HANDLER": configuration["Handler"],
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{configuration['Runtime']}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration["MemorySize"]),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]0123456789abcdef",
            "TEST_ARN": configuration["FunctionArn"],
            "SUPERVISOR_WORK_DIR": str(tmp),
            "UDOCKER_USE_PROOT_EXECUTABLE": str(PROOT),
            "UDOCKER_TARBALL": "",
        }
    )
    return LambdaHost(name, task, opt, tmp, environment, python)


@pytest.fixture
def ours(
    tmp_path: Path,
    moto_server: str,
    deployment: Deployment,
    layer_python: Path,
    lambda_runtime: Path,
) -> Callable[[str], LambdaHost]:
    """A function SCAR deployed, run on this project's layer."""

    def make(mode: str) -> LambdaHost:
        return make_lambda_host(
            tmp_path / mode,
            moto_server,
            deployment.names[mode],
            opt=layer_python.parent,
            python=[str(Path(sys.base_prefix) / "bin" / "python3"), "-s", "-S"],
            python_path=[layer_python, lambda_runtime],
        )

    return make


# ---------------------------------------------------------------------------------------------
# The events SCAR's users send


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    """An S3 notification as S3 sends it (key URL-encoded, with an eventTime)."""
    encoded = urllib.parse.quote_plus(key, safe="/")
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-01-01T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": encoded, "size": 1},
                },
            }
        ]
    }


def scar_run_event(bucket: str, key: str) -> dict[str, Any]:
    """What ``scar run`` sends for a file of the input bucket: SCAR's template in
    ``parser/cfgfile.py``, the key as it is (not URL-encoded), no eventTime."""
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key},
                },
            }
        ]
    }


def status(answer: Mapping[str, Any]) -> int | None:
    """The response's statusCode; None when the handler raised (Lambda reports an error)."""
    response = answer.get("response")
    return response.get("statusCode") if isinstance(response, dict) else None


def body(answer: Mapping[str, Any]) -> str:
    response = answer.get("response")
    assert isinstance(response, dict), answer
    return base64.b64decode(response.get("body") or b"").decode(errors="replace")


def objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def jobs_of(batch: Any, queue: str) -> list[dict[str, Any]]:
    ids = set()
    statuses = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
    for status in statuses:
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]:
            ids.add(summary["jobId"])
    if not ids:
        return []
    return list(batch.describe_jobs(jobs=sorted(ids))["jobs"])


# ---------------------------------------------------------------------------------------------
# The tests


def test_scar_init_deploys_on_this_projects_layer(moto_server: str, deployment: Deployment) -> None:
    client = _client("lambda", moto_server)
    (layer,) = [
        v
        for v in client.list_layer_versions(LayerName=LAYER_NAME)["LayerVersions"]
        if v.get("Description") == FAAS_VERSION
    ]
    for mode, name in deployment.names.items():
        configuration = client.get_function_configuration(FunctionName=name)
        with zipfile.ZipFile(io.BytesIO(_function_zip(moto_server, name))) as zf:
            names = zf.namelist()
            handler_code = zf.read(f"{name}.py").decode()
            definition = yaml.safe_load(zf.read("function_config.yaml"))

        assert configuration["Handler"] == f"{name}.lambda_handler"
        assert [item["Arn"] for item in configuration["Layers"]] == [layer["LayerVersionArn"]]
        assert "import faassupervisor.supervisor" in handler_code
        assert "process.sh" in names
        assert any(n.startswith("udocker/repos/scar/busybox/1/") for n in names), names
        assert definition["execution_mode"] == mode
        assert definition["container"]["image"] == IMAGE
        variables = configuration["Environment"]["Variables"]
        assert variables["UDOCKER_REPOS"] == "/var/task/udocker/repos/"
        assert "FDL" in variables
        # Every key SCAR writes is known: no warning in the function, no error in validate.
        fdl = base64.b64decode(variables["FDL"]).decode()
        assert unknown_keys(definition) == [], definition
        assert parse_config(fdl, origin="env FDL", strict=True).warnings == ()


def test_an_s3_upload_runs_the_script_in_the_image_scar_loaded(
    moto_server: str, deployment: Deployment, ours: Callable[[str], LambdaHost]
) -> None:
    s3 = _client("s3", moto_server)
    key = "lambda/input/hello.txt"
    s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"hello scar\n")
    host = ours("lambda")

    answer = host.invoke(s3_event(deployment.bucket, key))

    assert status(answer) == 200, answer
    assert RELEASE in body(answer), answer
    assert "greeting: hello from the FDL" in body(answer)
    assert "Function definition" not in answer["log"]
    assert objects(s3, deployment.bucket, "lambda/output/") == {
        "lambda/output/": b"",  # the folder scar init created
        "lambda/output/upper.txt": b"HELLO SCAR\n",
        "lambda/output/size.txt": b"11\n",
    }


def test_scar_run_with_a_raw_key_from_its_synthetic_event(
    moto_server: str, deployment: Deployment, ours: Callable[[str], LambdaHost]
) -> None:
    s3 = _client("s3", moto_server)
    key = "lambda/input/a b+c.txt"
    s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"raw key\n")

    answer = ours("lambda").invoke(scar_run_event(deployment.bucket, key))

    assert status(answer) == 200, answer
    assert f"script of {key}" in body(answer)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, "script of : 0 args"),
        # In a function that runs an image, they are the container's command line.
        ({"cmd_args": json.dumps(["cat", "/etc/image-release"])}, RELEASE),
        (
            {"script": base64.b64encode(OTHER_SCRIPT.encode()).decode()},
            "the caller's script ran: hello from the FDL",
        ),
    ],
    ids=["empty", "cmd_args", "script"],
)
def test_scar_run_payloads(
    deployment: Deployment,
    ours: Callable[[str], LambdaHost],
    event: dict[str, Any],
    expected: str,
) -> None:
    answer = ours("lambda").invoke(event)

    assert status(answer) == 200, answer
    assert expected in body(answer)


def test_a_folder_marker_is_skipped(
    deployment: Deployment, ours: Callable[[str], LambdaHost]
) -> None:
    answer = ours("lambda").invoke(s3_event(deployment.bucket, "lambda/input/"))

    assert status(answer) == 200, answer


def run_batch_job(
    endpoint: str, job: Mapping[str, Any], box: Box, binary: Path
) -> subprocess.CompletedProcess[bytes]:
    """Run the job as Batch would: its definition's command as written, with the
    definition's environment and the job's overrides, in the function's image with the
    supervisor binary mounted at ``/opt/faas-supervisor/bin`` as SCAR's definition mounts
    the host folder where its launch template put it."""
    batch = _client("batch", endpoint)
    (definition,) = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
        "jobDefinitions"
    ]
    properties = definition["containerProperties"]
    (mount,) = properties["mountPoints"]
    environment = {e["name"]: e["value"] for e in properties.get("environment", [])}
    environment.update({e["name"]: e["value"] for e in job["container"]["environment"]})
    environment.update(
        {
            **_aws_environment(endpoint),
            "PATH": "/bin",
            "HOME": "/root",
            "AWS_BATCH_JOB_ID": job["jobId"],
            # udocker keeps the image's root file system in root's home, which no other user
            # can enter: the script runs as root, as the job's supervisor does here.
            "SUPERVISOR_SCRIPT_USER": "root",
        }
    )
    return box.run(
        properties["command"], environment, binds={binary.parent: mount["containerPath"]}
    )


def test_a_batch_function_hands_the_event_to_the_job_scar_defined(
    moto_server: str,
    deployment: Deployment,
    ours: Callable[[str], LambdaHost],
    job_box: Box,
    binary: Path,
) -> None:
    s3 = _client("s3", moto_server)
    key = "batch/input/job.txt"
    s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"batch input\n")
    name = deployment.names["batch"]
    event = s3_event(deployment.bucket, key)

    answer = ours("batch").invoke(event)

    assert status(answer) == 202, answer
    batch = _client("batch", moto_server)
    (job,) = jobs_of(batch, name)
    environment = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert json.loads(environment["EVENT"]) == event
    assert json.loads(environment["CONTEXT"])["function_name"] == name
    (definition,) = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
        "jobDefinitions"
    ]
    assert definition["containerProperties"]["command"] == [
        "/bin/sh",
        "-c",
        "echo $EVENT | /opt/faas-supervisor/bin/supervisor",
    ]

    result = run_batch_job(moto_server, job, job_box, binary)

    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 0, output
    assert "Function definition" not in output
    assert objects(s3, deployment.bucket, "batch/output/") == {
        "batch/output/": b"",
        "batch/output/upper.txt": b"BATCH INPUT\n",
        "batch/output/size.txt": b"12\n",
    }, output


def test_a_lambda_batch_function_runs_in_lambda_when_the_script_succeeds(
    moto_server: str, deployment: Deployment, ours: Callable[[str], LambdaHost]
) -> None:
    s3 = _client("s3", moto_server)
    key = "lambda-batch/input/quick.txt"
    s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"quick\n")

    answer = ours("lambda-batch").invoke(s3_event(deployment.bucket, key))

    assert status(answer) == 200, answer
    assert (
        objects(s3, deployment.bucket, "lambda-batch/output/")["lambda-batch/output/upper.txt"]
        == b"QUICK\n"
    )
    assert jobs_of(_client("batch", moto_server), deployment.names["lambda-batch"]) == []


# ---------------------------------------------------------------------------------------------
# The control: faas-supervisor 1.5.8 on the same function, the same inputs, the same loader


@pytest.fixture(scope="session")
def faas_opt(tmp_path_factory: pytest.TempPathFactory, github: dict[str, str]) -> Path:
    """faas-supervisor's layer as SCAR builds it (``lambdalayers.py``): the zips of the
    release's ``extra/`` unpacked at the layer's root, which gives /opt/udocker/udocker.py."""
    folder = tmp_path_factory.mktemp("faas-opt")
    with zipfile.ZipFile(github[_ZIPBALL]) as zipball:
        for name in zipball.namelist():
            if name.split("/", 1)[1].startswith("extra/") and name.endswith(".zip"):
                _extract(zipball.read(name), folder)
    return folder


CASES: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "s3-notification": (lambda b: s3_event(b, "lambda/input/control.txt"), "greeting: hello"),
    "scar-run-raw-key": (lambda b: scar_run_event(b, "lambda/input/x y+z.txt"), "x y+z.txt"),
    "empty": (lambda b: {}, "script of : 0 args"),
    # scar run ARGS: the container's command line in place of the script.
    "cmd_args": (
        lambda b: {"cmd_args": json.dumps(["cat", "/etc/image-release"])},
        RELEASE,
    ),
    "script": (
        lambda b: {"script": base64.b64encode(OTHER_SCRIPT.encode()).decode()},
        "the caller's script ran: hello from the FDL",
    ),
    "folder-marker": (lambda b: s3_event(b, "lambda/input/"), ""),
}


FAAS_SUPERVISOR_FAILS = frozenset({"folder-marker", "scar-run-raw-key"})


@pytest.mark.parametrize("case", sorted(CASES))
def test_faas_supervisor_control(
    tmp_path: Path,
    moto_server: str,
    deployment: Deployment,
    faas_python: Path,
    faas_opt: Path,
    ours: Callable[[str], LambdaHost],
    case: str,
) -> None:
    """Every case that faas-supervisor 1.5.8 handles, this project handles; and the two it
    does not (it raises IsADirectoryError on a folder marker and KeyError 'eventTime' on
    the event ``scar run`` makes up for a key), this project handles too."""
    s3 = _client("s3", moto_server)
    for key in ("lambda/input/control.txt", "lambda/input/x y+z.txt"):
        s3.put_object(Bucket=deployment.bucket, Key=key, Body=b"control input\n")
    make_event, expected = CASES[case]
    event = make_event(deployment.bucket)
    theirs = make_lambda_host(
        tmp_path / "faas-supervisor",
        moto_server,
        deployment.names["lambda"],
        opt=faas_opt,
        python=[str(faas_python)],
        python_path=[],
    )
    theirs.environment["SCAR_TEST_EXECMODE"] = "P1"

    control = theirs.invoke(event)
    control_works = status(control) == 200 and expected in body(control)
    (tmp_path / "control.json").write_text(json.dumps(control, indent=1))
    assert control_works == (case not in FAAS_SUPERVISOR_FAILS), control
    answer = ours("lambda").invoke(event)

    assert status(answer) == 200, answer
    assert expected in body(answer)
