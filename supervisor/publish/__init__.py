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

``zips`` finds, builds and checks the zips; ``versions`` publishes them and words the result;
``command`` is the command's options and its run.
"""

from __future__ import annotations

from supervisor.publish.command import (
    DEFAULT_NAME,
    configure_parser,
    principals_of,
    regions_of,
    run,
)
from supervisor.publish.errors import PublishError
from supervisor.publish.versions import HANDLER, LICENSE, Published, document, publish, table
from supervisor.publish.zips import (
    ARCHITECTURES,
    BUILDER,
    PYTHONS,
    SOURCE_ROOT,
    ZIP_FILE_LIMIT,
    LayerZip,
    Plan,
    load_builder,
    plan,
    read_zip,
    zip_name,
)

__all__ = [
    "ARCHITECTURES",
    "BUILDER",
    "DEFAULT_NAME",
    "HANDLER",
    "LICENSE",
    "PYTHONS",
    "SOURCE_ROOT",
    "ZIP_FILE_LIMIT",
    "LayerZip",
    "Plan",
    "PublishError",
    "Published",
    "configure_parser",
    "document",
    "load_builder",
    "plan",
    "principals_of",
    "publish",
    "read_zip",
    "regions_of",
    "run",
    "table",
    "zip_name",
]
