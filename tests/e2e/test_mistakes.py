"""A new user's usual mistakes, caught with a way out: ``python -m supervisor validate``,
``workflow validate`` and ``run`` name them; a Batch job warns and goes on."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import s3_event, supervisor

ROOT = Path(__file__).resolve().parents[2]
AV_WORKFLOW = ROOT / "examples" / "av-workflow" / "workflow.yaml"

MISTAKES = """\
name: shout
init_script: shuot.sh
input:
  - {storage_provider: s3, path: 's3://uploads/in'}
outputs:
  - {storage_provider: s3, path: results/all}
output:
  - {storage_provider: s3, path: /results/text, sufix: [.txt]}
storage_providers:
  s3:
    mine: {regoin: eu-west-1}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "shout.sh").write_text(
        'tr a-z A-Z < "$INPUT_FILE_PATH" > "$TMP_OUTPUT_DIR/x.txt"\n'
    )
    inputs = tmp_path / "storage" / "uploads" / "in"
    inputs.mkdir(parents=True)
    (inputs / "hello.in").write_text("hello\n")
    (tmp_path / "event.json").write_text(s3_event("uploads", "in/hello.in"))
    return tmp_path


def test_validate_prints_every_mistake_at_once_with_a_way_out(folder: Path) -> None:
    (folder / "function.yaml").write_text(MISTAKES)

    done = supervisor("validate", "function.yaml", cwd=folder)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "function.yaml:",
        "  input[0].path: 's3://uploads/in' is invalid: write 'uploads/in' without 's3://'",
        "  unknown key 'outputs' (did you mean 'output'?)",
        "  output[0]: unknown key 'sufix' (did you mean 'suffix'?)",
        "  storage_providers.s3.mine: unknown key 'regoin' (did you mean 'region'?)",
        "  output[0].path: '/results/text' starts with '/': write 'results/text'",
        f"  init_script: 'shuot.sh' not found (looked for {folder.resolve() / 'shuot.sh'})",
    ]


def test_validate_names_a_missing_script_or_one_that_is_a_folder(folder: Path) -> None:
    (folder / "function.yaml").write_text("name: shout\ninit_script: shuot.sh\n")
    (folder / "folder.yaml").write_text("name: shout\ninit_script: storage\n")

    missing = supervisor("validate", "function.yaml", cwd=folder)
    not_a_file = supervisor("validate", "folder.yaml", cwd=folder)

    assert missing.returncode == not_a_file.returncode == 1
    assert missing.stderr.splitlines() == [
        "function.yaml:",
        f"  init_script: 'shuot.sh' not found (looked for {folder.resolve() / 'shuot.sh'})",
    ]
    assert not_a_file.stderr.splitlines() == [
        "folder.yaml:",
        f"  init_script: 'storage' is not a file ({folder.resolve() / 'storage'})",
    ]


def test_validate_checks_every_function_of_an_fdl_file(folder: Path) -> None:
    (folder / "scar.yaml").write_text(
        "functions:\n"
        "  aws:\n"
        "  - lambda: {name: good, init_script: shout.sh, memory: 512, timeout: 60}\n"
        "    batch: {vcpus: 1, compute_resources: {max_v_cpus: 2}}\n"
        "  - lambda: {name: bad, init_script: shout.sh, exection_mode: batch}\n"
        "    btach: {vcpus: 1}\n"
    )

    done = supervisor("validate", "scar.yaml", cwd=folder)
    one = supervisor("validate", "scar.yaml", "--function", "good", cwd=folder)

    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "OK: function good, execution_mode lambda (functions.aws[0])"
    ]
    assert done.stderr.splitlines() == [
        "scar.yaml:",
        "  functions.aws[1]: unknown key 'btach' (did you mean 'batch'?)",
        "scar.yaml: functions.aws[1] (bad):",
        "  unknown key 'exection_mode' (did you mean 'execution_mode'?)",
    ]
    # The keys around the functions are the file's: checked whichever function is taken.
    assert one.returncode == 1
    assert one.stdout == "OK: function good, execution_mode lambda (functions.aws[0])\n"
    assert one.stderr.splitlines() == done.stderr.splitlines()[:2]


def test_the_av_workflow_validates_both_ways() -> None:
    for command in (("validate",), ("workflow", "validate")):
        done = supervisor(*command, str(AV_WORKFLOW), cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "OK: function av-ffmpeg, execution_mode lambda-batch (functions.aws[0])",
            "OK: function av-audio2srt, execution_mode lambda-batch (functions.aws[1])",
            "OK: function av-detect, execution_mode batch (functions.aws[2])",
        ]


def test_workflow_validate_names_a_mistake_and_a_loop(tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text("true\n")
    (tmp_path / "typo.yaml").write_text(
        "functions:\n  aws:\n  - lambda:\n      name: f\n      init_script: s.sh\n"
        "      input: [{path: b/in}]\n      ouput: [{path: b/out}]\n"
    )
    (tmp_path / "loop.yaml").write_text(
        "functions:\n  aws:\n  - lambda:\n      name: f\n      init_script: s.sh\n"
        "      input: [{path: b/in}]\n      output: [{path: b/in/again}]\n"
    )

    typo = supervisor("workflow", "validate", "typo.yaml", cwd=tmp_path)
    loop = supervisor("workflow", "validate", "loop.yaml", cwd=tmp_path)

    upload = tmp_path / "file.txt"
    upload.write_text("x\n")
    run = supervisor("workflow", "run", "typo.yaml", "--upload", str(upload), cwd=tmp_path)

    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "error: typo.yaml: functions.aws[0] (f).lambda: invalid function definition:",
        "  unknown key 'ouput' (did you mean 'output'?)",
    ]
    assert typo.returncode == loop.returncode == 1
    assert typo.stderr.splitlines() == [
        "typo.yaml: functions.aws[0] (f):",
        "  unknown key 'ouput' (did you mean 'output'?)",
    ]
    assert loop.stderr.splitlines() == [
        "loop.yaml:",
        "  the functions trigger themselves (f -> f): an output folder is also an input folder "
        "on that path, so the workflow would never end",
    ]


def test_run_refuses_an_unknown_key_before_running_anything(folder: Path) -> None:
    (folder / "function.yaml").write_text(
        "name: shout\ninit_script: shout.sh\noutputs: [{path: results/all}]\n"
    )

    done = supervisor("run", "--config", "function.yaml", "--event", "event.json", cwd=folder)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "function.yaml: invalid function definition:",
        "  unknown key 'outputs' (did you mean 'output'?)",
    ]
    assert not (folder / "storage" / "results").exists()


@pytest.mark.parametrize(
    ("script", "outputs", "warning"),
    [
        (
            'echo a > "$TMP_OUTPUT_DIR/a.txt"\necho b > "$TMP_OUTPUT_DIR/b.log"\n',
            "[{path: results/text, suffix: [.txt]},"
            " {path: results/csv, prefix: [t], suffix: [.csv]}]",
            "Not uploaded, matching no output: 'b.log' (the outputs take results/text: suffix "
            "'.txt'; results/csv: prefix 't' and suffix '.csv')",
        ),
        (
            "true\n",
            "[{path: results/text}]",
            "The script wrote no file to its output folder (TMP_OUTPUT_DIR): nothing to upload",
        ),
        (
            'echo a > "$TMP_OUTPUT_DIR/a.txt"\necho b > "$TMP_OUTPUT_DIR/b.txt"\n',
            "[]",
            "The script wrote 2 file(s) to its output folder, but the function definition has "
            "no output: nothing uploaded",
        ),
    ],
)
def test_run_warns_of_outputs_that_go_nowhere(
    folder: Path, script: str, outputs: str, warning: str
) -> None:
    (folder / "s.sh").write_text(script)
    (folder / "function.yaml").write_text(f"name: f\ninit_script: s.sh\noutput: {outputs}\n")

    done = supervisor("run", "--config", "function.yaml", "--event", "event.json", cwd=folder)

    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if warning in line], done.stderr


def test_a_batch_job_warns_of_an_unknown_key_and_goes_on(folder: Path) -> None:
    definition = {
        "name": "shout",
        "execution_mode": "batch",
        "input": [{"path": "uploads/in"}],
        "output": [{"path": "/results/all"}],
        "outputs": [],
    }
    environment = {
        "PATH": os.environ["PATH"],
        "FUNCTION_CONFIG": base64.b64encode(json.dumps(definition).encode()).decode(),
        "SCRIPT": base64.b64encode((folder / "shout.sh").read_bytes()).decode(),
        "EVENT": s3_event("uploads", "in/hello.in"),
        "AWS_BATCH_JOB_ID": "job-1",
        # pytest's folders are root's alone: the script runs as the test's user.
        "SUPERVISOR_SCRIPT_USER": "root",
        "SUPERVISOR_STORAGE_ROOT": str(folder / "storage"),
        "SUPERVISOR_WORK_DIR": str(folder),
    }

    done = subprocess.run(
        [sys.executable, "-m", "supervisor"],
        env=environment,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert (folder / "storage" / "results" / "all" / "x.txt").read_text() == "HELLO\n"
    warnings = [line for line in done.stdout.splitlines() if "Function definition" in line]
    assert len(warnings) == 2, done.stdout
    assert warnings[0].endswith(
        "Function definition: env FUNCTION_CONFIG: unknown key 'outputs' (did you mean 'output'?)"
    )
    assert warnings[1].endswith(
        "Function definition: env FUNCTION_CONFIG: output[0].path: '/results/all' starts with "
        "'/': write 'results/all'"
    )
