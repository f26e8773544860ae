"""Resource exhaustion in Lambda: an input larger than the free space of the work folder
(``/tmp``), and a script killed by SIGKILL that the watchdog did not send (the kernel's
out-of-memory killer).

In ``lambda-batch`` mode both hand the record to Batch (``batch.delegate_on`` lists
``resources`` by default; a kill is also a ``failure``); in ``lambda`` mode they end the
invocation in an error that names the object and the reason.  An input whose size the
event gives is checked before any request to the store.  The handler runs in-process
against a real moto server over HTTP (S3 and Batch), as in ``test_delegation``.

What is real here: the work folder is a 2 MiB tmpfs that the test mounts, so the size check
reads its real free space and a download really fails with ENOSPC; the kill is a real
SIGKILL (``kill -KILL $$``: the signal the OOM killer sends, which is what the runtime can
see), and one test has the kernel's OOM killer itself kill a script that moved into a
memory cgroup with a small limit.  Those tests are skipped, with the reason, where the test
may not mount a filesystem or create a cgroup (not root).  The last tests inject the faults
instead (a free-space probe, a provider that fails with ENOSPC half-way) and run anywhere.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from handlers import lambda_handler
from supervisor import staging
from supervisor.errors import InvocationError, NoSpaceError, StagingError
from supervisor.events import Record
from supervisor.staging import Stores, UploadItem
from tests.faults import FaultProxy
from tests.functional.lambda_support import LambdaFunction, install_function
from tests.functional.test_delegation import body, job_environment, jobs_in, objects, the_job

MIB = 1024 * 1024
SMALL_TMP = 2 * MIB
BIG_INPUT = 3 * MIB
KEY = "incoming/big input.bin"

# Leaves a mark, so that a test can tell whether the script ran, and writes an output.
COPY_SCRIPT = """\
set -eu
touch "$MARK_DIR/ran"
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/copy.bin"
"""
# The signal the OOM killer sends, sent by the script to itself: the runtime sees the same
# exit (killed by signal 9, the watchdog not involved) as after a real out-of-memory kill.
SELF_KILLING_SCRIPT = """\
touch "$MARK_DIR/ran"
echo "half done" > "$TMP_OUTPUT_DIR/half.txt"
echo "allocating"
kill -KILL $$
echo "not reached"
"""
# A command of the script killed that way: the shell goes on and exits with 128 + 9.
CHILD_KILLED_SCRIPT = """\
touch "$MARK_DIR/ran"
echo "half done" > "$TMP_OUTPUT_DIR/half.txt"
sh -c 'kill -KILL $$'
"""
# Moves into a memory cgroup with a small limit, then becomes Python filling 512 MiB.
OOM_SCRIPT = """\
touch "$MARK_DIR/ran"
echo "half done" > "$TMP_OUTPUT_DIR/half.txt"
echo $$ > "$OOM_CGROUP/cgroup.procs"
exec "$PYTHON" -I -S -c 'data = b"x" * (512 * 2**20); print(len(data))'
"""


@pytest.fixture
def function_folder(tmp_path: Path) -> Path:
    """Where ``install_function`` puts the function; its work folder is ``work`` inside."""
    folder = tmp_path / "fn"
    (folder / "work").mkdir(parents=True)
    return folder


@pytest.fixture
def small_tmp(function_folder: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted on the function's work folder (``SUPERVISOR_WORK_DIR``)."""
    mount_point = function_folder / "work"
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs to fill needs root (or CAP_SYS_ADMIN) and mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_TMP},mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A memory cgroup limited to 64 MiB (no swap), below this process's own."""
    parent = _own_memory_cgroup()
    if parent is None:
        pytest.skip("no writable memory cgroup (v1 or v2) for this process")
    child = parent / f"supervisor-oom-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
    except OSError as exc:
        pytest.skip(f"cannot create a memory cgroup under {parent}: {exc}")
    try:
        if (child / "memory.max").exists():
            (child / "memory.max").write_text(str(64 * MIB))
            if (child / "memory.swap.max").exists():
                (child / "memory.swap.max").write_text("0")
        else:
            (child / "memory.limit_in_bytes").write_text(str(64 * MIB))
            if (child / "memory.memsw.limit_in_bytes").exists():
                (child / "memory.memsw.limit_in_bytes").write_text(str(64 * MIB))
        moved = subprocess.run(["/bin/sh", "-c", f'echo $$ > "{child}/cgroup.procs"'], check=False)
        if moved.returncode != 0:
            pytest.skip(f"cannot move a process into the memory cgroup {child}")
        yield child
    finally:
        for _ in range(50):
            try:
                child.rmdir()
                break
            except OSError:
                subprocess.run(["sleep", "0.1"], check=False)


def _own_memory_cgroup() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            found = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return found if os.access(found, os.W_OK) else None
    v2 = Path("/sys/fs/cgroup")
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        controls = v2 / "cgroup.controllers"
        if hierarchy == "0" and controls.is_file() and "memory" in controls.read_text().split():
            found = v2 / path.lstrip("/")
            return found if os.access(found, os.W_OK) else None
    return None


@pytest.fixture
def proxy(moto_server: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every request of the function (S3 and Batch) goes through a recording proxy."""
    with FaultProxy(moto_server) as recording:
        monkeypatch.setenv("AWS_ENDPOINT_URL", recording.url)
        yield recording


@dataclass(frozen=True)
class Deployment:
    """A function reading ``KEY`` from ``source``/incoming and writing to ``out``/results."""

    function: LambdaFunction
    source: str
    out: str

    @property
    def name(self) -> str:
        return self.function.name

    def assert_nothing_left(self, s3: Any) -> None:
        assert objects(s3, self.out) == {}, "an output was uploaded"
        assert list(self.function.work_dir.iterdir()) == [], "the invocation left files in /tmp"


Deploy = Callable[..., Deployment]


@pytest.fixture
def deploy(
    monkeypatch: pytest.MonkeyPatch,
    function_folder: Path,
    mark_dir: Path,
    aws_env: dict[str, str],
    s3: Any,
    make_bucket: Callable[[str], str],
    batch_queue: Callable[[str], str],
) -> Deploy:
    """Deploy a function reading from a fresh input bucket and writing to a fresh output one;
    ``data`` (when given) is stored as ``KEY``, and ``queue`` creates the Batch job queue."""

    def make(
        mode: str,
        script: str = COPY_SCRIPT,
        *,
        data: bytes | None = None,
        queue: bool = True,
        batch: Mapping[str, Any] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Deployment:
        source, out = make_bucket("in"), make_bucket("out")
        definition: dict[str, Any] = {
            "execution_mode": mode,
            "container": {
                "environment": {"Variables": {"MARK_DIR": str(mark_dir), **(variables or {})}}
            },
            "input": [{"storage_provider": "s3", "path": f"{source}/incoming"}],
            "output": [{"storage_provider": "s3", "path": f"{out}/results"}],
        }
        if batch is not None:
            definition["batch"] = dict(batch)
        function = install_function(monkeypatch, function_folder, script, definition)
        if data is not None:
            s3.put_object(Bucket=source, Key=KEY, Body=data)
        if queue:
            batch_queue(function.name)
        return Deployment(function, source, out)

    return make


def delegate_on(listed: list[str] | None) -> dict[str, Any] | None:
    """The ``batch`` section listing ``listed`` in ``delegate_on`` (``None``: the default)."""
    return None if listed is None else {"delegate_on": listed}


def delegated(response: dict[str, Any], batch: Any, function: str) -> tuple[Any, str]:
    """The one job submitted for ``function``, and the response's body, which names it."""
    assert response["statusCode"] == 202, body(response)
    job = the_job(batch, function)
    answer = body(response)
    assert job["jobId"] in answer
    return job, answer


def failure(event: Any, function: LambdaFunction) -> str:
    """The message of the ``InvocationError`` that invoking ``function`` must raise."""
    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(event, function.context())
    return str(raised.value)


def s3_event(load_event: Callable[[str], Any], bucket: str, size: int | None) -> Any:
    """An S3 notification for ``KEY`` (URL-encoded, as S3 sends it); no size when ``None``."""
    event = load_event("s3_put.json")
    s3 = event["Records"][0]["s3"]
    s3["bucket"]["name"] = bucket
    s3["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    s3["object"]["key"] = quote_plus(KEY)
    if size is None:
        del s3["object"]["size"]
    else:
        s3["object"]["size"] = size
    return event


def requests_to(proxy: FaultProxy, bucket: str) -> list[tuple[str, str]]:
    return [(method, path) for method, path in proxy.requests if path.startswith(f"/{bucket}")]


# --- an input larger than the free space, known from the event ------------------------------


def test_an_input_known_too_large_is_handed_to_batch_before_any_request(
    deploy: Deploy,
    small_tmp: Path,
    proxy: FaultProxy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
) -> None:
    deployed = deploy("lambda-batch", data=os.urandom(BIG_INPUT))
    event = s3_event(load_event, deployed.source, BIG_INPUT)
    context = deployed.function.context()

    response = lambda_handler.handler(event, context)

    job, answer = delegated(response, batch, deployed.name)
    assert f"{BIG_INPUT} bytes" in answer
    assert "does not fit" in answer
    env = job_environment(job)
    assert json.loads(env["EVENT"]) == event
    assert env["AWS_LAMBDA_REQUEST_ID"] == context.aws_request_id
    assert requests_to(proxy, deployed.source) == [], "the object was requested"
    assert ("POST", "/v1/submitjob") in proxy.requests, "the proxy saw no request"
    assert not (mark_dir / "ran").exists(), "the script ran"
    deployed.assert_nothing_left(s3)


def test_an_input_known_too_large_fails_naming_object_size_and_free_space(
    deploy: Deploy,
    small_tmp: Path,
    proxy: FaultProxy,
    s3: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
) -> None:
    deployed = deploy("lambda", data=os.urandom(BIG_INPUT), queue=False)
    source = deployed.source

    message = failure(s3_event(load_event, source, BIG_INPUT), deployed.function)

    assert f"s3://{source}/{KEY}" in message
    assert f"{BIG_INPUT} bytes (3.0 MiB)" in message
    assert f"{SMALL_TMP} bytes (2.0 MiB) free under {small_tmp}" in message
    assert requests_to(proxy, source) == [], "the object was requested"
    assert not (mark_dir / "ran").exists(), "the script ran"
    deployed.assert_nothing_left(s3)


@pytest.mark.parametrize(
    ("listed", "is_delegated"),
    [
        (None, True),  # the default lists resources
        (["timeout", "resources"], True),
        (["timeout", "failure"], False),
    ],
)
def test_an_input_too_large_for_the_real_disk_follows_delegate_on(
    deploy: Deploy,
    proxy: FaultProxy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    listed: list[str] | None,
    is_delegated: bool,
) -> None:
    """No mount needed: the event announces more than any disk here holds (1 PiB)."""
    claimed = 1024**5
    deployed = deploy("lambda-batch", data=b"small after all", batch=delegate_on(listed))
    source = deployed.source
    event = s3_event(load_event, source, claimed)

    if is_delegated:
        response = lambda_handler.handler(event, deployed.function.context())
        assert response["statusCode"] == 202
        assert len(jobs_in(batch, deployed.name)) == 1
    else:
        message = failure(event, deployed.function)
        assert f"s3://{source}/{KEY} is {claimed} bytes (1048576.0 GiB)" in message
        assert "batch.delegate_on does not list resources" in message
        assert jobs_in(batch, deployed.name) == []
    assert requests_to(proxy, source) == []
    deployed.assert_nothing_left(s3)


# --- a download that runs out of space ------------------------------------------------------

# The event says nothing of the size, or says less than the object holds.
SIZES = pytest.mark.parametrize("announced", [None, 11], ids=["no-size", "understated-size"])


@SIZES
def test_a_download_that_fills_the_disk_is_handed_to_batch_leaving_no_partial_file(
    deploy: Deploy,
    small_tmp: Path,
    proxy: FaultProxy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
    announced: int | None,
) -> None:
    deployed = deploy("lambda-batch", data=os.urandom(BIG_INPUT))
    event = s3_event(load_event, deployed.source, announced)

    response = lambda_handler.handler(event, deployed.function.context())

    job, answer = delegated(response, batch, deployed.name)
    assert "no space left on the device" in answer
    assert json.loads(job_environment(job)["EVENT"]) == event
    assert any(method == "GET" for method, _ in requests_to(proxy, deployed.source)), "no download"
    assert not (mark_dir / "ran").exists(), "the script ran"
    deployed.assert_nothing_left(s3)
    assert shutil.disk_usage(small_tmp).free == SMALL_TMP


@SIZES
def test_a_download_that_fills_the_disk_fails_naming_the_object(
    deploy: Deploy,
    small_tmp: Path,
    s3: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
    announced: int | None,
) -> None:
    deployed = deploy("lambda", data=os.urandom(BIG_INPUT), queue=False)
    source = deployed.source

    message = failure(s3_event(load_event, source, announced), deployed.function)

    assert f"cannot download s3://{source}/{KEY}" in message
    assert "no space left on the device" in message
    assert f"only {SMALL_TMP} bytes (2.0 MiB) free there without it" in message
    assert not (mark_dir / "ran").exists(), "the script ran"
    deployed.assert_nothing_left(s3)


def test_a_local_store_copy_that_fills_the_disk_fails_leaving_no_partial_file(
    deploy: Deploy,
    small_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    load_event: Callable[[str], Any],
    mark_dir: Path,
) -> None:
    """The same through the local storage provider (``SUPERVISOR_STORAGE_ROOT``)."""
    deployed = deploy("lambda", queue=False)
    source = deployed.source
    store = tmp_path / "store"
    (store / source / "incoming").mkdir(parents=True)
    (store / source / KEY).write_bytes(os.urandom(BIG_INPUT))
    monkeypatch.setenv("SUPERVISOR_STORAGE_ROOT", str(store))

    message = failure(s3_event(load_event, source, None), deployed.function)

    assert str(store / source / KEY) in message
    assert "no space left on the device" in message
    assert not (mark_dir / "ran").exists()
    assert list(deployed.function.work_dir.iterdir()) == []
    assert shutil.disk_usage(small_tmp).free == SMALL_TMP


# --- a script killed by SIGKILL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (SELF_KILLING_SCRIPT, "the script was killed by SIGKILL (out of memory?"),
        (CHILD_KILLED_SCRIPT, "a command it ran was killed by SIGKILL (out of memory?"),
    ],
    ids=["script", "command"],
)
def test_a_script_killed_by_sigkill_is_handed_to_batch(
    deploy: Deploy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
    script: str,
    says: str,
) -> None:
    deployed = deploy("lambda-batch", script, data=b"data")
    event = s3_event(load_event, deployed.source, 4)
    context = deployed.function.context()

    response = lambda_handler.handler(event, context)

    job, answer = delegated(response, batch, deployed.name)
    assert says in answer
    assert f"the function has {context.memory_limit_in_mb} MB" in answer
    assert json.loads(job_environment(job)["EVENT"]) == event
    assert (mark_dir / "ran").exists(), "the script did not run in Lambda"
    deployed.assert_nothing_left(s3)


@pytest.mark.parametrize(
    ("mode", "listed", "expected"),
    [
        ("lambda", None, "killed by SIGKILL (out of memory? the function has 512 MB)"),
        ("lambda-batch", ["timeout"], "batch.delegate_on does not list resources or failure"),
    ],
)
def test_a_script_killed_by_sigkill_fails_saying_so_where_not_delegated(
    deploy: Deploy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
    mode: str,
    listed: list[str] | None,
    expected: str,
) -> None:
    deployed = deploy(mode, SELF_KILLING_SCRIPT, data=b"data", batch=delegate_on(listed))

    message = failure(s3_event(load_event, deployed.source, 4), deployed.function)

    assert KEY in message
    assert expected in message
    assert (mark_dir / "ran").exists()
    assert jobs_in(batch, deployed.name) == []
    deployed.assert_nothing_left(s3)


@pytest.mark.parametrize("listed", [["timeout", "failure"], ["timeout", "resources"]])
def test_a_sigkill_is_delegated_when_delegate_on_lists_failure_or_resources(
    deploy: Deploy,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    listed: list[str],
) -> None:
    deployed = deploy("lambda-batch", SELF_KILLING_SCRIPT, data=b"data", batch=delegate_on(listed))

    response = lambda_handler.handler(
        s3_event(load_event, deployed.source, 4), deployed.function.context()
    )

    assert response["statusCode"] == 202
    assert len(jobs_in(batch, deployed.name)) == 1
    deployed.assert_nothing_left(s3)


def test_a_script_the_kernel_kills_for_memory_is_handed_to_batch(
    deploy: Deploy,
    memory_cgroup: Path,
    s3: Any,
    batch: Any,
    load_event: Callable[[str], Any],
    mark_dir: Path,
) -> None:
    """A real out-of-memory kill: the script joins a 64 MiB memory cgroup and fills 512 MiB."""
    deployed = deploy(
        "lambda-batch",
        OOM_SCRIPT,
        data=b"data",
        variables={"OOM_CGROUP": str(memory_cgroup), "PYTHON": sys.executable},
    )
    event = s3_event(load_event, deployed.source, 4)

    response = lambda_handler.handler(event, deployed.function.context())

    job, answer = delegated(response, batch, deployed.name)
    assert "the script was killed by SIGKILL (out of memory?" in answer
    assert json.loads(job_environment(job)["EVENT"]) == event
    assert (mark_dir / "ran").exists()
    deployed.assert_nothing_left(s3)


# --- injected faults: a free-space probe, a provider that fills the disk --------------------


class _Recorder:
    """A provider that records downloads and writes ``data`` (or fails like a full disk)."""

    def __init__(self, data: bytes = b"", *, fill_after: int | None = None) -> None:
        self.data = data
        self.fill_after = fill_after
        self.downloads: list[tuple[str, str]] = []

    def uri(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def download(
        self, bucket: str, key: str, dest: Path, *, timeout: float | None = None, **known: Any
    ) -> None:
        self.downloads.append((bucket, key))
        if self.fill_after is None:
            dest.write_bytes(self.data)
            return
        # What s3transfer leaves while it writes: a temporary beside the file.
        partial = dest.parent / f"{dest.name}.1a2B3c4D"
        partial.write_bytes(self.data[: self.fill_after])
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))
        except OSError as exc:
            raise StagingError(f"cannot download {self.uri(bucket, key)}", bucket=bucket) from exc

    def upload_many(
        self, items: Sequence[UploadItem], *, timeout: float | None = None
    ) -> list[str]:
        raise AssertionError("nothing is uploaded here")


def _providers(recorder: _Recorder) -> Stores:
    return Stores({("s3", "default"): lambda: recorder})


@pytest.mark.parametrize(
    ("size", "downloaded"),
    [
        (None, True),
        (10 * MIB - staging.SPACE_MARGIN, True),
        (10 * MIB - staging.SPACE_MARGIN + 1, False),
        (64 * MIB, False),
    ],
)
def test_the_size_check_keeps_a_margin_and_asks_the_injected_probe(
    tmp_path: Path, size: int | None, downloaded: bool
) -> None:
    recorder = _Recorder(b"content")
    probed: list[Path] = []

    def free_space(folder: Path) -> int:
        probed.append(folder)
        return 10 * MIB

    record = Record("s3", bucket="b", key="in/k.bin", size=size)
    input_dir = tmp_path / "input"

    if downloaded:
        dest = staging.download(record, _providers(recorder), input_dir, free_space=free_space)
        assert dest.read_bytes() == b"content"
    else:
        with pytest.raises(NoSpaceError) as raised:
            staging.download(record, _providers(recorder), input_dir, free_space=free_space)
        assert (raised.value.bucket, raised.value.key) == ("b", "in/k.bin")
        assert (raised.value.size, raised.value.free) == (size, 10 * MIB)
        assert f"s3://b/in/k.bin is {size} bytes" in str(raised.value)
        assert list(input_dir.iterdir()) == []
    assert recorder.downloads == ([("b", "in/k.bin")] if downloaded else [])
    assert probed == ([] if size is None else [input_dir])


def test_an_injected_enospc_half_way_removes_the_partial_file(tmp_path: Path) -> None:
    recorder = _Recorder(b"x" * 4096, fill_after=1000)
    record = Record("s3", bucket="b", key="in/k.bin", size=None)
    input_dir = tmp_path / "input"

    with pytest.raises(NoSpaceError) as raised:
        staging.download(record, _providers(recorder), input_dir, free_space=lambda _: 1000)

    assert "cannot download s3://b/in/k.bin to" in str(raised.value)
    assert "no space left on the device (only 1000 bytes (0.0 MiB) free" in str(raised.value)
    assert list(input_dir.iterdir()) == []
    assert isinstance(raised.value.__cause__, StagingError)


def test_other_download_errors_pass_through_unchanged(tmp_path: Path) -> None:
    class Denied(_Recorder):
        def download(
            self, bucket: str, key: str, dest: Path, *, timeout: float | None = None, **known: Any
        ) -> None:
            raise StagingError(f"cannot download {self.uri(bucket, key)}: access denied")

    record = Record("s3", bucket="b", key="k", size=None)

    with pytest.raises(StagingError) as raised:
        staging.download(record, _providers(Denied()), tmp_path / "input")

    assert not isinstance(raised.value, NoSpaceError)
    assert "access denied" in str(raised.value)
