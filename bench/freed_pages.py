"""Wait for a VM's free page reporting to finish before a measurement (why: BENCHMARKS.md, "Why the earlier runs
scattered"): a writer that touches pages the host is taking back pays a host fault for each."""
from __future__ import annotations

import time
from pathlib import Path

REPORTED = Path("/sys/module/page_reporting/parameters/reported_kib")
# Longer than the 2 s between reporting passes and the ~2.3 s before the first pass after a free: a pass that
# reports nothing means reporting is done.
QUIET_S = 3.0
POLL_S = 0.25


def reported_kib() -> int | None:
    try:
        return int(REPORTED.read_text())
    except (OSError, ValueError):
        return None


def settle(max_s: float = 30.0) -> float | None:
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
