"""``layer publish``: its options, and its run from the arguments to the printed table."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from supervisor.publish.errors import PublishError
from supervisor.publish.versions import Published, document, publish, table
from supervisor.publish.zips import ARCHITECTURES, PYTHONS, SOURCE_ROOT, Plan, load_builder, plan

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

__all__ = ["DEFAULT_NAME", "configure_parser", "principals_of", "regions_of", "run"]

DEFAULT_NAME = "serverless-supervisor"

# Patterns as text: ``python -m supervisor`` builds this command's parser at every start, so
# importing this module compiles nothing (re caches them when first used).
_REGION = r"[a-z]{2}(-[a-z]+)+-\d{1,2}"
_ACCOUNT = r"\d{12}"
_LAYER_NAME = r"[A-Za-z0-9_-]{1,64}"


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


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``layer publish``."""
    _add_sharing_options(parser)
    _add_layer_options(parser)
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


def _add_sharing_options(parser: argparse.ArgumentParser) -> None:
    """Where the versions go and who may use them: --regions, --public or --account."""
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


def _add_layer_options(parser: argparse.ArgumentParser) -> None:
    """Which layers: --python, --arch and the start of their names, --name."""
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


def run(
    args: argparse.Namespace, *, client_for: Callable[[str], LambdaClient] | None = None
) -> int:
    """``layer publish``: build or find the zips, publish, print and write the ARNs."""
    try:
        regions = regions_of(args.regions)
        principals = principals_of(args.public, args.account)
        _check_name(args.name)
        builder = load_builder()
        folder = _zip_folder(args.zip_dir, builder)
        chosen = _plan(args, folder, builder)
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
    print(_shared_with(principals), file=sys.stderr)
    return 0


def _check_name(name: str) -> None:
    if not re.fullmatch(_LAYER_NAME, name) or len(name) > 40:
        raise PublishError(
            f"--name {name!r}: letters, digits, - and _ only, at most 40 characters "
            "(the Python and the architecture are appended)"
        )


def _zip_folder(zip_dir: Path | None, builder: ModuleType | None) -> Path:
    """Where the zips are, or are built: --zip-dir, else build/layer of the clone."""
    if builder is None and zip_dir is None:
        raise PublishError(
            "this serverless-supervisor was installed from a wheel, which cannot build the "
            "layer (layer/build.py is in the source tree only): pass --zip-dir DIR with the "
            "zips built in a clone (./build.sh layer) or taken from a release"
        )
    return (zip_dir or SOURCE_ROOT / "build" / "layer").resolve()


def _plan(args: argparse.Namespace, folder: Path, builder: ModuleType | None) -> Plan:
    """The zips of the Pythons and architectures asked for (every one by default)."""
    arches = list(ARCHITECTURES) if args.arch == "all" else [args.arch]
    named = list(dict.fromkeys(args.python or ()))
    return plan(
        folder,
        named or PYTHONS,
        arches,
        builder=builder,
        required=bool(named),
        rebuild=args.zip_dir is None,
    )


def _shared_with(principals: Sequence[str]) -> str:
    if list(principals) == ["*"]:
        return "shared with every AWS account"
    if principals:
        return f"shared with the accounts {', '.join(principals)}"
    return "shared with no other account (--public or --account to share)"


def _report(published: Sequence[Published], skipped: dict[str, str], destination: Path) -> None:
    print(table(published))
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(document(published, skipped), indent=2) + "\n")
    print(f"the ARNs are in {destination}", file=sys.stderr)


def _lambda_client(region: str) -> LambdaClient:
    import boto3

    return boto3.client("lambda", region_name=region)
