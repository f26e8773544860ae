"""Reading a workflow file: several functions linked by bucket folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import BatchSettings
from supervisor.errors import ConfigError
from supervisor.workflow.definition import (
    BatchResources,
    Workflow,
    load_workflow,
    parse_workflow,
)

# The audio and video workflow of SCAR's examples: ffmpeg splits each video into its
# pictures and its sound, audio2srt writes subtitles from the sound, yolov3 finds objects
# in the pictures on a GPU in Batch.
AV_WORKFLOW = """\
functions:
  aws:
  - lambda:
      name: scar-av-workflow-ffmpeg
      container:
        image: jrottenberg/ffmpeg:4.1-ubuntu
      init_script: ffmpeg-script.sh
      execution_mode: lambda-batch
      memory: 1024
      timeout: 900
      input:
      - storage_provider: s3
        path: scar-av-workflow/start
      output:
      - storage_provider: s3
        path: scar-av-workflow/video
        suffix:
        - avi
      - storage_provider: s3
        path: scar-av-workflow/audio
        suffix:
        - wav
  - lambda:
      name: scar-av-workflow-audio2srt
      container:
        image: grycap/audio2srt:mini
      init_script: audio2srt-script.sh
      execution_mode: lambda-batch
      memory: 1024
      timeout: 900
      input:
      - storage_provider: s3
        path: scar-av-workflow/audio
      output:
      - storage_provider: s3
        path: scar-av-workflow/result
  - lambda:
      name: scar-av-workflow-yolov3
      container:
        image: grycap/yolov3:opencv-cudnn
      init_script: yolov3-script.sh
      execution_mode: batch
      memory: 128
      input:
      - storage_provider: s3
        path: scar-av-workflow/video
      output:
      - storage_provider: s3
        path: scar-av-workflow/result
    batch:
      vcpus: 4
      memory: 12288
      enable_gpu: true
      compute_resources:
        max_v_cpus: 12
        instance_types:
        - g3s.xlarge
"""

FFMPEG, AUDIO2SRT, YOLOV3 = (
    "scar-av-workflow-ffmpeg",
    "scar-av-workflow-audio2srt",
    "scar-av-workflow-yolov3",
)
BUCKET = "scar-av-workflow"


def _function(name: str, inputs: list[str], outputs: list[str], extra: str = "") -> str:
    """One entry of ``functions.aws``, in flow style."""
    ins = ", ".join(f"{{path: {path}}}" for path in inputs)
    outs = ", ".join(f"{{path: {path}}}" for path in outputs)
    return f"  - lambda: {{name: {name}, input: [{ins}], output: [{outs}]{extra}}}\n"


def _workflow(*entries: str) -> str:
    return "functions:\n  aws:\n" + "".join(entries)


@pytest.fixture
def av(tmp_path: Path) -> Workflow:
    path = tmp_path / "scar-av-workflow.yaml"
    path.write_text(AV_WORKFLOW)
    return load_workflow(path)


# --- the SCAR workflow ---------------------------------------------------------------


def test_av_workflow_functions_in_order(av: Workflow) -> None:
    assert [function.name for function in av] == [FFMPEG, AUDIO2SRT, YOLOV3]
    assert [function.config.execution_mode for function in av] == [
        "lambda-batch",
        "lambda-batch",
        "batch",
    ]
    assert len(av.functions) == 3


@pytest.mark.parametrize(
    ("name", "timeout", "memory"),
    [
        (FFMPEG, 900.0, 1024),
        (AUDIO2SRT, 900.0, 1024),
        # yolov3 gives no timeout: a deployment tool's default applies.
        (YOLOV3, 300.0, 128),
    ],
)
def test_av_workflow_lambda_limits(av: Workflow, name: str, timeout: float, memory: int) -> None:
    function = next(function for function in av if function.name == name)
    assert function.timeout == timeout
    assert function.memory_mb == memory


def test_default_timeout_and_memory() -> None:
    workflow = parse_workflow(_workflow(_function("plain", ["b/in"], ["b/out"])))
    (function,) = workflow.functions
    assert function.timeout == 300.0
    assert function.memory_mb == 512


def test_av_workflow_batch_resources(av: Workflow) -> None:
    ffmpeg, audio2srt, yolov3 = av.functions
    assert yolov3.batch == BatchResources(vcpus=4, memory_mb=12288, gpu=True, slots=3)
    # Without a batch section: one vCPU, no GPU, and nothing said on how many run at once.
    for function in (ffmpeg, audio2srt):
        assert function.batch.gpu is False
        assert function.batch.slots is None


def test_av_workflow_config_batch_still_validates(av: Workflow) -> None:
    for function in av:
        assert isinstance(function.config.batch, BatchSettings)
        assert function.config.job_queue == function.name
        assert function.config.batch.delegate_on == ("timeout", "failure", "resources")


def test_av_workflow_outputs_routed_by_suffix(av: Workflow) -> None:
    ffmpeg = av.functions[0]
    routes = {output.folder: output.suffix for output in ffmpeg.config.output}
    assert routes == {"video": ("avi",), "audio": ("wav",)}
    assert {output.bucket for output in ffmpeg.config.output} == {BUCKET}


def test_av_workflow_entry_is_the_start_folder(av: Workflow) -> None:
    assert av.entry.path == f"{BUCKET}/start"


def test_av_workflow_path_is_the_file(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(AV_WORKFLOW)
    assert load_workflow(path).path == path


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("start/movie.mp4", [FFMPEG]),
        ("start/2024/01/movie.mp4", [FFMPEG]),
        ("video/movie.avi", [YOLOV3]),
        ("audio/movie.wav", [AUDIO2SRT]),
        ("audio/deep/down/movie.wav", [AUDIO2SRT]),
        ("result/movie.srt", []),
        ("start2/movie.mp4", []),  # a sibling folder whose name starts alike
        ("startmovie.mp4", []),
        ("start", []),  # the folder's name alone is not an object inside it
        ("movie.mp4", []),
    ],
)
def test_av_workflow_triggered_by(av: Workflow, key: str, expected: list[str]) -> None:
    assert [function.name for function in av.triggered_by(BUCKET, key)] == expected


def test_another_bucket_triggers_nothing(av: Workflow) -> None:
    assert av.triggered_by("another-bucket", "start/movie.mp4") == []
    ffmpeg = av.functions[0]
    assert ffmpeg.triggered_by(BUCKET, "start/movie.mp4")
    assert not ffmpeg.triggered_by("another-bucket", "start/movie.mp4")


@pytest.mark.parametrize("key", ["movie.mp4", "start/movie.mp4", "a/b/c/d.txt"])
def test_a_bucket_input_matches_every_key(key: str) -> None:
    workflow = parse_workflow(_workflow(_function("whole", ["inbox"], ["outbox/done"])))
    assert [function.name for function in workflow.triggered_by("inbox", key)] == ["whole"]
    assert workflow.triggered_by("outbox", key) == []


# --- init_script and storage providers -------------------------------------------------


def test_init_script_relative_to_the_workflow_file(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    path = folder / "scar-av-workflow.yaml"
    path.write_text(AV_WORKFLOW)
    workflow = load_workflow(path)
    scripts = [function.config.init_script for function in workflow]
    base = folder.resolve()
    assert scripts == [
        base / "ffmpeg-script.sh",
        base / "audio2srt-script.sh",
        base / "yolov3-script.sh",
    ]


def test_init_script_absolute_stays(tmp_path: Path) -> None:
    script = tmp_path / "elsewhere" / "run.sh"
    path = tmp_path / "flow.yaml"
    path.write_text(
        _workflow(_function("f", ["b/in"], ["b/out"], extra=f", init_script: '{script}'"))
    )
    assert load_workflow(path).functions[0].config.init_script == script


def test_parse_without_base_keeps_a_relative_init_script() -> None:
    workflow = parse_workflow(AV_WORKFLOW)
    assert workflow.functions[0].config.init_script == Path("ffmpeg-script.sh")


def test_shared_storage_providers_reach_every_function() -> None:
    text = (
        AV_WORKFLOW
        + """\
storage_providers:
  s3:
    default: {region: eu-west-1}
  minio:
    lab: {endpoint: "http://minio.lab:9000", access_key: lab, secret_key: lab-secret-value}
"""
    )
    workflow = parse_workflow(text)
    for function in workflow:
        providers = function.config.storage_providers
        assert providers.s3["default"].region == "eu-west-1"
        assert providers.minio["lab"].endpoint == "http://minio.lab:9000"
        assert "lab-secret-value" in providers.secrets()


def test_a_function_keeps_its_own_storage_providers() -> None:
    own = ", storage_providers: {s3: {default: {region: us-west-2}}}"
    text = _workflow(
        _function("mine", ["b/in"], ["b/mid"], extra=own),
        _function("shared", ["b/mid"], ["b/out"]),
    )
    text += "storage_providers: {s3: {default: {region: eu-west-1}}}\n"
    mine, shared = parse_workflow(text).functions
    assert mine.config.storage_providers.s3["default"].region == "us-west-2"
    assert shared.config.storage_providers.s3["default"].region == "eu-west-1"


# --- Batch resources -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        ("{vcpus: 4, compute_resources: {max_v_cpus: 12}}", 3),
        ("{vcpus: 5, compute_resources: {max_v_cpus: 12}}", 2),
        ("{vcpus: 1, compute_resources: {max_v_cpus: 8}}", 8),
        # A job bigger than the environment still runs, one at a time.
        ("{vcpus: 16, compute_resources: {max_v_cpus: 12}}", 1),
        ("{vcpus: 4}", None),
        ("{vcpus: 4, compute_resources: {instance_types: [g3s.xlarge]}}", None),
        ("{}", None),
    ],
)
def test_batch_slots(batch: str, expected: int | None) -> None:
    text = _workflow(_function("f", ["b/in"], ["b/out"])) + f"    batch: {batch}\n"
    assert parse_workflow(text).functions[0].batch.slots == expected


def test_batch_defaults() -> None:
    (function,) = parse_workflow(_workflow(_function("f", ["b/in"], ["b/out"]))).functions
    assert function.batch == BatchResources(vcpus=1, memory_mb=1024, gpu=False, slots=None)


def test_function_level_batch_joins_the_definition_batch_settings() -> None:
    entry = _function("f", ["b/in"], ["b/out"], extra=", batch: {job_queue: gpu-queue}")
    text = _workflow(entry) + "    batch: {vcpus: 2, enable_gpu: true}\n"
    (function,) = parse_workflow(text).functions
    assert function.config.job_queue == "gpu-queue"
    assert function.batch.gpu is True
    assert function.batch.vcpus == 2


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("timeout: 900", "timeout: 0", [FFMPEG, "timeout"]),
        ("timeout: 900", "timeout: 901", [FFMPEG, "timeout"]),
        ("memory: 128", "memory: 64", [YOLOV3, "memory"]),
        ("memory: 128", "memory: 20000", [YOLOV3, "memory"]),
        ("execution_mode: batch", "execution_mode: cloud", [YOLOV3, "execution_mode"]),
        ("vcpus: 4", "vcpus: 0", [YOLOV3, "batch", "vcpus"]),
        ("max_v_cpus: 12", "max_v_cpus: -1", [YOLOV3, "batch", "max_v_cpus"]),
        ("enable_gpu: true", "enable_gpu: maybe", [YOLOV3, "batch", "enable_gpu"]),
    ],
)
def test_invalid_values_name_the_function_and_key(old: str, new: str, words: list[str]) -> None:
    text = AV_WORKFLOW.replace(old, new, 1)
    assert text != AV_WORKFLOW
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text, origin="av.yaml")
    message = str(caught.value)
    assert message.startswith("av.yaml: ")
    for word in words:
        assert word in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("other: 1\n", ["functions"]),
        ("functions: {}\n", ["functions", "aws"]),
        ("functions: {aws: []}\n", ["functions", "aws", "at least one function"]),
        ("functions: {aws: {lambda: {name: f}}}\n", ["functions", "aws"]),
        ("functions: [1, 2]\n", ["functions", "aws"]),
        ("- just\n- a list\n", ["functions"]),
        ("functions: {aws: [{batch: {vcpus: 1}}]}\n", ["functions.aws[0]", "lambda"]),
        ("functions: {aws: [one]}\n", ["functions.aws[0]", "lambda"]),
        ("functions: {aws: [{lambda: [1]}]}\n", ["functions.aws[0]", "lambda"]),
        ("functions: [\n", ["not valid YAML", "line"]),
        ("functions: {aws: [{lambda: {name: 'f}]}\n", ["not valid YAML"]),
    ],
)
def test_malformed_workflows(text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text, origin="flow.yaml")
    message = str(caught.value)
    assert message.startswith("flow.yaml: ")
    for word in words:
        assert word in message


def test_an_entry_without_lambda_is_named_by_its_place() -> None:
    text = _workflow(_function("first", ["b/in"], ["b/mid"]), "  - batch: {vcpus: 1}\n")
    with pytest.raises(ConfigError, match=r"functions\.aws\[1\]: expected a mapping with a lambda"):
        parse_workflow(text)


def test_an_invalid_lambda_section_names_execution_mode() -> None:
    text = _workflow(_function("odd", ["b/in"], ["b/out"], extra=", execution_mode: sometimes"))
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text)
    message = str(caught.value)
    assert "odd" in message
    assert "execution_mode" in message
    assert "'sometimes'" in message


def test_two_functions_with_the_same_name() -> None:
    text = _workflow(
        _function("twin", ["b/in"], ["b/mid"]),
        _function("twin", ["b/mid"], ["b/out"]),
    )
    with pytest.raises(ConfigError, match="two functions are named 'twin'"):
        parse_workflow(text)


@pytest.mark.parametrize("inputs", ["", ", input: []"])
def test_a_function_without_input(inputs: str) -> None:
    text = _workflow(f"  - lambda: {{name: lonely, output: [{{path: b/out}}]{inputs}}}\n")
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text)
    message = str(caught.value)
    assert "lonely" in message
    assert "input" in message


def test_unreadable_workflow_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read the workflow"):
        load_workflow(missing)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00functions")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_workflow(binary)


def test_load_workflow_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(AV_WORKFLOW.replace("timeout: 900", "timeout: 0", 1))
    with pytest.raises(ConfigError) as caught:
        load_workflow(path)
    assert str(caught.value).startswith(f"{path}: ")


# --- loops -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "loop"),
    [
        # Outputs into its own input folder.
        ([("echo", ["b/in"], ["b/in"])], "echo -> echo"),
        # Into a folder inside its input folder: a bucket notification on the prefix sees it.
        ([("echo", ["b/in"], ["b/in/sub"])], "echo -> echo"),
        # Into the folder that holds its input folder.
        ([("echo", ["b/in/sub"], ["b/in"])], "echo -> echo"),
        # Into the whole bucket its input is in.
        ([("echo", ["b/in"], ["b"])], "echo -> echo"),
        # One of several outputs.
        ([("echo", ["b/in"], ["b/out", "b/in/again"])], "echo -> echo"),
        # Through another function.
        ([("a", ["b/a"], ["b/b"]), ("b", ["b/b"], ["b/a"])], "a -> b -> a"),
        # Through two others, after a function that is not on the loop.
        (
            [
                ("start", ["b/start"], ["b/x"]),
                ("x", ["b/x"], ["b/y"]),
                ("y", ["b/y"], ["b/z"]),
                ("z", ["b/z"], ["b/x/back"]),
            ],
            "x -> y -> z -> x",
        ),
    ],
)
def test_loops_are_refused(entries: list[tuple[str, list[str], list[str]]], loop: str) -> None:
    text = _workflow(*(_function(name, ins, outs) for name, ins, outs in entries))
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text, origin="loop.yaml")
    message = str(caught.value)
    assert message.startswith("loop.yaml: ")
    assert f"({loop})" in message
    assert "would never end" in message


@pytest.mark.parametrize(
    "entries",
    [
        # A chain: A -> B -> C.
        [("a", ["b/a"], ["b/b"]), ("b", ["b/b"], ["b/c"]), ("c", ["b/c"], ["b/done"])],
        # The same chain listed backwards.
        [("c", ["b/c"], ["b/done"]), ("b", ["b/b"], ["b/c"]), ("a", ["b/a"], ["b/b"])],
        # A diamond: two branches that meet again.
        [
            ("split", ["b/in"], ["b/left", "b/right"]),
            ("left", ["b/left"], ["b/join"]),
            ("right", ["b/right"], ["b/join"]),
            ("join", ["b/join"], ["b/out"]),
        ],
        # A sibling folder whose name starts like the input's is no loop.
        [("next", ["b/start"], ["b/start2"])],
        # Nor the same folder in another bucket.
        [("copy", ["one/in"], ["two/in"])],
        # A function with no output.
        [("sink", ["b/in"], [])],
    ],
)
def test_workflows_without_loops_are_accepted(
    entries: list[tuple[str, list[str], list[str]]],
) -> None:
    text = _workflow(*(_function(name, ins, outs) for name, ins, outs in entries))
    workflow = parse_workflow(text)
    assert [function.name for function in workflow] == [name for name, _, _ in entries]


def _chain(count: int, *, skip: bool = False) -> list[tuple[str, list[str], list[str]]]:
    """``count`` functions, each feeding the next (and, with ``skip``, the one after it too:
    the number of paths then grows as the Fibonacci numbers)."""
    entries = []
    for index in range(count):
        outputs = [f"b/f{index + 1}"] + ([f"b/f{index + 2}"] if skip else [])
        entries.append((f"f{index}", [f"b/f{index}"], outputs))
    return entries


def _layers(width: int, depth: int) -> list[tuple[str, list[str], list[str]]]:
    """``depth`` layers of ``width`` functions, each feeding every function of the next."""
    return [
        (f"l{layer}n{node}", [f"b/l{layer}/n{node}"], [f"b/l{layer + 1}"])
        for layer in range(depth)
        for node in range(width)
    ]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(_chain(50), id="chain-50"),
        pytest.param(_chain(200), id="chain-200"),
        # Billions of paths from the first function to the last: checking each path would
        # never end.
        pytest.param(_chain(50, skip=True), id="ladder-50"),
        pytest.param(_chain(200, skip=True), id="ladder-200"),
        pytest.param(_layers(5, 12), id="wide-dag"),
    ],
)
def test_large_workflows_without_loops_are_checked_at_once(
    entries: list[tuple[str, list[str], list[str]]],
) -> None:
    text = _workflow(*(_function(name, ins, outs) for name, ins, outs in entries))
    workflow = parse_workflow(text)
    assert len(workflow.functions) == len(entries)


@pytest.mark.timeout(60)
def test_a_loop_at_the_end_of_a_large_workflow_is_named() -> None:
    entries = _chain(60, skip=True)
    entries[-1] = ("f59", ["b/f59"], ["b/f57"])
    text = _workflow(*(_function(name, ins, outs) for name, ins, outs in entries))
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text, origin="big.yaml")
    assert "(f57 -> f58 -> f59 -> f57)" in str(caught.value)


# --- entry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "entry"),
    [
        ([("a", ["b/a"], ["b/b"]), ("b", ["b/b"], ["b/c"])], "b/a"),
        # The first function listed may well be fed by another one.
        ([("b", ["b/b"], ["b/c"]), ("a", ["b/a"], ["b/b"])], "b/a"),
        # A function reading from two folders, one of them written by another function.
        ([("a", ["b/a"], ["b/mid"]), ("m", ["b/mid/sub", "b/side"], ["b/out"])], "b/a"),
        ([("m", ["b/mid/sub", "b/side"], ["b/out"]), ("a", ["b/a"], ["b/mid"])], "b/side"),
        # A whole bucket as input.
        ([("whole", ["inbox"], ["outbox"])], "inbox"),
    ],
)
def test_entry_is_the_first_input_no_function_writes_to(
    entries: list[tuple[str, list[str], list[str]]], entry: str
) -> None:
    text = _workflow(*(_function(name, ins, outs) for name, ins, outs in entries))
    assert parse_workflow(text).entry.path == entry


# --- edge cases ------------------------------------------------------------------------


def test_a_batch_section_that_is_not_a_mapping_names_the_function() -> None:
    text = _workflow(_function("gpu-job", ["b/in"], ["b/out"])) + "    batch: [4, 12288]\n"
    with pytest.raises(ConfigError) as caught:
        parse_workflow(text)
    message = str(caught.value)
    assert "batch" in message
    assert "gpu-job" in message
