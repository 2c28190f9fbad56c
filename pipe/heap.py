"""glibc's heap told to keep what the pipe frees, for the pipe to use again.

A push moves its bytes in 1 MiB pieces on several threads (a stored blob read from its source, kept
until the registry acknowledges its chunk, then let go). By default glibc serves each piece with its
own mmap and returns it with munmap when it is freed (or trims the heap it came from), so every
piece costs 256 fresh pages to fault in: 120,000 faults for a 474 MB copy, about 0.3 CPU-s, more on
a VM whose host takes freed pages back (bench/machine.py). Served from the heap and kept there,
the same pieces reuse the same pages. Larger buffers (a 16 MiB chunk) keep their own mmap.
"""
from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_FROM = 4 * 1024 * 1024  # a block this large still gets its own mmap (and its memory back at free)
TRIM_FROM = 256 * 1024 * 1024  # free memory at a heap's top is given back beyond this much


def keep_freed_memory() -> bool:
    """Set the two thresholds; False where the C library is not glibc (its defaults stay)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_FROM)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_FROM))
    if not done:
        log.debug("mallopt refused the heap thresholds: glibc's defaults stay")
    return done
