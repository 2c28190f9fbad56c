"""What the figures were measured on."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import aiohttp

from harness import reference_registry


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
