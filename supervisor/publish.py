"""``python -m supervisor layer publish``: the Lambda Layer zips published as layer versions.

Every zip (one per Python and architecture) is published to every region asked for with
``lambda:PublishLayerVersion``, under a name of the form
``serverless-supervisor-python312-x86_64`` (as aws-lambda-powertools names its layers), with
its compatible runtime and architecture, the version of the supervisor it holds and the
Apache-2.0 licence.  ``--public`` or ``--account`` then grant ``lambda:GetLayerVersion`` on
each new version.  The ARNs are printed as a table and written as JSON.

The zips come from ``--zip-dir`` (such as a release's), else they are built afresh from the
clone by ``layer/build.py`` into ``build/layer``; in a clone, the zips missing from
``--zip-dir`` are built there.  Building needs an interpreter of each target Python, which
byte-compiles, and so checks, every module of the zip; a Python with none on this machine
(or, from a wheel, with no zip) is skipped and named, unless it was asked for with
``--python``: then the command fails.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

from supervisor.errors import SupervisorError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

__all__ = [
    "ARCHITECTURES",
    "PYTHONS",
    "LayerZip",
    "PublishError",
    "Published",
    "configure_parser",
    "run",
]

# Every Python that Lambda runs and the project supports, and Lambda's architectures.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_NAME = "serverless-supervisor"
HANDLER = "handlers.lambda_handler.handler"
LICENSE = "Apache-2.0"
# What PublishLayerVersion accepts inline (Content.ZipFile); larger layers go through S3.
ZIP_FILE_LIMIT = 50 * 1024 * 1024
# The clone's layer builder; a wheel does not hold it.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
BUILDER = SOURCE_ROOT / "layer" / "build.py"

# Patterns as text: ``python -m supervisor`` builds this command's parser at every start, so
# importing this module compiles nothing (re caches them when first used).
_REGION = r"[a-z]{2}(-[a-z]+)+-\d{1,2}"
_ACCOUNT = r"\d{12}"
_LAYER_NAME = r"[A-Za-z0-9_-]{1,64}"
_VERSION = r"""(?m)^__version__\s*=\s*["']([^"']+)["']"""


class PublishError(SupervisorError):
    """The layer could not be built or published; ``published`` lists what was, before."""

    def __init__(self, message: str, published: Sequence[Published] = ()) -> None:
        super().__init__(message)
        self.published = list(published)


class LayerZip(NamedTuple):
    """One built layer: the zip for a Python and an architecture, and what it holds."""

    python: str
    arch: str
    path: Path
    version: str

    @property
    def runtime(self) -> str:
        return f"python{self.python}"

    def layer_name(self, prefix: str) -> str:
        return f"{prefix}-python{self.python.replace('.', '')}-{self.arch}"


class Published(NamedTuple):
    """One layer version, as the JSON file lists it."""

    region: str
    python: str
    architecture: str
    layer_name: str
    layer_version: int
    arn: str
    compatible_runtimes: list[str]
    compatible_architectures: list[str]
    shared_with: list[str]
    supervisor_version: str
    code_sha256: str
    zip: str


class Plan(NamedTuple):
    """What ``run`` publishes, and the Pythons it could not build, with the reason."""

    zips: list[LayerZip]
    skipped: dict[str, str]


def zip_name(python: str, arch: str) -> str:
    """The file name ``layer/build.py`` gives the zip of a target."""
    return f"serverless-supervisor-py{python}-{arch}.zip"


def read_zip(path: Path, python: str, arch: str) -> LayerZip:
    """The zip at ``path``, checked to be a layer of the supervisor; its version read from it."""
    try:
        with zipfile.ZipFile(path) as archive:
            source = archive.read("python/supervisor/__init__.py").decode("utf-8")
    except FileNotFoundError:
        raise PublishError(f"{path}: no such file") from None
    except zipfile.BadZipFile as exc:
        raise PublishError(f"{path} is not a zip file: {exc}") from exc
    except (KeyError, UnicodeDecodeError) as exc:
        raise PublishError(
            f"{path} is not a serverless-supervisor layer zip: it has no readable "
            "python/supervisor/__init__.py"
        ) from exc
    found = re.search(_VERSION, source)
    if found is None:
        raise PublishError(f"{path}: python/supervisor/__init__.py has no __version__")
    size = path.stat().st_size
    if size > ZIP_FILE_LIMIT:
        raise PublishError(
            f"{path} is {size} bytes, over the {ZIP_FILE_LIMIT} bytes that "
            "PublishLayerVersion accepts without S3"
        )
    return LayerZip(python=python, arch=arch, path=path, version=found.group(1))


def load_builder(path: Path = BUILDER) -> ModuleType | None:
    """``layer/build.py`` of the clone this package runs from, as a module; None from a wheel."""
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("serverless_supervisor_layer_build", path)
    if spec is None or spec.loader is None:
        raise PublishError(f"cannot load the layer builder {path}")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while it is being executed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def plan(
    folder: Path,
    pythons: Sequence[str],
    arches: Sequence[str],
    *,
    builder: ModuleType | None,
    required: bool,
    rebuild: bool,
    runner: Callable[[list[str]], subprocess.CompletedProcess[str]] | None = None,
) -> Plan:
    """The zips to publish: those in ``folder``, and those missing built there by ``builder``.

    ``rebuild`` builds every one, even those already there.  A Python whose zip can be
    neither found nor built is skipped with the reason, or, when ``required`` (it was asked
    for by name), is an error."""
    targets = [(python, arch) for python in pythons for arch in arches]
    missing: dict[str, list[str]] = {}
    for python, arch in targets:
        if rebuild or not (folder / zip_name(python, arch)).is_file():
            missing.setdefault(python, []).append(arch)
    if missing and builder is None:
        names = ", ".join(zip_name(python, arch) for python in missing for arch in missing[python])
        if required or len(missing) == len(pythons):
            raise PublishError(
                f"{folder} has no {names}, and this serverless-supervisor was installed from a "
                "wheel, which cannot build them (layer/build.py is in the source tree only). "
                "Pass --zip-dir DIR with the zips built in a clone (./build.sh layer) or taken "
                "from a release"
            )
    skipped: dict[str, str] = {}
    interpreters: dict[str, Path] = {}
    for python in missing:
        found = builder.find_interpreter(python) if builder is not None else None
        if builder is None:
            skipped[python] = f"no {zip_name(python, missing[python][0])} in {folder}"
        elif found is None:
            skipped[python] = (
                f"no Python {python} on this machine (~/.pyenv/versions/{python}.* or "
                f"python{python} on PATH) to build its zip and check it: install one, or pass "
                "--zip-dir with a zip built where there is one"
            )
        else:
            interpreters[python] = Path(found)
    if skipped and required:
        raise PublishError("; ".join(f"Python {python}: {why}" for python, why in skipped.items()))
    if len(skipped) == len(pythons):
        raise PublishError(
            "nothing to publish: " + "; ".join(f"Python {p}: {why}" for p, why in skipped.items())
        )
    for python, interpreter in interpreters.items():
        assert builder is not None
        _build(builder, python, interpreter, missing[python], folder, runner or _run_builder)
    return Plan(
        [
            read_zip(folder / zip_name(python, arch), python, arch)
            for python, arch in targets
            if python not in skipped
        ],
        skipped,
    )


def _build(
    builder: ModuleType,
    python: str,
    interpreter: Path,
    arches: Sequence[str],
    out: Path,
    runner: Callable[[list[str]], subprocess.CompletedProcess[str]],
) -> None:
    command = [sys.executable, str(builder.__file__), "--out", str(out)]
    command += ["--python", python, "--arch", *arches, "--interpreter", f"{python}={interpreter}"]
    print(f"building the Python {python} layer zips into {out}", file=sys.stderr)
    result = runner(command)
    # The builder's size lines go with the other progress messages, away from the table.
    sys.stderr.write(result.stdout)
    if result.returncode != 0:
        raise PublishError(f"layer/build.py failed for Python {python} (exit {result.returncode})")


def _run_builder(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)


def principals_of(public: bool, accounts: Sequence[str]) -> list[str]:
    """Who gets ``lambda:GetLayerVersion``: ``*`` for everyone, else the account ids."""
    bad = [account for account in accounts if not re.fullmatch(_ACCOUNT, account)]
    if bad:
        raise PublishError(
            f"--account {', '.join(bad)}: an AWS account id is 12 digits, such as 123456789012"
        )
    return ["*"] if public else list(dict.fromkeys(accounts))


def regions_of(text: str) -> list[str]:
    """``eu-west-1,us-east-1`` as a list, each checked to look like a region."""
    regions = [part.strip() for part in text.split(",") if part.strip()]
    bad = [region for region in regions if not re.fullmatch(_REGION, region)]
    if not regions or bad:
        raise PublishError(
            f"--regions {text!r}: expected region names separated by commas, such as "
            "eu-west-1,us-east-1"
        )
    return list(dict.fromkeys(regions))


def publish(
    zips: Sequence[LayerZip],
    regions: Sequence[str],
    *,
    name: str,
    principals: Sequence[str],
    client_for: Callable[[str], LambdaClient],
) -> list[Published]:
    """Publish every zip to every region and grant each principal the new versions."""
    from botocore.exceptions import BotoCoreError, ClientError

    published: list[Published] = []
    for region in regions:
        try:
            client = client_for(region)
        except (BotoCoreError, ClientError) as exc:
            raise PublishError(f"{region}: could not publish: {exc}", published) from exc
        for layer in zips:
            layer_name = layer.layer_name(name)
            print(f"publishing {layer.path.name} to {region} as {layer_name}", file=sys.stderr)
            try:
                response = client.publish_layer_version(
                    LayerName=layer_name,
                    Description=(
                        f"serverless-supervisor {layer.version} for Python {layer.python} on "
                        f"{layer.arch}; handler {HANDLER}"
                    ),
                    Content={"ZipFile": layer.path.read_bytes()},
                    CompatibleRuntimes=[layer.runtime],  # type: ignore[list-item]
                    CompatibleArchitectures=[layer.arch],  # type: ignore[list-item]
                    LicenseInfo=LICENSE,
                )
                number = response["Version"]
                for principal in principals:
                    client.add_layer_version_permission(
                        LayerName=layer_name,
                        VersionNumber=number,
                        StatementId="public" if principal == "*" else f"account-{principal}",
                        Action="lambda:GetLayerVersion",
                        Principal=principal,
                    )
            except (BotoCoreError, ClientError) as exc:
                raise PublishError(
                    f"{region}: publishing {layer.path.name} as {layer_name} failed: {exc}",
                    published,
                ) from exc
            published.append(
                Published(
                    region=region,
                    python=layer.python,
                    architecture=layer.arch,
                    layer_name=layer_name,
                    layer_version=number,
                    arn=response["LayerVersionArn"],
                    compatible_runtimes=list(response.get("CompatibleRuntimes", [])),
                    compatible_architectures=list(response.get("CompatibleArchitectures", [])),
                    shared_with=list(principals),
                    supervisor_version=layer.version,
                    code_sha256=response["Content"].get("CodeSha256", ""),
                    zip=str(layer.path),
                )
            )
    return published


def table(published: Sequence[Published]) -> str:
    """The ARNs as aligned columns: region, Python, architecture, ARN."""
    rows = [("REGION", "PYTHON", "ARCH", "LAYER VERSION ARN")]
    rows += [(p.region, p.python, p.architecture, p.arn) for p in published]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


def document(published: Sequence[Published], skipped: dict[str, str]) -> dict[str, Any]:
    """What the JSON file holds."""
    return {
        "handler": HANDLER,
        "layers": [item._asdict() for item in published],
        "skipped": [{"python": python, "reason": why} for python, why in skipped.items()],
    }


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``layer publish``."""
    parser.add_argument(
        "--regions",
        required=True,
        help="where to publish: region names separated by commas, such as eu-west-1,us-east-1",
    )
    sharing = parser.add_mutually_exclusive_group()
    sharing.add_argument(
        "--public", action="store_true", help="let every AWS account use the layer versions"
    )
    sharing.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="ID",
        help="let this AWS account use them (repeat for more); default: only your own account",
    )
    parser.add_argument(
        "--python",
        action="append",
        choices=PYTHONS,
        metavar="VERSION",
        help=(
            f"a Python to publish a layer for (repeat for more; one of {', '.join(PYTHONS)}); "
            "default: every one with an interpreter on this machine, or with a zip in --zip-dir"
        ),
    )
    parser.add_argument(
        "--arch",
        choices=(*ARCHITECTURES, "all"),
        default="all",
        help="the architecture of the layers (default: all, one layer for each)",
    )
    parser.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=(
            f"the start of the layer names (default: {DEFAULT_NAME}, giving "
            f"{DEFAULT_NAME}-python312-x86_64 and so on)"
        ),
    )
    parser.add_argument(
        "--zip-dir",
        type=Path,
        help=(
            "publish the zips in this folder (serverless-supervisor-pyVERSION-ARCH.zip); in a "
            "clone, those missing are built there (default: build every zip afresh into "
            "build/layer, which needs a clone)"
        ),
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the ARNs as JSON (default: layers.json beside the zips)",
    )


def run(
    args: argparse.Namespace, *, client_for: Callable[[str], LambdaClient] | None = None
) -> int:
    """``layer publish``: build or find the zips, publish, print and write the ARNs."""
    try:
        regions = regions_of(args.regions)
        principals = principals_of(args.public, args.account)
        if not re.fullmatch(_LAYER_NAME, args.name) or len(args.name) > 40:
            raise PublishError(
                f"--name {args.name!r}: letters, digits, - and _ only, at most 40 characters "
                "(the Python and the architecture are appended)"
            )
        arches = list(ARCHITECTURES) if args.arch == "all" else [args.arch]
        named = list(dict.fromkeys(args.python or ()))
        builder = load_builder()
        if builder is None and args.zip_dir is None:
            raise PublishError(
                "this serverless-supervisor was installed from a wheel, which cannot build the "
                "layer (layer/build.py is in the source tree only): pass --zip-dir DIR with the "
                "zips built in a clone (./build.sh layer) or taken from a release"
            )
        folder = (args.zip_dir or SOURCE_ROOT / "build" / "layer").resolve()
        chosen = plan(
            folder,
            named or PYTHONS,
            arches,
            builder=builder,
            required=bool(named),
            rebuild=args.zip_dir is None,
        )
        for python, why in chosen.skipped.items():
            print(f"skipped Python {python}: {why}", file=sys.stderr)
        published = publish(
            chosen.zips,
            regions,
            name=args.name,
            principals=principals,
            client_for=client_for or _lambda_client,
        )
    except PublishError as exc:
        if exc.published:
            # Only publish(), after the plan, raises with versions published: list them.
            print("published before the error:", file=sys.stderr)
            _report(exc.published, chosen.skipped, args.json or folder / "layers.json")
        print(f"layer publish: error: {exc}", file=sys.stderr)
        return 1
    _report(published, chosen.skipped, args.json or folder / "layers.json")
    if principals == ["*"]:
        print("shared with every AWS account", file=sys.stderr)
    elif principals:
        print(f"shared with the accounts {', '.join(principals)}", file=sys.stderr)
    else:
        print("shared with no other account (--public or --account to share)", file=sys.stderr)
    return 0


def _report(published: Sequence[Published], skipped: dict[str, str], destination: Path) -> None:
    print(table(published))
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(document(published, skipped), indent=2) + "\n")
    print(f"the ARNs are in {destination}", file=sys.stderr)


def _lambda_client(region: str) -> LambdaClient:
    import boto3

    return boto3.client("lambda", region_name=region)
