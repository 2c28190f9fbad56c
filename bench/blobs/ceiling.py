"""The ceilings measured in the same run: hashlib SHA-256 on one core, and plain writes into the page cache."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..stats import rate_mb_s

BUFFER = 4 * 1024 * 1024


def sha256_rate(total: int = 1024**3, seconds_cap: float = 10.0) -> float:
    """MB/s of hashlib.sha256 over `total` bytes fed in 4 MiB buffers (what the registry's hasher sees)."""
    data = os.urandom(BUFFER)
    h = hashlib.sha256()
    done = 0
    t0 = time.perf_counter()
    while done < total and time.perf_counter() - t0 < seconds_cap:
        h.update(data)
        done += BUFFER
    return rate_mb_s(done, time.perf_counter() - t0)


def page_cache_write_rate(path: Path, total: int = 1024**3) -> float:
    """MB/s of plain 4 MiB os.write calls into a new file (after a sync): what any registry's
    blob writes are bounded by on this machine, before the disk itself (the file is removed)."""
    data = os.urandom(BUFFER)
    os.sync()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        t0 = time.perf_counter()
        done = 0
        while done < total:
            done += os.write(fd, data)
        elapsed = time.perf_counter() - t0
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return rate_mb_s(done, elapsed)
