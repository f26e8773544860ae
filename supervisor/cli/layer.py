"""``layer publish``: publish the Lambda Layer's zips as layer versions (``supervisor.publish``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "publish"]


def add_parser(commands: Any) -> None:
    """Add ``layer`` and its action ``publish`` to the command line's subcommands."""
    from supervisor import publish as publishing

    layer = commands.add_parser(
        "layer",
        help="publish the Lambda Layer and print its ARNs",
        description="The Lambda Layer: build its zips and publish them as layer versions.",
    )
    actions = layer.add_subparsers(title="actions", metavar="ACTION", required=True)
    publish_parser = actions.add_parser(
        "publish",
        help="publish the layer zips to AWS regions; print and write the ARNs",
        description=(
            "Publish one layer per Python and architecture to every region given (building the "
            "zips first from a clone, unless --zip-dir has them), grant the permissions asked "
            "for, print the table of layer version ARNs and write it as JSON."
        ),
    )
    publishing.configure_parser(publish_parser)
    publish_parser.set_defaults(command="layer publish", handler=publish)


def publish(args: argparse.Namespace) -> int:
    """Publish the layer versions and print their ARNs."""
    from supervisor import publish as publishing

    return publishing.run(args)
