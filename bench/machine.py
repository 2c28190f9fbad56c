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
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _mount_of(path: str) -> str:
    best = ("", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype, *_ = line.split()
            if path.startswith(mnt) and len(mnt) > len(best[0]):
                best = (mnt, f"{dev} ({fstype}) mounted on {mnt}")
    except OSError:
        pass
    return best[1] or "unknown"


def _docker_version() -> str:
    try:
        r = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                           text=True, timeout=30)
        return r.stdout.strip() or "unavailable"
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"


def describe(workdir: Path) -> dict:
    total = _first("/proc/meminfo", "MemTotal")
    mem_kb = int(total.split()[0]) if total != "unknown" else 0
    return {
        "nproc": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "memory_gib": round(mem_kb / 1024**2, 1),
        "kernel": platform.release(),
        "disk": _mount_of(str(workdir)),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "reference": reference_registry.version(),
        "docker": _docker_version(),
    }
