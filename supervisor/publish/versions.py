"""The layer versions: each zip published to each region, the permissions granted, and the
ARNs as a table and as the JSON file."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from supervisor.publish.errors import PublishError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_lambda.type_defs import PublishLayerVersionResponseTypeDef

    from supervisor.publish.zips import LayerZip

__all__ = ["HANDLER", "LICENSE", "Published", "document", "publish", "table"]

HANDLER = "handlers.lambda_handler.handler"
LICENSE = "Apache-2.0"


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
                response = _publish_version(client, layer, layer_name, principals)
            except (BotoCoreError, ClientError) as exc:
                raise PublishError(
                    f"{region}: publishing {layer.path.name} as {layer_name} failed: {exc}",
                    published,
                ) from exc
            published.append(_published(region, layer, layer_name, principals, response))
    return published


def _publish_version(
    client: LambdaClient, layer: LayerZip, layer_name: str, principals: Sequence[str]
) -> PublishLayerVersionResponseTypeDef:
    """Publish one zip as a new version and let each principal use it."""
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
    for principal in principals:
        client.add_layer_version_permission(
            LayerName=layer_name,
            VersionNumber=response["Version"],
            StatementId="public" if principal == "*" else f"account-{principal}",
            Action="lambda:GetLayerVersion",
            Principal=principal,
        )
    return response


def _published(
    region: str,
    layer: LayerZip,
    layer_name: str,
    principals: Sequence[str],
    response: PublishLayerVersionResponseTypeDef,
) -> Published:
    return Published(
        region=region,
        python=layer.python,
        architecture=layer.arch,
        layer_name=layer_name,
        layer_version=response["Version"],
        arn=response["LayerVersionArn"],
        compatible_runtimes=list(response.get("CompatibleRuntimes", [])),
        compatible_architectures=list(response.get("CompatibleArchitectures", [])),
        shared_with=list(principals),
        supervisor_version=layer.version,
        code_sha256=response["Content"].get("CodeSha256", ""),
        zip=str(layer.path),
    )


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
