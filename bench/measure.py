"""What a measurement records. A command (run through harness/pipe_process.py): wall time, its own CPU-seconds and
peak RSS (GNU time wraps it: the kernel's maxrss of a child counts the memory of the process that forked it, kept at
exec, and this harness is far larger than `time`), and the CPU-seconds of the other processes involved (dockerd, the
registries), read from /proc before and after. A registry's own peak RSS: PeakRss.

What a registry received is not counted: /proc/<pid>/io's rchar misses recv() on sockets, and loopback counters
are shared with every other process on the machine."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import pipe_process

GNU_TIME = "/usr/bin/time"  # Debian package `time`
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads: steadier than wall-clock rates on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def status_kb(pid: int, field: str) -> int | None:
    """A field of /proc/<pid>/status in kB (VmRSS, VmHWM), None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def daemon_pid(pidfile: str = "/var/run/docker.pid") -> int | None:
    try:
        return int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return None


@contextmanager
def others_cpu(pids: dict[str, int | None]) -> Iterator[dict[str, float | None]]:
    """CPU-seconds of named processes across the block, in the dict it yields as `<name>_cpu_s` once the block ends
    (None where unreadable)."""
    pids = {f"{name}_cpu_s": pid for name, pid in pids.items() if pid}

    def snap() -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for key, pid in pids.items():
            try:
                out[key] = cpu_seconds(pid)
            except OSError:
                out[key] = None
        return out

    before, result = snap(), {}
    yield result
    result.update({key: None if now is None or before[key] is None else round(now - before[key], 3)
                   for key, now in snap().items()})


class PeakRss:
    """`peak_mb`: the largest RSS of `pid` while the block ran (decimal MB): the kernel's high-water mark (VmHWM), reset
    as the block starts (Linux >= 4.0; needs ptrace rights over the process, as its owner or root)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.hwm_kb = pid, 0

    def __enter__(self) -> "PeakRss":
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # "5": VmHWM back to the current RSS
        return self

    def __exit__(self, *exc) -> None:
        self.hwm_kb = status_kb(self.pid, "VmHWM") or 0

    @property
    def peak_mb(self) -> float:
        return self.hwm_kb * 1024 / 1e6


def run(cmd: list[str], env: dict[str, str], timeout: float, log: Path, others: dict[str, int | None],
        cwd: Path | None = None) -> dict:
    """Run `cmd` to the end, its output in `log`; raise with the log's tail when it fails or passes `timeout`."""
    return _measured(cmd[:3], log, others,
                     lambda timed: pipe_process.run([*timed, *cmd], env, timeout, cwd=cwd, log=log))


def pipe(variables: dict[str, str], env: dict[str, str], timeout: float, log: Path,
         others: dict[str, int | None]) -> dict:
    """`python -m pipe` from the checkout with `variables`, beside `env`, measured as `run` measures."""
    return _measured(["python -m pipe"], log, others, lambda timed: pipe_process.run_pipe(
        variables, timeout=timeout, base_env=env, wrap=timed, log=log))


def _measured(what: list[str], log: Path, others: dict[str, int | None],
              start: Callable[[list[str]], pipe_process.ProcessRun]) -> dict:
    rss_file = log.with_suffix(".maxrss")
    with others_cpu(others) as other:
        try:
            done = start([GNU_TIME, "-q", "-f", "%M", "-o", str(rss_file)])
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{' '.join(what)} did not finish within {exc.timeout:.0f}s: {_tail(log)}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(what)} exited with {done.returncode}: {_tail(log)}")
    try:
        peak_kib: int | None = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        peak_kib = None
    return {"seconds": round(done.seconds, 3), "cpu_s": round(done.cpu_s, 3),  # with its children's (time's is ~0)
            "sys_s": round(done.sys_s, 3), "minor_faults": done.minor_faults,  # pages the VM's host may fault in too
            "peak_rss_mb": None if peak_kib is None else round(peak_kib * 1024 / 1e6, 1), **other}


def step(cmd: list[str], timeout: float, **kwargs) -> float:
    """A step around the measurements (a login, a build, a seed) run to its end, raising with its error's tail when it
    fails; the seconds it took (recorded beside the figures, never one of them)."""
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {r.stderr.strip()[-500:]}")
    return round(time.monotonic() - t0, 1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace").strip()[-800:] if log.exists() else ""
