"""What the figures were measured on, and the wait for a VM's free page reporting to finish before a measurement
(why: BENCHMARKS.md, "Why the earlier runs scattered"): a writer that touches pages the host is taking back pays a host
fault for each."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from harness import reference_registry

REPORTED = Path("/sys/module/page_reporting/parameters/reported_kib")
# Longer than the 2 s between reporting passes and the ~2.3 s before the first pass after a free: a pass that
# reports nothing means reporting is done.
QUIET_S = 3.0
POLL_S = 0.25


def _first(path: str, prefix: str) -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path(path).read_text().splitlines()
                    if line.startswith(prefix))
    except (OSError, StopIteration):
        return "unknown"


def _mount_of(path: str) -> str:
    """The device and file system of the longest mount point holding `path`."""
    try:
        mounts = [line.split()[:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    dev, mnt, fstype = max((m for m in mounts if path.startswith(m[1])), key=lambda m: len(m[1]), default=("", "", ""))
    return f"{dev} ({fstype}) mounted on {mnt}" if mnt else "unknown"


def _docker_version() -> str:
    try:
        r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                           text=True, timeout=30)
        return r.stdout.strip() or "unavailable"
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"


def describe(workdir: Path) -> dict:
    total = _first("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(), "cpu": _first("/proc/cpuinfo", "model name"),
        "memory_gib": round(int(total.split()[0]) / 1024**2, 1) if total != "unknown" else 0,
        "kernel": platform.release(), "disk": _mount_of(str(workdir)), "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__, "reference": reference_registry.version(), "docker": _docker_version(),
    }


def reported_kib() -> int | None:
    try:
        return int(REPORTED.read_text())
    except (OSError, ValueError):
        return None


def settle_freed_pages(max_s: float = 30.0) -> float | None:
    """Block until no page was reported for QUIET_S (at most `max_s`); the seconds waited, or None on a machine
    without page reporting (nothing to wait for)."""
    if (last := reported_kib()) is None:
        return None
    start = quiet_since = time.monotonic()
    while (now := time.monotonic()) - start < max_s and now - quiet_since < QUIET_S:
        time.sleep(POLL_S)
        if (current := reported_kib()) != last:
            last, quiet_since = current, time.monotonic()
    return round(time.monotonic() - start, 2)
