"""The two registries side by side: the labels' figures compared, and how long a transfer may take."""
from __future__ import annotations

from ..stats import ratio, summary

MIN_RATE = 10e6  # bytes/s: an operation slower than this is treated as hung


def time_limit(nbytes: int) -> float:
    """Seconds to wait for a transfer of `nbytes` before treating it as hung."""
    return 60.0 + nbytes / MIN_RATE


def compare(per_label: dict[str, list[float]], higher_is_better: bool = True) -> dict:
    """Each label's summary, and the embedded/reference ratio of medians (None when lower is better)."""
    out = {label: summary(values) for label, values in per_label.items()}
    out["ratio"] = ratio(out["embedded"], out["reference"]) if higher_is_better else None
    return out
