"""Template filters: sizes, times and digests as a person reads them."""
from __future__ import annotations

import time

UNITS = ("B", "KB", "MB", "GB", "TB")


def human_bytes(n: int | None) -> str:
    """Decimal units, as Bitbucket shows sizes: 1 KB = 1000 bytes."""
    if n is None:
        return "–"
    value, unit = float(n), 0
    while value >= 1000 and unit < len(UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{int(value)} B" if unit == 0 else f"{value:.1f} {UNITS[unit]}"


def when(value: str | float | None) -> str:
    """An ISO timestamp (as the API gives it) or epoch seconds, shown as `YYYY-MM-DD HH:MM UTC`."""
    if value is None or value == "":
        return "–"
    if isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    day, sep, clock = value.partition("T")
    if not sep:
        return value
    clock = clock.rstrip("Z").split(".")[0].split("+")[0]  # image configs carry nanoseconds
    return f"{day} {clock} UTC"


def short_digest(digest: str | None) -> str:
    if not digest:
        return "–"
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}"


FILTERS = {"bytes": human_bytes, "when": when, "short_digest": short_digest}
