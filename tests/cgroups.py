"""Whether this host lets the tests make cgroup v1 limits (root, the cpu and memory
controllers writable), for the tests that measure at Lambda sizes."""

from __future__ import annotations

import pytest

from supervisor.lambda_sizes import CgroupLimiter, CgroupUnavailableError, LambdaSize

__all__ = ["needs_cgroups", "why_cgroups_unusable"]


def why_cgroups_unusable() -> str | None:
    """Why cgroups cannot be used here, or None (one is made and removed)."""
    try:
        CgroupLimiter(LambdaSize(128)).create().remove()
    except CgroupUnavailableError as exc:
        return str(exc)
    return None


_WHY_NOT = why_cgroups_unusable()
needs_cgroups = pytest.mark.skipif(_WHY_NOT is not None, reason=f"cgroups unusable: {_WHY_NOT}")
