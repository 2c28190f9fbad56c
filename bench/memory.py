"""Peak resident memory of a process: the kernel's high-water mark, reset before each measurement,
cross-checked by sampling VmRSS from a thread."""
from __future__ import annotations

import threading
from pathlib import Path

SAMPLE_SECONDS = 0.02


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return kb * 1024 / 1e6 if kb is not None else None


class PeakRss:
    """Context manager: `peak_mb` is the largest RSS of `pid` while the block ran (decimal MB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.sampled_kb = 0
        self.hwm_kb: int | None = None
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            kb = _status_kb(self.pid, "VmRSS")
            if kb is not None:
                self.sampled_kb = max(self.sampled_kb, kb)
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> "PeakRss":
        try:
            # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0, needs ptrace rights).
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.hwm_kb = _status_kb(self.pid, "VmHWM") if self.hwm_reset else None

    @property
    def peak_mb(self) -> float:
        kb = max(self.sampled_kb, self.hwm_kb or 0)
        return kb * 1024 / 1e6
