"""One measured command: wall time, its own CPU-seconds and peak RSS (from wait4), and the CPU-seconds
of the other processes involved (dockerd, the registry), read from /proc before and after.

What a registry received is not counted here: /proc/<pid>/io's rchar misses recv() on sockets, and
loopback counters are shared with every other process on the machine."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from .cpu import cpu_seconds

POLL = 0.01
GNU_TIME = "/usr/bin/time"  # Debian package `time`


def daemon_pid(pidfile: str = "/var/run/docker.pid") -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


class Others:
    """CPU-seconds of named processes across a block."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.result: dict[str, float | int | None] = {}

    def _snap(self) -> dict[str, float | int | None]:
        snap: dict[str, float | int | None] = {}
        for name, pid in self.pids.items():
            try:
                snap[f"{name}_cpu_s"] = cpu_seconds(pid)
            except OSError:
                snap[f"{name}_cpu_s"] = None
        return snap

    def __enter__(self) -> "Others":
        self._before = self._snap()
        return self

    def __exit__(self, *exc) -> None:
        after = self._snap()
        for key, value in after.items():
            before = self._before.get(key)
            delta = None if value is None or before is None else value - before
            self.result[key] = round(delta, 3) if isinstance(delta, float) else delta


def run(cmd: list[str], env: dict[str, str], timeout: float, log: Path, others: dict[str, int | None],
        cwd: Path | None = None) -> dict:
    """Run `cmd` to the end (killed after `timeout`); raise with its log's tail when it fails.

    The peak RSS comes from GNU time wrapped around the command: the kernel's maxrss of a child
    counts the memory of the process that forked it (kept at exec), and this harness is far larger
    than `time`."""
    rss_file = log.with_suffix(".maxrss")
    with open(log, "wb") as out, Others(others) as other:
        t0 = time.monotonic()
        proc = subprocess.Popen([GNU_TIME, "-q", "-f", "%M", "-o", str(rss_file), *cmd], env=env, cwd=cwd,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # the group this call started, nothing else
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise RuntimeError(f"{' '.join(cmd[:3])} did not finish within {timeout:.0f}s: {_tail(log)}")
            time.sleep(POLL)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} exited with {proc.returncode}: {_tail(log)}")
    try:
        peak_kib: int | None = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        peak_kib = None
    return {
        "seconds": round(seconds, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),  # the command's and its children's (time's is ~0)
        "sys_s": round(usage.ru_stime, 3),
        "minor_faults": usage.ru_minflt,  # each one a page the host may fault in too (freed_pages.py)
        "peak_rss_mb": None if peak_kib is None else round(peak_kib * 1024 / 1e6, 1),
        **other.result,
    }


def _tail(log: Path) -> str:
    return log.read_text(errors="replace").strip()[-800:] if log.exists() else ""
