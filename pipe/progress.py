"""Progress lines for a push: enough to see a long upload move, never a flood.

Per layer: one line when its upload starts, one when it is pushed, and in between at most one line
each time it crosses another quarter (but not within MIN_GAP seconds of the previous line) or
after INTERVAL seconds without a line. Layers already in the registry go to the DEBUG log only;
the push's summary counts them. Daemon-side retries get one line per retry round.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .daemon.push_stream import ALREADY_EXISTS, MOUNTED_FROM, PUSHED, PUSHING, RETRYING_IN, error_text

INTERVAL = 30.0
MIN_GAP = 5.0


def format_bytes(count: int | float) -> str:
    """Decimal units, as docker prints them: 999 B, 1.5 kB, 300.0 MB."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s"


@dataclass
class _Layer:
    started_at: float
    last_line_at: float
    quarter: int = 0
    retrying: bool = False


class PushProgress:
    """Feed it every record of a push stream (it is the `on_record` of read_push_stream)."""

    def __init__(
        self,
        info: Callable[[str], None],
        debug: Callable[[str], None] = lambda message: None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
        min_gap: float = MIN_GAP,
    ) -> None:
        self.info = info
        self.debug = debug
        self.clock = clock
        self.interval = interval
        self.min_gap = min_gap
        self.layers: dict[str, _Layer] = {}

    def __call__(self, record: Mapping[str, Any]) -> None:
        if error_text(record) is not None:
            return  # the caller reports errors, once
        status = str(record.get("status") or "")
        layer = record.get("id")
        if not layer:
            if status:
                self.debug(status)
            return
        now = self.clock()
        if status == PUSHING:
            self._pushing(str(layer), record, now)
        elif status == PUSHED:
            state = self.layers.pop(str(layer), None)
            took = f" in {format_duration(now - state.started_at)}" if state else ""
            self.info(f"Layer {layer}: pushed{took}")
        elif status == ALREADY_EXISTS or status.startswith(MOUNTED_FROM):
            self.debug(f"Layer {layer}: {status.lower()}, nothing to upload")
        elif status.startswith(RETRYING_IN):
            state = self.layers.setdefault(str(layer), _Layer(now, now))
            if not state.retrying:
                state.retrying = True
                self.info(f"Layer {layer}: upload failed; the Docker daemon is {status[0].lower()}{status[1:]}")
        else:
            self.debug(f"Layer {layer}: {status}")

    def _pushing(self, layer: str, record: Mapping[str, Any], now: float) -> None:
        detail = record.get("progressDetail") or {}
        current = int(detail.get("current") or 0)
        total = int(detail.get("total") or 0)
        state = self.layers.get(layer)
        if state is None or state.retrying:
            if state is None:
                state = self.layers[layer] = _Layer(now, now)
            state.retrying = False
            state.last_line_at = now
            state.quarter = 0
            size = f" {format_bytes(total)}" if total else ""
            self.info(f"Layer {layer}: uploading{size}")
            return
        quarter = min(3, int(4 * current / total)) if total else 0
        since = now - state.last_line_at
        if (quarter > state.quarter and since >= self.min_gap) or since >= self.interval:
            state.quarter = max(quarter, state.quarter)
            state.last_line_at = now
            if total:
                percent = min(100, int(100 * current / total))
                self.info(f"Layer {layer}: {format_bytes(current)} of {format_bytes(total)} ({percent}%)")
            else:
                self.info(f"Layer {layer}: {format_bytes(current)} sent")


class TransferProgress:
    """Progress of the native engine: a line per layer as it starts and as it is compressed, and a
    total line (read, sent, rate, time left) at most every `interval` seconds. Thread-safe: the
    uploaders report sent bytes from their own threads."""

    def __init__(
        self,
        info: Callable[[str], None],
        debug: Callable[[str], None] = lambda message: None,
        total_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
        interval: float = 10.0,
    ) -> None:
        self.info = info
        self.debug = debug
        self.total = total_bytes
        self.clock = clock
        self.interval = interval
        self.started = clock()
        self.last_line = self.started
        self.bytes_read = 0  # uncompressed, through the pipe (read and compressed, or skipped)
        self.bytes_sent = 0  # compressed, acknowledged by the registry
        self.lock = threading.Lock()

    def plan(self, layers: int, to_upload: int, skipped: int, mounted: int) -> None:
        self.info(f"Plan: {layers} layer{'' if layers == 1 else 's'}; {skipped} already in the registry, "
                  f"{mounted} mounted from other images, {to_upload} to upload")

    def layer_started(self, label: str, size: int, compressed: bool = False) -> None:
        self.info(f"Uploading {label} ({format_bytes(size)}{', as stored' if compressed else ' uncompressed'})")

    def layer_compressed(self, label: str, size: int, compressed: int, seconds: float) -> None:
        rate = size / seconds if seconds > 0 else 0
        self.info(f"Compressed {label}: {format_bytes(size)} -> {format_bytes(compressed)} in "
                  f"{format_duration(seconds)} ({format_bytes(rate)}/s)")

    def skipped(self, size: int) -> None:
        self.read(size)

    def read(self, count: int) -> None:
        with self.lock:
            self.bytes_read += count
        self._maybe_line()

    def sent(self, count: int) -> None:
        with self.lock:
            self.bytes_sent += count
        self._maybe_line()

    def _maybe_line(self) -> None:
        now = self.clock()
        with self.lock:
            if now - self.last_line < self.interval:
                return
            self.last_line = now
            elapsed = max(now - self.started, 1e-6)
            read, sent = self.bytes_read, self.bytes_sent
        rate = read / elapsed
        left = ""
        if self.total and rate > 0 and read < self.total:
            left = f", about {format_duration((self.total - read) / rate)} left"
        of_total = f" of {format_bytes(self.total)}" if self.total else ""
        self.info(f"Progress: {format_bytes(read)}{of_total} read, {format_bytes(sent)} sent, "
                  f"{format_bytes(rate)}/s{left}")
