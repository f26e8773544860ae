"""The WebDAV storage provider against a real WebDAV server (WsgiDAV) with basic auth.

The server serves a temporary folder over HTTP on a free port; what a test uploads is read
back from that folder on disk, and what it downloads is put there first.  The providers are
built from a definition shaped as OSCAR writes it (``storage_providers.webdav.ID`` with
``hostname``, ``login`` and ``password``).
"""

from __future__ import annotations

import base64
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from supervisor import staging
from supervisor.config import FunctionConfig, parse_config
from supervisor.deadline import Deadline
from supervisor.errors import DeadlineError, StagingError, UnsafeKeyError
from supervisor.event_store import EventStore
from supervisor.filtering import plan_uploads
from tests.conftest import DAV_LOGIN as LOGIN
from tests.conftest import DAV_PASSWORD as PASSWORD
from tests.conftest import Dav

TIMEOUT = 60.0


def _definition(
    dav: Dav, *, password: str = PASSWORD, outputs: str = "", more: str = ""
) -> FunctionConfig:
    """A definition as OSCAR's ``Service.ToYAML`` writes it, with a WebDAV provider (and
    ``more`` keys)."""
    outputs = outputs or (
        "- storage_provider: webdav.dcache\n  path: data/results/deep\n  suffix:\n  - .txt\n"
    )
    return parse_config(
        f"""name: dav-service
memory: 256Mi
cpu: "0.2"
log_level: INFO
image: ghcr.io/grycap/example
file_stage_in: false
input:
- storage_provider: webdav.dcache
  path: data/in
output:
{outputs}environment:
  variables: {{}}
  secrets: {{}}
storage_providers:
  minio:
    default:
      endpoint: https://minio-service.minio:9000
      verify: true
      access_key: hidden
      secret_key: hidden
      region: us-east-1
  webdav:
    dcache:
      hostname: {dav.url}
      login: {LOGIN}
      password: {password}
  onedata:
    od:
      oneprovider_host: op.example.org
      token: onedata-token-value
      space: my-space
{more}"""
    )


def test_the_input_is_downloaded_with_its_bytes(dav: Dav, tmp_path: Path) -> None:
    name = "photo 1 #50% ?é.jpg"
    (dav.root / "data" / "in").mkdir(parents=True)
    data = bytes(range(256)) * 3000
    (dav.root / "data" / "in" / name).write_bytes(data)
    providers = staging.build_providers(_definition(dav))
    input_dir = tmp_path / "input"
    input_dir.mkdir()
    dest = staging.input_path(input_dir, f"in/{name}", bucket="data")

    providers.get("webdav", "dcache").download("data", f"in/{name}", dest, timeout=TIMEOUT)

    assert dest.read_bytes() == data
    assert sorted(path.name for path in input_dir.iterdir()) == [name]


def test_outputs_are_uploaded_into_their_folders(dav: Dav, tmp_path: Path) -> None:
    config = _definition(dav)
    output_dir = tmp_path / "output"
    (output_dir / "sub dir").mkdir(parents=True)
    (output_dir / "result.txt").write_bytes(b"first result\n")
    (output_dir / "sub dir" / "second 100%.txt").write_bytes(b"\x00\x01second" * 50_000)
    (output_dir / "skipped.log").write_bytes(b"not an output")
    plans = plan_uploads(output_dir, config.output)
    providers = staging.build_providers(config)

    uris = staging.upload(plans, providers, deadline=Deadline.after(TIMEOUT))

    folder = dav.root / "data" / "results" / "deep"
    assert (folder / "result.txt").read_bytes() == b"first result\n"
    assert (folder / "sub dir" / "second 100%.txt").read_bytes() == b"\x00\x01second" * 50_000
    assert not (folder / "skipped.log").exists()
    assert sorted(uris) == [
        f"{dav.url}/data/results/deep/result.txt",
        f"{dav.url}/data/results/deep/sub dir/second 100%.txt",
    ]


def test_an_upload_replaces_the_file_and_reuses_existing_folders(dav: Dav, tmp_path: Path) -> None:
    (dav.root / "data" / "results" / "deep").mkdir(parents=True)
    (dav.root / "data" / "results" / "deep" / "result.txt").write_bytes(b"old")
    config = _definition(dav)
    output_dir = tmp_path / "output"
    output_dir.mkdir()
    (output_dir / "result.txt").write_bytes(b"new")
    providers = staging.build_providers(config)

    staging.upload(plan_uploads(output_dir, config.output), providers)

    assert (dav.root / "data" / "results" / "deep" / "result.txt").read_bytes() == b"new"


def test_a_wrong_password_fails_naming_the_provider_never_the_password(
    dav: Dav, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (dav.root / "data" / "in").mkdir(parents=True)
    (dav.root / "data" / "in" / "file.bin").write_bytes(b"data")
    wrong = "wrong-Pa55word-value"
    config = _definition(dav, password=wrong)
    providers = staging.build_providers(config)
    output_dir = tmp_path / "output"
    output_dir.mkdir()
    (output_dir / "result.txt").write_bytes(b"result")
    input_dir = tmp_path / "input"
    input_dir.mkdir()

    with pytest.raises(StagingError) as download_error:
        providers.get("webdav", "dcache").download(
            "data", "in/file.bin", input_dir / "file.bin", timeout=TIMEOUT
        )
    with pytest.raises(StagingError) as upload_error:
        staging.upload(plan_uploads(output_dir, config.output), providers)

    encoded = base64.b64encode(f"{LOGIN}:{wrong}".encode()).decode()
    for error in (download_error.value, upload_error.value):
        message = str(error)
        assert "webdav.dcache" in message
        assert "refused the login (HTTP 401)" in message
        assert wrong not in message
        assert encoded not in message
    assert wrong not in caplog.text
    assert encoded not in caplog.text
    assert list(input_dir.iterdir()) == []
    assert not (dav.root / "data" / "results").exists()
    assert wrong in config.storage_providers.secrets()


def test_a_missing_file_fails_clearly_and_leaves_nothing(dav: Dav, tmp_path: Path) -> None:
    providers = staging.build_providers(_definition(dav))
    input_dir = tmp_path / "input"
    input_dir.mkdir()

    with pytest.raises(StagingError) as caught:
        providers.get("webdav", "dcache").download(
            "data", "in/absent.bin", input_dir / "absent.bin", timeout=TIMEOUT
        )

    assert str(caught.value) == (
        f"cannot download {dav.url}/data/in/absent.bin (storage provider webdav.dcache): "
        "the file does not exist (HTTP 404)"
    )
    assert list(input_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("bucket", "key"),
    [("data", "../../outside.txt"), ("data", "in/./x"), ("..", "x"), ("data", "a//b")],
)
def test_hostile_names_are_refused_before_any_request(
    dav: Dav, tmp_path: Path, bucket: str, key: str
) -> None:
    provider = staging.build_providers(_definition(dav)).get("webdav", "dcache")
    source = tmp_path / "source.txt"
    source.write_bytes(b"x")

    with pytest.raises(UnsafeKeyError):
        provider.upload_many([staging.UploadItem(source, bucket, key)], timeout=TIMEOUT)
    with pytest.raises(UnsafeKeyError):
        provider.download(bucket, key, tmp_path / "dest", timeout=TIMEOUT)

    assert list(dav.root.iterdir()) == []
    assert not (tmp_path.parent / "outside.txt").exists()


def test_a_silent_server_is_bounded_by_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections queue up; no answer ever comes
        port = listener.getsockname()[1]
        config = _definition(Dav(f"http://127.0.0.1:{port}", tmp_path))
        provider = staging.build_providers(config).get("webdav", "dcache")
        input_dir = tmp_path / "input"
        input_dir.mkdir()
        source = tmp_path / "out.txt"
        source.write_bytes(b"x")

        with pytest.raises(DeadlineError):
            provider.download("data", "in/file", input_dir / "file", timeout=0.5)
        with pytest.raises(DeadlineError) as caught:
            provider.upload_many([staging.UploadItem(source, "data", "out.txt")], timeout=0.5)

    assert caught.value.uploaded == ()
    assert list(input_dir.iterdir()) == []


def test_an_output_to_onedata_fails_after_the_others_are_stored(
    dav: Dav, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config = _definition(
        dav,
        outputs=(
            "- storage_provider: onedata.od\n  path: space-folder/out\n"
            "- storage_provider: webdav.dcache\n  path: data/results\n"
        ),
    )
    output_dir = tmp_path / "output"
    output_dir.mkdir()
    (output_dir / "result.txt").write_bytes(b"result")
    providers = staging.build_providers(config)

    with pytest.raises(StagingError) as caught:
        staging.upload(plan_uploads(output_dir, config.output), providers)

    message = str(caught.value)
    assert "storage provider onedata.od: Onedata is not supported here" in message
    assert f"uploaded before the failure: {dav.url}/data/results/result.txt" in message
    assert (dav.root / "data" / "results" / "result.txt").read_bytes() == b"result"
    assert "onedata.od will fail: Onedata is not supported here" in caplog.text
    assert "onedata-token-value" not in message + caplog.text
    with pytest.raises(StagingError, match="Onedata is not supported here"):
        providers.get("onedata", "od").download("space-folder", "in/x", tmp_path / "x")


class _Recorder(NamedTuple):
    url: str
    requests: list[tuple[str, str, str | None]]


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    """An HTTP server that answers 404 to all and notes each request's Authorization."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[tuple[str, str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT = do_MKCOL = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Recorder(f"http://127.0.0.1:{server.server_port}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def test_a_redirect_to_another_server_does_not_carry_the_login(
    recorder: _Recorder, tmp_path: Path
) -> None:
    """dCache sends a transfer to a pool with a redirect: the pool gets no credentials."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Door(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", f"{recorder.url}/pool{self.path}?token=abc")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    door = ThreadingHTTPServer(("127.0.0.1", 0), Door)
    thread = threading.Thread(target=door.serve_forever, daemon=True)
    thread.start()
    try:
        config = _definition(Dav(f"http://127.0.0.1:{door.server_port}", tmp_path))
        provider = staging.build_providers(config).get("webdav", "dcache")
        with pytest.raises(StagingError, match=r"the file does not exist \(HTTP 404\)"):
            provider.download("data", "in/a b.txt", tmp_path / "a b.txt", timeout=TIMEOUT)
    finally:
        door.shutdown()
        door.server_close()
        thread.join(timeout=30)

    assert recorder.requests == [("GET", "/pool/data/in/a%20b.txt?token=abc", None)]


def test_an_event_kept_on_webdav_is_read_back_and_deleted(dav: Dav, tmp_path: Path) -> None:
    """``batch.event_store: webdav.dcache://data/events``: the event a Batch job reads back
    from its ``EVENT_URI`` and deletes once done."""
    config = _definition(dav, more="batch:\n  event_store: webdav.dcache://data/events\n")
    providers = staging.build_providers(config)
    event = '{"payload": "caf\u00e9"}'

    uri = EventStore(config, providers, tmp_path / "scratch").put(event)

    assert uri.startswith("webdav.dcache://data/events/")
    (kept,) = (dav.root / "data" / "events").iterdir()
    assert kept.read_text() == event
    assert staging.get_bytes(providers, uri, tmp_path / "scratch").decode() == event
    staging.delete_bytes(providers, uri)
    assert not kept.exists()
    staging.delete_bytes(providers, uri)  # already gone: nothing to do


def test_a_deletion_the_server_refuses_names_the_file(dav: Dav, tmp_path: Path) -> None:
    (dav.root / "data" / "events").mkdir(parents=True)
    (dav.root / "data" / "events" / "one.json").write_text("{}")
    providers = staging.build_providers(_definition(dav, password="wrong"))

    with pytest.raises(StagingError) as caught:
        staging.delete_bytes(providers, "webdav.dcache://data/events/one.json")

    message = str(caught.value)
    assert f"cannot delete {dav.url}/data/events/one.json (storage provider webdav.dcache)" in (
        message
    )
    assert "HTTP 401" in message
    assert "wrong" not in message
    assert (dav.root / "data" / "events" / "one.json").exists()
