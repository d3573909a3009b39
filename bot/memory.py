"""The process's malloc arenas: two, as MALLOC_ARENA_MAX=2 would give, unless the environment sets them.

glibc gives each thread that allocates its own malloc arena, up to eight per core. The executor runs
MTURK_MAX_CONCURRENCY call threads (botocore's and urllib3's buffers come from malloc, not from Python's
small-object allocator), and every arena keeps the memory freed in it: a 100,000-worker grant grew the
app's resident memory by about 12 MB that way (measured with bench/hundred_k.py: 135 MB after the upload,
147 MB by the end of the grant; with two arenas it stayed at the upload's peak). Two arenas is the usual
setting for threaded Python services; it costs nothing measurable here (the same grant rate).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (call before the process starts its threads); whether it was done.

    Left alone where MALLOC_ARENA_MAX is set (the operator chose), and off glibc (there is no mallopt).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc: musl and macOS have no mallopt
        log.debug("mallopt is not available; malloc arenas left as they are")
        return False
