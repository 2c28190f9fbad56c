"""Medians, spreads and ratios of repeated measurements."""
from __future__ import annotations

import statistics

MB = 1_000_000  # rates are decimal megabytes per second


def summary(values: list[float]) -> dict:
    """Median with min and max, or an empty marker when nothing was measured."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0, "values": []}
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }


def summarize_runs(runs: dict[str, dict[str, list[dict]]], metrics: tuple[str, ...]) -> dict:
    """{case: {tool: [run, ...]}} to {case: {tool: {metric: summary}}}, for the metrics any run has."""
    out: dict = {}
    for case, tools in runs.items():
        for tool, measured in tools.items():
            out.setdefault(case, {})[tool] = {
                m: summary([r[m] for r in measured if r.get(m) is not None]) for m in metrics
                if any(r.get(m) is not None for r in measured)
            }
    return out


def ratio(a: dict, b: dict) -> float | None:
    """Ratio of two summaries' medians (a / b)."""
    if not a.get("median") or not b.get("median"):
        return None
    return a["median"] / b["median"]


def rate_mb_s(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / MB
