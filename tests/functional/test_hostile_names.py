"""Hostile object keys and output names never write outside the work folders.

Object keys arrive in events as S3 sends them (URL-encoded, decoded once by the parser):
with ``../`` parts, absolute, with ``%2F`` and ``%252F``, with NUL, newlines, invalid
Unicode, base names over 255 bytes and keys over 1,024 bytes.  The Lambda handler runs
each against the moto server; each is either processed under its base name inside the
input folder or refused with a message that names the key.  Before and after, the test
takes a snapshot of every file under the test's tmp folder and looks in the places a
traversal would reach (``/``, ``/tmp``, ``/etc``, the working directory) for anything
named after the key; nothing may appear outside the invocation folder, and the work
folder is empty at the end.

Scripts then try to exfiltrate files through the output folder: a link to
``/etc/passwd``, a relative link out, a chain of links, a link to a folder outside, and
the output folder itself replaced by a link to ``/etc`` (or its parent replaced); no
uploaded object may hold what those files hold.  Output names with newlines land under
their exact name (on the local provider; the moto server cannot store such keys), and a
name that is not UTF-8 is refused with a message that names it.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from handlers import lambda_handler
from supervisor.config import parse_config
from supervisor.context import InvocationContext
from supervisor.errors import InvocationError, StagingError
from supervisor.wiring import build_supervisor
from tests.functional.lambda_support import LambdaFunction, install_function

TAG = uuid.uuid4().hex[:10]
PASSWD = Path("/etc/passwd").read_bytes()

# Copies the input to the outputs under its own base name, and says which name it got.
COPY_SCRIPT = """\
set -eu
cp "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/"
printf 'name=%s\\n' "$(basename "$INPUT_FILE_PATH")"
"""


def s3_event(bucket: str, encoded_key: str) -> dict[str, Any]:
    record = {
        "eventSource": "aws:s3",
        "eventTime": "2026-11-28T10:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": encoded_key}},
    }
    return {"Records": [record]}


def objects(s3: Any, bucket: str) -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def snapshot(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def named_after(fragment: str) -> list[Path]:
    """Entries named after ``fragment`` where a traversal would write them."""
    places = {Path("/"), Path("/tmp"), Path("/etc"), Path("/etc/cron.d"), Path.cwd(), Path.home()}
    found = []
    for place in places:
        try:
            found += [entry for entry in place.iterdir() if fragment in entry.name]
        except OSError:
            continue
    return found


Install = Callable[..., LambdaFunction]


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: dict[str, str]) -> Install:
    def make(script: str, definition: dict[str, Any]) -> LambdaFunction:
        return install_function(monkeypatch, tmp_path / "fn", script, definition)

    return make


# --- object keys ----------------------------------------------------------------------------

# (the key stored in the bucket, the key as the event carries it, the local name or None
# when it must be refused, and what the refusal says)
PROCESSED = {
    "dot-dot-parts": (f"incoming/../../../tmp/dd-{TAG}.txt", None, f"dd-{TAG}.txt"),
    "absolute": (f"/etc/abs-{TAG}", None, f"abs-{TAG}"),
    "encoded-separators": (
        f"incoming/../../enc-{TAG}.txt",
        f"incoming%2F..%2F..%2Fenc-{TAG}.txt",
        f"enc-{TAG}.txt",
    ),
    "double-encoded-separators": (
        f"incoming%2F..%2Fdbl-{TAG}.txt",
        f"incoming%252F..%252Fdbl-{TAG}.txt",
        f"incoming%2F..%2Fdbl-{TAG}.txt",
    ),
    "double-slashes": (f"a//b///dbs-{TAG}", None, f"dbs-{TAG}"),
    "dots-only-name": (f"incoming/...{TAG}", None, f"...{TAG}"),
    "unicode": (
        f"données/ファイル 🎉 ñ-{TAG}.txt",
        None,
        f"ファイル 🎉 ñ-{TAG}.txt",
    ),
    "name-of-the-script": ("incoming/script.sh", None, "script.sh"),
    "name-of-the-log": ("incoming/output.log", None, "output.log"),
    "base-name-of-246-bytes": (f"in/{TAG}" + "é" * 118, None, f"{TAG}" + "é" * 118),
    "key-over-1024-bytes": ("d/" * 520 + f"long-{TAG}.txt", None, f"long-{TAG}.txt"),
}

REFUSED = {
    "nul": (f"incoming/nul\x00-{TAG}.txt", f"incoming/nul%00-{TAG}.txt", "NUL"),
    "base-name-over-255-bytes": (f"in/{TAG}" + "x" * 250, None, "longer than 246 bytes"),
    # Under the file system's 255 bytes, but not with a download's temporary suffix.
    "base-name-of-255-bytes": (f"in/{TAG}" + "é" * 122 + "x", None, "longer than 246 bytes"),
    "multibyte-name-over-255-bytes": (f"in/{TAG}" + "€" * 82, None, "longer than 246 bytes"),
    "dot-dot-name": (f"incoming/{TAG}/..", None, "is not a file name"),
    "encoded-dot-dot": (f"{TAG}/..", f"{TAG}%2F%2E%2E", "is not a file name"),
    "lone-surrogate": (None, f"incoming/\ud800-{TAG}", "cannot be encoded"),
}


@pytest.mark.parametrize(
    ("stored", "encoded", "local"), PROCESSED.values(), ids=list(PROCESSED.keys())
)
def test_a_hostile_key_is_processed_under_its_base_name_inside_the_input_folder(
    install: Install,
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
    stored: str,
    encoded: str | None,
    local: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    data = os.urandom(512)
    s3.put_object(Bucket=source, Key=stored, Body=data)
    function = install(COPY_SCRIPT, {"output": [{"path": f"{out}/results"}]})
    before = snapshot(tmp_path)

    response = lambda_handler.handler(
        s3_event(source, encoded or quote_plus(stored)), function.context()
    )

    assert response["statusCode"] == 200
    assert base64.b64decode(response["body"]).decode() == f"name={local}\n"
    assert objects(s3, out) == {f"results/{local}": data}
    assert snapshot(tmp_path) - before <= {function.work_dir}
    assert list(function.work_dir.iterdir()) == []
    assert named_after(TAG) == []


@pytest.mark.parametrize(
    ("stored", "encoded", "reason"), REFUSED.values(), ids=list(REFUSED.keys())
)
def test_a_key_that_cannot_be_a_file_name_is_refused_naming_it(
    install: Install,
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
    mark_dir: Path,
    stored: str | None,
    encoded: str | None,
    reason: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    if stored is not None:
        s3.put_object(Bucket=source, Key=stored, Body=b"hostile")
    function = install(
        f'touch "{mark_dir}/ran"\n' + COPY_SCRIPT, {"output": [{"path": f"{out}/results"}]}
    )
    event = s3_event(source, encoded or quote_plus(str(stored)))
    key = json.loads(json.dumps(event))["Records"][0]["s3"]["object"]["key"]
    expected_key = stored if stored is not None else key
    before = snapshot(tmp_path)

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(event, function.context())

    message = str(raised.value)
    assert reason in message
    assert repr(expected_key) in message
    assert "\n" not in message
    assert not (mark_dir / "ran").exists()
    assert objects(s3, out) == {}
    assert snapshot(tmp_path) - before <= {function.work_dir}
    assert list(function.work_dir.iterdir()) == []
    assert named_after(TAG) == []


def test_a_hostile_bucket_name_is_refused_naming_it(
    install: Install, tmp_path: Path, mark_dir: Path
) -> None:
    function = install(f'touch "{mark_dir}/ran"\n' + COPY_SCRIPT, {})
    bucket = f"../../{TAG}"

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_event(bucket, "key.txt"), function.context())

    assert bucket in str(raised.value)
    assert not (mark_dir / "ran").exists()
    assert list(function.work_dir.iterdir()) == []
    assert named_after(TAG) == []


# --- links out of the output folder ---------------------------------------------------------

EXFILTRATING = {
    "link-to-passwd": 'ln -s /etc/passwd "$TMP_OUTPUT_DIR/passwd.txt"',
    "relative-link-out": 'ln -s ../../../../../../../../etc/passwd "$TMP_OUTPUT_DIR/rel.txt"',
    "chain-of-links": (
        'ln -s /etc/passwd "$TMP_OUTPUT_DIR/.hop"\nln -s .hop "$TMP_OUTPUT_DIR/chain.txt"'
    ),
    "link-to-the-input": 'ln -s "$INPUT_FILE_PATH" "$TMP_OUTPUT_DIR/input-link.txt"',
    "link-to-a-folder-outside": 'ln -s /etc "$TMP_OUTPUT_DIR/etc"',
    "link-in-a-subfolder": (
        'mkdir "$TMP_OUTPUT_DIR/sub"\nln -s /etc/passwd "$TMP_OUTPUT_DIR/sub/passwd"'
    ),
}


@pytest.mark.parametrize("trick", EXFILTRATING.values(), ids=list(EXFILTRATING.keys()))
def test_no_link_exfiltrates_a_file_from_outside_the_output_folder(
    install: Install,
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
    trick: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/data.txt", Body=b"the input")
    script = f'set -eu\necho kept > "$TMP_OUTPUT_DIR/kept.txt"\n{trick}\necho done\n'
    function = install(script, {"output": [{"path": f"{out}/results"}]})
    before = snapshot(tmp_path)

    response = lambda_handler.handler(s3_event(source, "incoming/data.txt"), function.context())

    assert response["statusCode"] == 200
    landed = objects(s3, out)
    assert not [key for key, data in landed.items() if data == PASSWD or b"root:x:0:0" in data]
    assert not [key for key, data in landed.items() if data == b"the input"]
    assert landed == {"results/kept.txt": b"kept\n"}
    assert snapshot(tmp_path) - before <= {function.work_dir}
    assert list(function.work_dir.iterdir()) == []


SWAPPING = {
    "output-folder-replaced-by-a-link-to-etc": (
        'rm -rf "$TMP_OUTPUT_DIR"\nln -s /etc "$TMP_OUTPUT_DIR"',
        "output",
    ),
    "invocation-folder-replaced-by-a-link": (
        'work=$(dirname "$TMP_OUTPUT_DIR")\ncd /\n'
        'mkdir -p "$EVIL/output"\ncp /etc/passwd "$EVIL/output/passwd"\n'
        'mv "$work" "$EVIL/moved"\nln -s "$EVIL" "$work"',
        "invocation-",
    ),
}


@pytest.mark.parametrize(("trick", "folder"), SWAPPING.values(), ids=list(SWAPPING.keys()))
def test_a_script_that_swaps_its_folders_for_links_uploads_nothing(
    install: Install,
    s3: Any,
    make_bucket: Callable[[str], str],
    tmp_path: Path,
    trick: str,
    folder: str,
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/data.txt", Body=b"the input")
    evil = tmp_path / "evil"
    script = f'set -eu\necho kept > "$TMP_OUTPUT_DIR/kept.txt"\n{trick}\necho done\n'
    function = install(
        script,
        {
            "output": [{"path": f"{out}/results"}],
            "container": {"environment": {"Variables": {"EVIL": str(evil)}}},
        },
    )

    with pytest.raises(InvocationError) as raised:
        lambda_handler.handler(s3_event(source, "incoming/data.txt"), function.context())

    message = str(raised.value)
    assert "replaced the folder" in message
    assert f"/{folder}" in message
    assert objects(s3, out) == {}
    assert Path("/etc/hostname").exists() or Path("/etc/passwd").exists(), "/etc is intact"


# --- output names ---------------------------------------------------------------------------


def local_supervisor(tmp_path: Path, script: str) -> tuple[Any, Path]:
    storage = tmp_path / "storage"
    (storage / "in").mkdir(parents=True)
    (storage / "in" / "data.txt").write_bytes(b"data")
    (tmp_path / "process.sh").write_text(script)
    config = parse_config(
        json.dumps(
            {
                "name": "names",
                "init_script": str(tmp_path / "process.sh"),
                "output": [{"path": "out/results"}],
            }
        )
    )
    supervisor = build_supervisor(
        config,
        platform="local",
        environ={"PATH": os.environ["PATH"]},
        work_root=tmp_path / "work",
        storage_root=storage,
    )
    supervisor.prepare()
    return supervisor, storage


def test_output_names_with_newlines_land_under_their_exact_name(tmp_path: Path) -> None:
    supervisor, storage = local_supervisor(
        tmp_path,
        'printf one > "$TMP_OUTPUT_DIR/$(printf "two\\nlines.txt")"\n'
        'printf two > "$TMP_OUTPUT_DIR/$(printf "\\ncr\\r.txt")"\n',
    )

    outcome = supervisor.invoke(s3_event("in", "data.txt"), InvocationContext.local("names"))

    assert outcome.status == "succeeded", outcome.summary()
    results = storage / "out" / "results"
    assert {path.name: path.read_bytes() for path in results.iterdir()} == {
        "two\nlines.txt": b"one",
        "\ncr\r.txt": b"two",
    }
    assert list((tmp_path / "work").iterdir()) == []


def test_an_output_name_that_is_not_utf8_is_refused_naming_it(
    install: Install, s3: Any, make_bucket: Callable[[str], str]
) -> None:
    source, out = make_bucket("in"), make_bucket("out")
    s3.put_object(Bucket=source, Key="incoming/data.txt", Body=b"data")
    function = install(
        'printf x > "$TMP_OUTPUT_DIR/$(printf "bad\\377name")"\n'
        'printf y > "$TMP_OUTPUT_DIR/good.txt"\n',
        {"output": [{"path": f"{out}/results"}]},
    )

    with pytest.raises((InvocationError, StagingError)) as raised:
        lambda_handler.handler(s3_event(source, "incoming/data.txt"), function.context())

    message = str(raised.value)
    assert repr("bad\udcffname").strip("'") in message
    assert "UTF-8" in message
    assert list(function.work_dir.iterdir()) == []
