"""Optional: sample the embedded registry with py-spy during a phase (`python -m bench --profile`): the raw stacks go
to bench/results/ with a per-thread summary of where busy samples fall. Sampling slows the registry a little: a
profiled run's figures are for diagnosis, not for BENCHMARKS.md."""
from __future__ import annotations

import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

WAITING = ("SimpleQueue_get", "epoll_wait", "select_epoll_poll")


class Profiler:
    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out, self.proc = pid, out, None

    def __enter__(self) -> "Profiler":
        local = Path(sys.executable).parent / "py-spy"
        if (exe := str(local) if local.exists() else shutil.which("py-spy")) is None:
            print("py-spy not found: pip install -r requirements-bench.txt; profiling skipped", file=sys.stderr)
            return self
        self.proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--threads", "--idle", "--native", "--rate", "100",
             "--format", "raw", "--output", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.out.exists():
            self.out.with_suffix(".summary.txt").write_text(summarize(self.out))


def summarize(raw: Path, top: int = 12) -> str:
    """Per thread: samples, busy samples, and the innermost named frames of the busy ones."""
    threads: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        names = [f.split(" (")[0] for f in frames[1:]]
        if any(w in name for name in names[-5:] for w in WAITING):
            threads[thread]["(idle)"] += int(count)
            continue
        if "pthread_cond_timedwait" in names[-3:]:
            threads[thread]["(waiting for the GIL)"] += int(count)
            continue
        named = [n for n in names if not n.startswith("0x")]
        threads[thread][named[-1] if named else "?"] += int(count)
    lines = []
    for thread, counter in sorted(threads.items()):
        total = sum(counter.values())
        busy = total - counter["(idle)"]
        if not busy:
            continue
        lines.append(f"{thread}: {total} samples, {busy} busy")
        lines += [f"  {n:6d}  {name}" for name, n in counter.most_common(top) if name != "(idle)"]
    return "\n".join(lines) + "\n"
