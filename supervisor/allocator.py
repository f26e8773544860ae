"""The C allocator of the process: few malloc arenas for the transfer threads.

glibc gives each thread that allocates while another does an arena of its own (up to 8
per CPU), and keeps what is freed there for that arena.  s3transfer's threads read 1 MiB
blocks (botocore hashes and checksums each part it sends), so one 200 MiB transfer leaves
some 30 MiB behind in ten arenas, in a Lambda function that pays for its memory.  Two
arenas serve the same threads, which mostly wait on the network or the GIL, within a few
MiB.  Elsewhere than glibc (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import logging

__all__ = ["ARENAS", "limit_arenas"]

logger = logging.getLogger(__name__)

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_arenas(count: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``count`` (``mallopt(M_ARENA_MAX)``); whether it was done.

    Threads that already have an arena keep it; the ones started later share.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, count))
    if not done:
        logger.debug("mallopt(M_ARENA_MAX, %d) refused", count)
    return done
