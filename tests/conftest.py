"""Shared fixtures: a real moto server over HTTP, clients pointed at it, fresh buckets."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest

from handlers import lambda_handler
from supervisor import logs

EVENTS_DIR = Path(__file__).parent / "events"
ROUTED_LOGGERS = (*logs.PACKAGE_LOGGERS, *logs.LIBRARY_LOGGERS)
REGION = "us-east-1"


@pytest.fixture(autouse=True)
def fresh_process_state() -> Iterator[None]:
    """Each test starts cold: no supervisor built by the handler, logging as pytest left it."""
    lambda_handler.reset()
    saved = {
        name: (list(logger.handlers), logger.level, logger.propagate)
        for name, logger in ((n, logging.getLogger(n)) for n in ROUTED_LOGGERS)
    }
    root = logging.getLogger()
    root_handlers = list(root.handlers)
    root_filters = {handler: list(handler.filters) for handler in root_handlers}
    yield
    lambda_handler.reset()
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    for handler in list(root.handlers):
        # pytest adds and removes its own capture handlers around each test phase.
        if handler not in root_handlers and type(handler).__module__ != "_pytest.logging":
            root.removeHandler(handler)
    for handler, filters in root_filters.items():
        handler.filters[:] = filters


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server in its own process, as an S3/Batch/Logs endpoint over HTTP."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                log.close()
                raise RuntimeError(f"the moto server did not start (log: {log.name})") from None
            time.sleep(0.1)
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config",
        data=json.dumps({"batch": {"use_docker": False}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(request, timeout=5).close()
    yield endpoint
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials and endpoint for boto3 in this process and in the subprocesses it starts."""
    values = {
        "AWS_ACCESS_KEY_ID": "AKIAMOTOTESTKEY00001",
        "AWS_SECRET_ACCESS_KEY": "moto-secret-access-key-do-not-log",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_EXECUTION_ENV", "FUNCTION_CONFIG", "FDL"):
        monkeypatch.delenv(name, raising=False)
    return values


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Any:
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


@pytest.fixture
def make_bucket(s3: Any) -> Callable[[str], str]:
    """Create a bucket with a unique name starting with ``prefix``."""

    def make(prefix: str = "bucket") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        return name

    return make


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((EVENTS_DIR / name).read_text())

    return load


@pytest.fixture
def clean_environ() -> dict[str, str]:
    """The environment for a subprocess, without this session's AWS or supervisor settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {name: os.environ[name] for name in keep if name in os.environ}


@pytest.fixture
def batch(aws_env: dict[str, str]) -> Any:
    return boto3.client("batch", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)


@pytest.fixture
def batch_queue(aws_env: dict[str, str], batch: Any) -> Callable[[str], str]:
    """Create a Batch compute environment, a job queue and a job definition named ``name``."""
    iam = boto3.client("iam", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION)

    def make(name: str) -> str:
        role = iam.create_role(
            RoleName=f"{name}-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName=f"{name}-ce",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )["computeEnvironmentArn"]
        batch.create_job_queue(
            jobQueueName=name,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )
        batch.register_job_definition(
            jobDefinitionName=name,
            type="container",
            containerProperties={
                "image": "serverless-supervisor:latest",
                "command": ["python", "-m", "supervisor"],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "1"},
                    {"type": "MEMORY", "value": "1024"},
                ],
            },
        )
        return name

    return make


DAV_LOGIN = "oscar-user"
DAV_PASSWORD = "s3cr3t-Pa55word"


class Dav(NamedTuple):
    url: str
    root: Path


@pytest.fixture
def dav(tmp_path: Path) -> Iterator[Dav]:
    """A WsgiDAV server (on cheroot, as WsgiDAV runs) on a free port serving
    ``tmp_path/dav``, one login."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    root = tmp_path / "dav"
    root.mkdir()
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/": str(root)},
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "simple_dc": {"user_mapping": {"*": {DAV_LOGIN: {"password": DAV_PASSWORD}}}},
        "verbose": 1,
        "logging": {"enable": False},
    }
    server = wsgi.Server(("127.0.0.1", 0), WsgiDAVApp(config), numthreads=4)
    server.prepare()  # binds the port
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield Dav(f"http://127.0.0.1:{server.bind_addr[1]}", root)
    finally:
        server.stop()
        thread.join(timeout=30)
