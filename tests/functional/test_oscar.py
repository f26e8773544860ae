"""An OSCAR service's two ways in, run as OSCAR runs them: ``python -m supervisor`` in the
service's container with the definition and the script in its config folder.

OSCAR mounts the service's ``function_config.yaml`` and ``script.sh`` at ``/oscar/config``;
here ``SUPERVISOR_OSCAR_DIR`` points at a temporary folder instead (the self-contained
binary's test binds a folder at the real path inside a container).  Asynchronous jobs get
the event in ``EVENT`` (``echo $EVENT | supervisor``); synchronous calls through the
OpenFaaS watchdog pass the request body on stdin only and take stdout as the response.
MinIO is played by the moto server's S3 endpoint.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from supervisor import bootstrap
from tests.conftest import DAV_LOGIN, DAV_PASSWORD, Dav

SCRIPT = """\
echo "key=[$STORAGE_OBJECT_KEY] input=[$(cat "$INPUT_FILE_PATH")]"
tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/$(basename "$INPUT_FILE_PATH").upper"
"""


def definition(moto: str, bucket: str, *, providers: dict[str, Any] | None = None) -> str:
    """A service definition with the keys OSCAR writes (its Go ``Service`` type as YAML)."""
    minio = {"endpoint": moto, "verify": False, "region": "us-east-1"}
    service = {
        "name": "grayify",
        "memory": "256Mi",
        "cpu": "0.2",
        "image": "ghcr.io/grycap/imagemagick",
        "script": SCRIPT,
        "log_level": "INFO",
        "environment": {"Variables": {"GREETING": "hello"}},
        "input": [{"storage_provider": "minio.default", "path": f"{bucket}/in"}],
        "output": [{"storage_provider": "minio.default", "path": f"{bucket}/out"}],
        "storage_providers": {"minio": providers or {"default": minio}},
    }
    return json.dumps(service)


def minio_event(bucket: str, key: str) -> dict[str, Any]:
    path = Path(__file__).parent.parent / "events" / "minio_put.json"
    text = path.read_text().replace("input-bucket", bucket).replace("incoming/photo.jpg", key)
    event: dict[str, Any] = json.loads(text)
    return event


@pytest.fixture
def oscar_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "oscar-config"
    folder.mkdir()
    (folder / "script.sh").write_text(SCRIPT)
    return folder


def run_service(
    oscar_dir: Path,
    aws_env: dict[str, str],
    cwd: Path,
    *,
    event: Any = None,
    stdin: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """The service's container: no FUNCTION_CONFIG, no SCRIPT, the config folder mounted."""
    environment = {
        "PATH": os.environ["PATH"],
        "SUPERVISOR_OSCAR_DIR": str(oscar_dir),
        "SUPERVISOR_WORK_DIR": str(cwd / "tmp"),
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        # MinIO's keys reach the supervisor through the definition; the moto server takes any.
        "AWS_ACCESS_KEY_ID": aws_env["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": aws_env["AWS_SECRET_ACCESS_KEY"],
    }
    if event is not None:
        environment["EVENT"] = json.dumps(event)
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env=environment,
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_an_asynchronous_job_reads_minio_and_writes_the_outputs(
    oscar_dir: Path, aws_env: dict[str, str], s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    bucket = make_bucket("oscar")
    s3.put_object(Bucket=bucket, Key="in/photo one.txt", Body=b"pixels\n")
    (oscar_dir / "function_config.yaml").write_text(definition(aws_env["AWS_ENDPOINT_URL"], bucket))

    done = run_service(
        oscar_dir, aws_env, tmp_path / "job", event=minio_event(bucket, "in/photo+one.txt")
    )

    assert done.returncode == 0, done.stderr.decode()
    body = s3.get_object(Bucket=bucket, Key="out/photo one.txt.upper")["Body"].read()
    assert body == b"PIXELS\n"
    assert done.stdout == b"key=[in/photo one.txt] input=[pixels]\n"
    assert b"OSCAR service grayify" in done.stderr
    # Every key OSCAR writes is known.
    assert b"Function definition" not in done.stderr


def test_a_service_warns_of_a_key_it_does_not_know_and_goes_on(
    oscar_dir: Path, aws_env: dict[str, str], s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    """A key that a later OSCAR writes must not stop a service: a warning, on stderr."""
    bucket = make_bucket("oscar")
    s3.put_object(Bucket=bucket, Key="in/a.txt", Body=b"pixels\n")
    service = json.loads(definition(aws_env["AWS_ENDPOINT_URL"], bucket))
    service["gpu_slices"] = 2
    service["output"][0]["sufix"] = [".upper"]
    (oscar_dir / "function_config.yaml").write_text(json.dumps(service))

    done = run_service(oscar_dir, aws_env, tmp_path / "job", event=minio_event(bucket, "in/a.txt"))

    assert done.returncode == 0, done.stderr.decode()
    assert s3.get_object(Bucket=bucket, Key="out/a.txt.upper")["Body"].read() == b"PIXELS\n"
    config = oscar_dir / "function_config.yaml"
    warnings = [line for line in done.stderr.decode().splitlines() if "Function definition" in line]
    assert len(warnings) == 2, done.stderr.decode()
    assert warnings[0].endswith(
        f"Function definition: {config}: output[0]: unknown key 'sufix' (did you mean 'suffix'?)"
    )
    assert warnings[1].endswith(f"Function definition: {config}: unknown key 'gpu_slices'")


def test_a_synchronous_call_takes_the_body_on_stdin_and_answers_on_stdout(
    oscar_dir: Path, aws_env: dict[str, str], make_bucket: Any, tmp_path: Path
) -> None:
    """OSCAR's clients send a file base64-encoded; stdout is the response, logs go to stderr."""
    bucket = make_bucket("oscar")
    (oscar_dir / "function_config.yaml").write_text(definition(aws_env["AWS_ENDPOINT_URL"], bucket))

    done = run_service(
        oscar_dir, aws_env, tmp_path / "sync", stdin=base64.b64encode(b"from the caller")
    )

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"key=[] input=[from the caller]\n"
    assert b"running request" in done.stderr


def test_a_delegated_event_is_read_from_the_provider_it_names(
    oscar_dir: Path, aws_env: dict[str, str], s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    """OSCAR's delegation wraps the event: ``{"storage_provider": ID, "event": "<JSON>"}``.
    The default provider here cannot be reached: only the named one can serve the input."""
    bucket = make_bucket("oscar")
    s3.put_object(Bucket=bucket, Key="in/remote.txt", Body=b"far away\n")
    moto = aws_env["AWS_ENDPOINT_URL"]
    providers = {
        "default": {"endpoint": "http://127.0.0.1:9", "verify": False},
        "cluster2": {"endpoint": moto, "verify": False},
    }
    config = json.loads(definition(moto, bucket, providers=providers))
    config["output"] = [{"storage_provider": "minio.cluster2", "path": f"{bucket}/out"}]
    (oscar_dir / "function_config.yaml").write_text(json.dumps(config))
    wrapped = {
        "storage_provider": "minio.cluster2",
        "event": json.dumps(minio_event(bucket, "in/remote.txt")),
    }

    done = run_service(oscar_dir, aws_env, tmp_path / "delegated", event=wrapped)

    assert done.returncode == 0, done.stderr.decode()
    body = s3.get_object(Bucket=bucket, Key="out/remote.txt.upper")["Body"].read()
    assert body == b"FAR AWAY\n"


def delegated_service(
    oscar_dir: Path, moto: str, bucket: str, inputs: list[dict[str, str]] | None = None
) -> None:
    """A service whose default MinIO cannot be reached and that knows the origin cluster's
    MinIO as ``minio.cluster2`` (as OSCAR writes a replica's definition)."""
    providers = {
        "default": {"endpoint": "http://127.0.0.1:9", "verify": False},
        "cluster2": {"endpoint": moto, "verify": False},
    }
    config = json.loads(definition(moto, bucket, providers=providers))
    config["output"] = [{"storage_provider": "minio.cluster2", "path": f"{bucket}/out"}]
    if inputs is not None:
        config["input"] = inputs
    (oscar_dir / "function_config.yaml").write_text(json.dumps(config))


def test_a_delegated_record_outside_the_inputs_is_refused(
    oscar_dir: Path, aws_env: dict[str, str], s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    """The origin's provider holds the object, but not under the service's input folder."""
    bucket = make_bucket("oscar")
    s3.put_object(Bucket=bucket, Key="secrets/token.txt", Body=b"not for the service\n")
    delegated_service(oscar_dir, aws_env["AWS_ENDPOINT_URL"], bucket)
    wrapped = {
        "storage_provider": "minio.cluster2",
        "event": json.dumps(minio_event(bucket, "secrets/token.txt")),
    }

    done = run_service(oscar_dir, aws_env, tmp_path / "delegated", event=wrapped)

    assert done.returncode != 0
    stderr = done.stderr.decode()
    assert f"the object {bucket}/secrets/token.txt (minio.cluster2) is outside" in stderr
    assert f"minio.default {bucket}/in" in stderr
    assert "Traceback" not in stderr
    assert s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("KeyCount") == 0


def test_a_delegated_record_is_judged_against_the_input_of_the_provider_it_names(
    oscar_dir: Path, aws_env: dict[str, str], s3: Any, make_bucket: Any, tmp_path: Path
) -> None:
    """With an input of its own on the origin's provider, the record must lie under that
    one: lying under this cluster's input (the same path on minio.default) is not enough."""
    bucket = make_bucket("oscar")
    s3.put_object(Bucket=bucket, Key="in/remote.txt", Body=b"far away\n")
    s3.put_object(Bucket=bucket, Key="from-cluster2/remote.txt", Body=b"far away\n")
    inputs = [
        {"storage_provider": "minio.default", "path": f"{bucket}/in"},
        {"storage_provider": "minio.cluster2", "path": f"{bucket}/from-cluster2"},
    ]
    delegated_service(oscar_dir, aws_env["AWS_ENDPOINT_URL"], bucket, inputs)

    def wrapped(key: str) -> dict[str, str]:
        return {"storage_provider": "minio.cluster2", "event": json.dumps(minio_event(bucket, key))}

    refused = run_service(oscar_dir, aws_env, tmp_path / "a", event=wrapped("in/remote.txt"))
    accepted = run_service(
        oscar_dir, aws_env, tmp_path / "b", event=wrapped("from-cluster2/remote.txt")
    )

    assert refused.returncode != 0
    assert f"the object {bucket}/in/remote.txt (minio.cluster2) is outside" in (
        refused.stderr.decode()
    )
    assert accepted.returncode == 0, accepted.stderr.decode()
    body = s3.get_object(Bucket=bucket, Key="out/remote.txt.upper")["Body"].read()
    assert body == b"FAR AWAY\n"


def test_a_failing_script_fails_the_job_with_its_exit_code(
    oscar_dir: Path, aws_env: dict[str, str], make_bucket: Any, tmp_path: Path
) -> None:
    bucket = make_bucket("oscar")
    (oscar_dir / "function_config.yaml").write_text(definition(aws_env["AWS_ENDPOINT_URL"], bucket))
    (oscar_dir / "script.sh").write_text("echo broken >&2\nexit 7\n")

    done = run_service(oscar_dir, aws_env, tmp_path / "fail", stdin=b'{"x": 1}')

    assert done.returncode == 7
    assert b"broken" in done.stderr


def test_the_minio_keys_oscar_mounts_replace_its_hidden_placeholders(
    oscar_dir: Path, tmp_path: Path
) -> None:
    """OSCAR writes ``hidden`` for its MinIO keys and mounts them as files."""
    service = json.loads(definition("http://minio-service.minio:9000", "b"))
    service["storage_providers"]["minio"]["default"].update(
        {"access_key": "hidden", "secret_key": "hidden"}
    )
    service["storage_providers"]["minio"]["other"] = {
        "endpoint": "http://other:9000",
        "access_key": "own-access-key",
        "secret_key": "own-secret-key-value",
    }
    (oscar_dir / "function_config.yaml").write_text(json.dumps(service))
    secrets = tmp_path / "providers"
    for ident in ("default", "other"):
        (secrets / f"minio.{ident}").mkdir(parents=True)
        (secrets / f"minio.{ident}" / "accessKey").write_text(f"{ident}-mounted-access\n")
        (secrets / f"minio.{ident}" / "secretKey").write_text(f"{ident}-mounted-secret\n")
    environ = {"SUPERVISOR_OSCAR_DIR": str(oscar_dir), "SUPERVISOR_OSCAR_SECRETS_DIR": str(secrets)}

    loaded = bootstrap.load(environ)

    assert loaded.host_facts.platform == "oscar"
    minio = loaded.config.storage_providers.minio
    assert minio["default"].access_key is not None
    assert minio["default"].access_key.get_secret_value() == "default-mounted-access"
    assert minio["default"].secret_key is not None
    assert minio["default"].secret_key.get_secret_value() == "default-mounted-secret"
    # Keys written in the definition itself are kept.
    assert minio["other"].secret_key is not None
    assert minio["other"].secret_key.get_secret_value() == "own-secret-key-value"
    assert "default-mounted-secret" in loaded.secrets
    assert loaded.config.init_script == oscar_dir / "script.sh"


def test_outputs_go_to_a_webdav_provider(
    oscar_dir: Path, aws_env: dict[str, str], dav: Dav, tmp_path: Path
) -> None:
    """A synchronous call whose outputs go to a dCache-like WebDAV server."""
    service = json.loads(definition(aws_env["AWS_ENDPOINT_URL"], "unused"))
    service["output"] = [{"storage_provider": "webdav.dcache", "path": "data/results"}]
    service["storage_providers"]["webdav"] = {
        "dcache": {"hostname": dav.url, "login": DAV_LOGIN, "password": DAV_PASSWORD}
    }
    (oscar_dir / "function_config.yaml").write_text(json.dumps(service))

    done = run_service(oscar_dir, aws_env, tmp_path / "dav", stdin=b"not base64: plain text!")

    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"key=[] input=[not base64: plain text!]\n"
    uploaded = dav.root / "data" / "results" / "event_file.upper"
    assert uploaded.read_bytes() == b"NOT BASE64: PLAIN TEXT!"
    assert DAV_PASSWORD.encode() not in done.stderr
