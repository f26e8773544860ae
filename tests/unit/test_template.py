"""layer/template.yaml: cfn-lint passes, and the template deploys what the supervisor expects.

cfn-lint checks the plain CloudFormation resources against their schemas and only the shape
of the SAM ones (it does not run the SAM transform), so the SAM function, its references
and the function definition it carries are checked here.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from supervisor.config import ContainerSettings, parse_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "layer" / "template.yaml"
COMMAND = ["python", "-m", "supervisor"]
PSEUDO = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix"}
SAMPLE = {
    "FunctionName": "photo-fn",
    "InputBucketName": "photo-uploads",
    "OutputBucketName": "photo-results",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
}


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads ``!Ref X`` as ``{"Ref": X}``, ``!GetAtt A.B`` as ``{"Fn::GetAtt": [A, B]}``..."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    return loaded


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def render(template: dict[str, Any], text: str, **overrides: str) -> str:
    """Fill ``${Parameter}`` with the sample values, else the parameters' defaults."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(SAMPLE, **overrides)
    return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: values[m.group(1)], text)


def definitions(template: dict[str, Any]) -> dict[str, str]:
    """The function definition's text in the function (FDL) and in each job definition."""
    (function,) = resources_of(template, "AWS::Serverless::Function").values()
    found = {"Function FDL": function["Environment"]["Variables"]["FDL"]["Fn::Base64"]["Fn::Sub"]}
    for name, job in resources_of(template, "AWS::Batch::JobDefinition").items():
        environment = {v["Name"]: v["Value"] for v in job["ContainerProperties"]["Environment"]}
        found[f"{name} FUNCTION_CONFIG"] = environment["FUNCTION_CONFIG"]["Fn::Base64"]["Fn::Sub"]
    return found


def test_cfn_lint_finds_nothing_not_even_informational() -> None:
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(TEMPLATE, ManualArgs(include_checks=["I"]))

    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_job_definitions_run_the_supervisor_and_the_gpu_one_asks_for_a_gpu(
    template: dict[str, Any],
) -> None:
    jobs = resources_of(template, "AWS::Batch::JobDefinition")
    assert set(jobs) == {"CpuJobDefinition", "GpuJobDefinition"}
    requirements = {}
    for name, job in jobs.items():
        container = job["ContainerProperties"]
        assert container["Command"] == COMMAND, name
        requirements[name] = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
        assert {"VCPU", "MEMORY"} <= set(requirements[name]), name
        assert all(isinstance(value, str) for value in requirements[name].values()), name
    assert requirements["GpuJobDefinition"]["GPU"] == "1"
    assert "GPU" not in requirements["CpuJobDefinition"]
    assert jobs["GpuJobDefinition"]["ContainerProperties"]["Image"] == {"Ref": "GpuImage"}


def test_the_gpu_compute_environment_has_gpu_instances_and_the_nvidia_ami(
    template: dict[str, Any],
) -> None:
    environments = resources_of(template, "AWS::Batch::ComputeEnvironment")
    gpu = environments["GpuComputeEnvironment"]["ComputeResources"]
    parameters = template["Parameters"]

    assert environments["GpuComputeEnvironment"]["Type"] == "MANAGED"
    assert gpu["Type"] == "EC2"
    assert parameters[gpu["InstanceTypes"]["Ref"]]["Default"] == "g4dn.xlarge"
    (configuration,) = gpu["Ec2Configuration"]
    assert parameters[configuration["ImageType"]["Ref"]]["Default"].endswith("_NVIDIA")
    for environment in environments.values():
        resources = environment["ComputeResources"]
        assert resources["Subnets"] == {"Ref": "Subnets"}
        assert resources["SecurityGroupIds"] == {"Ref": "SecurityGroups"}


def test_the_function_uses_the_handler_of_the_layer(template: dict[str, Any]) -> None:
    (function,) = resources_of(template, "AWS::Serverless::Function").values()
    parameters = template["Parameters"]

    assert function["Handler"] == "handlers.lambda_handler.handler"
    runtime = parameters[function["Runtime"]["Ref"]]
    assert runtime["Default"] == "python3.12"
    assert set(runtime["AllowedValues"]) == {"python3.12", "python3.13"}
    assert function["Layers"] == [layer_choice()]
    assert template["Outputs"]["LayerVersionArn"]["Value"] == layer_choice()
    assert parameters[function["Timeout"]["Ref"]]["MaxValue"] == 900
    assert parameters[function["EphemeralStorage"]["Size"]["Ref"]]["MaxValue"] == 10240
    assert "MemorySize" in function
    assert set(function["Environment"]["Variables"]) == {"FDL", "LOG_LEVEL", "SCRIPT"}


def layer_choice() -> dict[str, Any]:
    """The layer for the PythonRuntime and Architecture parameters."""

    def by_arch(python: str) -> dict[str, Any]:
        return {
            "Fn::If": [
                "IsArm64",
                {"Ref": f"SupervisorLayerPy{python}Arm64"},
                {"Ref": f"SupervisorLayerPy{python}X86"},
            ]
        }

    return {"Fn::If": ["IsPython313", by_arch("313"), by_arch("312")]}


@pytest.mark.parametrize("python", ["3.12", "3.13"])
@pytest.mark.parametrize(("arch", "suffix"), [("x86_64", "X86"), ("arm64", "Arm64")])
def test_each_layer_is_the_zip_built_for_its_python_and_architecture(
    template: dict[str, Any], python: str, arch: str, suffix: str
) -> None:
    name = f"SupervisorLayerPy{python.replace('.', '')}{suffix}"
    resource = template["Resources"][name]
    layer = resource["Properties"]

    zip_path = (TEMPLATE.parent / layer["ContentUri"]).resolve()
    assert zip_path == ROOT / "build" / "layer" / f"serverless-supervisor-py{python}-{arch}.zip"
    assert layer["CompatibleRuntimes"] == [f"python{python}"]
    assert layer["CompatibleArchitectures"] == [arch]
    assert layer["LicenseInfo"] == "Apache-2.0"
    # Deployed exactly when the function runs that Python on that architecture.
    conditions = template["Conditions"]
    python_condition = "IsPython313" if python == "3.13" else "IsPython312"
    arch_condition = "IsArm64" if arch == "arm64" else "IsX86"
    assert conditions[resource["Condition"]] == {
        "Fn::And": [{"Fn::Condition": python_condition}, {"Fn::Condition": arch_condition}]
    }


def test_the_architecture_parameter_sets_the_function_and_picks_the_layer(
    template: dict[str, Any],
) -> None:
    (function,) = resources_of(template, "AWS::Serverless::Function").values()
    parameter = template["Parameters"]["Architecture"]

    assert parameter["Default"] == "x86_64"
    assert parameter["AllowedValues"] == ["x86_64", "arm64"]
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Conditions"]["IsArm64"] == {"Fn::Equals": [{"Ref": "Architecture"}, "arm64"]}
    assert template["Conditions"]["IsX86"] == {"Fn::Not": [{"Fn::Condition": "IsArm64"}]}


def test_the_reserve_defaults_to_the_runtimes_default(template: dict[str, Any]) -> None:
    default = ContainerSettings.model_fields["timeout_threshold"].default

    assert template["Parameters"]["TimeoutThreshold"]["Default"] == default == 2


def test_uploads_under_the_folder_invoke_the_function_and_failures_go_to_a_queue(
    template: dict[str, Any],
) -> None:
    (function,) = resources_of(template, "AWS::Serverless::Function").values()
    upload = function["Events"]["Upload"]
    (invoke_config,) = resources_of(template, "AWS::Lambda::EventInvokeConfig").values()

    assert upload["Type"] == "S3"
    assert upload["Properties"]["Bucket"] == {"Ref": "InputBucket"}
    (rule,) = upload["Properties"]["Filter"]["S3Key"]["Rules"]
    assert rule == {"Name": "prefix", "Value": {"Fn::Sub": "${InputFolder}/"}}
    assert invoke_config["FunctionName"] == {"Ref": "Function"}
    destination = invoke_config["DestinationConfig"]["OnFailure"]["Destination"]
    queue = destination["Fn::GetAtt"]
    assert template["Resources"][queue[0]]["Type"] == "AWS::SQS::Queue"
    assert queue[1] == "Arn"


def test_the_function_may_read_inputs_write_outputs_and_submit_jobs(
    template: dict[str, Any],
) -> None:
    (function,) = resources_of(template, "AWS::Serverless::Function").values()
    policies = function["Policies"]

    assert {"S3ReadPolicy": {"BucketName": {"Ref": "InputBucketName"}}} in policies
    assert {"S3CrudPolicy": {"BucketName": {"Ref": "OutputBucketName"}}} in policies
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    submit = [s for s in statements if s["Action"] == "batch:SubmitJob"]
    assert len(submit) == 1
    resources = [render(template, r["Fn::Sub"]) for r in submit[0]["Resource"]]
    assert any(":job-queue/photo-fn-*" in r for r in resources)
    assert any(":job-definition/photo-fn-*" in r for r in resources)


def test_the_three_copies_of_the_definition_are_the_same(template: dict[str, Any]) -> None:
    texts = definitions(template)

    assert len(texts) == 3
    assert len(set(texts.values())) == 1, texts


@pytest.mark.parametrize("target", ["cpu", "gpu"])
def test_the_definition_is_valid_and_names_the_templates_queue_and_job_definition(
    template: dict[str, Any], target: str
) -> None:
    text = render(template, definitions(template)["Function FDL"], BatchTarget=target)

    config = parse_config(text, origin="template")

    assert config.name == "photo-fn"
    assert config.execution_mode == "lambda-batch"
    assert [(i.bucket, i.folder) for i in config.input] == [("photo-uploads", "incoming")]
    assert [(o.bucket, o.folder) for o in config.output] == [("photo-results", "results")]
    queues = {
        render(template, q["JobQueueName"]["Fn::Sub"])
        for q in resources_of(template, "AWS::Batch::JobQueue").values()
    }
    jobs = {
        render(template, j["JobDefinitionName"]["Fn::Sub"])
        for j in resources_of(template, "AWS::Batch::JobDefinition").values()
    }
    assert config.job_queue == f"photo-fn-{target}"
    assert config.job_queue in queues
    assert config.job_definition in jobs


def test_the_default_script_is_a_shell_script() -> None:
    loaded = yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    script = base64.b64decode(loaded["Parameters"]["Script"]["Default"], validate=True)

    assert script.startswith(b"#!/bin/sh\n")
    checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


def _references(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.append(value)
            elif key == "Fn::GetAtt":
                found.append(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found += re.findall(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}", text)
            found += _references(value)
    elif isinstance(node, list):
        for item in node:
            found += _references(item)
    return found


def test_every_reference_names_a_parameter_a_resource_or_a_pseudo_parameter(
    template: dict[str, Any],
) -> None:
    known = set(template["Parameters"]) | set(template["Resources"]) | PSEUDO

    unknown = sorted(set(_references(template["Resources"])) - known)

    assert unknown == []
