"""Image files: whether a tarball is a saved image or a root file system, and its name.

``container.image_file`` is either an image saved by ``docker save`` (or an OCI layout),
which ``udocker load`` reads, or a root file system, which ``udocker import`` turns into a
container.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Literal

from supervisor.errors import ExecutionError

__all__ = ["ImageKind", "image_kind", "saved_image_name"]

ImageKind = Literal["docker-save", "rootfs"]

# Top-level members of a `docker save` (or OCI) archive; a root file system has none.
_SAVED_FILES = frozenset({"manifest.json", "repositories", "oci-layout", "index.json"})
_SAVED_LAYER = re.compile(r"[0-9a-f]{64}(\.json)?$")
_ROOTFS_DIRS = frozenset(
    {"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "media", "mnt", "opt"}
    | {"proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var"}
)


def image_kind(path: Path) -> ImageKind:
    """Whether ``path`` holds an image saved by ``docker save`` (for ``udocker load``) or a
    root file system (for ``udocker import``), told by the first member that shows it."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = _member_parts(member)
                if not parts:
                    continue
                top = parts[0]
                if (len(parts) == 1 and top in _SAVED_FILES) or top == "blobs":
                    return "docker-save"
                if _SAVED_LAYER.match(top):
                    return "docker-save"
                if top in _ROOTFS_DIRS:
                    return "rootfs"
    except (OSError, tarfile.TarError) as exc:
        raise ExecutionError(
            f"container.image_file {path}: not a readable tar archive: {exc}"
        ) from exc
    return "rootfs"


def saved_image_name(path: Path) -> str:
    """The first ``repository:tag`` that a ``docker save`` archive names."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = _member_parts(member)
                if parts not in (["manifest.json"], ["repositories"]):
                    continue
                content = archive.extractfile(member)
                if content is None:
                    continue
                data = json.load(content)
                if parts == ["manifest.json"]:
                    tags = [tag for item in data for tag in item.get("RepoTags") or ()]
                else:
                    tags = [f"{repo}:{tag}" for repo, by_tag in data.items() for tag in by_tag]
                if tags:
                    return str(tags[0])
    except (OSError, tarfile.TarError, ValueError, AttributeError, TypeError) as exc:
        raise ExecutionError(
            f"container.image_file {path}: cannot read the image's name: {exc}"
        ) from exc
    raise ExecutionError(
        f"container.image_file {path} names no image: set container.image to the "
        "repository:tag to run"
    )


def _member_parts(member: tarfile.TarInfo) -> list[str]:
    return [part for part in member.name.split("/") if part not in ("", ".")]
