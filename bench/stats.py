"""Medians, spreads and ratios of repeated measurements, and the order the measurements of a repetition run in."""
from __future__ import annotations

import statistics
from collections.abc import Sequence

MB = 1_000_000  # rates are decimal megabytes per second
MIN_RATE = 10e6  # bytes/s: a blob transfer slower than this is treated as hung


def summary(values: list[float]) -> dict:
    """Median with min and max, or an empty marker when nothing was measured."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": values}


def summarize_runs(runs: dict[str, dict[str, list[dict]]], metrics: tuple[str, ...] | None = None) -> dict:
    """{case: {tool: [run, ...]}} to {case: {tool: {metric: summary}}}, for `metrics` (default: every number a run
    has) where any run has it."""
    out: dict = {}
    for case, tools in runs.items():
        for tool, measured in tools.items():
            names = metrics or sorted({k for r in measured for k, v in r.items() if _number(v)})
            out.setdefault(case, {})[tool] = {m: summary([r[m] for r in measured if _number(r.get(m))]) for m in names
                                              if any(_number(r.get(m)) for r in measured)}
    return out


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ratio(a: dict, b: dict) -> float | None:
    """Ratio of two summaries' medians (a / b)."""
    return a["median"] / b["median"] if a.get("median") and b.get("median") else None


def compare(per_label: dict[str, list[float]]) -> dict:
    """Each registry's summary, and the embedded/reference ratio of medians."""
    out = {label: summary(values) for label, values in per_label.items()}
    out["ratio"] = ratio(out["embedded"], out["reference"])
    return out


def rate_mb_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / MB


def time_limit(nbytes: int) -> float:
    """Seconds to wait for a blob transfer of `nbytes` before treating it as hung."""
    return 60.0 + nbytes / MIN_RATE


def rotate(items: Sequence[str], rep: int) -> list[str]:
    """Rotated left by `rep`: each first in turn (two registries: each first half the time)."""
    k = rep % len(items)
    return [*items[k:], *items[:k]]
