"""How the reports write figures: one formatting of missing values, medians, sizes and verdicts for every table
(no plotting library: the tests import it without bench's extras)."""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Callable


def fmt(value: float | None, spec: str = "{:.2f}") -> str:
    return "n/a" if value is None else spec.format(value)


def median(summary: dict | None) -> float | None:
    """The median of one summary (stats.summary)."""
    return None if not summary else summary.get("median")


def med(figures: dict | None, metric: str = "seconds") -> float | None:
    """The median of one metric of one tool's figures (a value of stats.summarize_runs)."""
    return ((figures or {}).get(metric) or {}).get("median")


def megabytes(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.0f}"


def size(nbytes: int) -> str:
    return f"{nbytes / 2**30:g} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:g} MiB"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def seconds_range(figures: dict | None) -> str:
    """`median (min-max)` of a measurement's seconds, for the tables."""
    s = (figures or {}).get("seconds") or {}
    if s.get("median") is None:
        return "n/a"
    return f"{s['median']:.2f}" + (f" ({s['min']:.2f}-{s['max']:.2f})" if s.get("n", 0) > 1 else "")


def chart_line(what: str, draw: Callable[[], tuple[Path | None, bool]], stable: Path) -> tuple[str, bool]:
    """The table's line for one chart (`draw`: its file, and whether it was copied to `stable`), and
    whether drawing it failed: the figures are written either way."""
    try:
        png, published = draw()
    except Exception as exc:
        traceback.print_exc()
        return f"\n**{what} failed**: {type(exc).__name__}: {exc}\n", True
    if not png:
        return "", False
    return f"\nchart: {png}{f' (copied to {stable})' if published else ''}\n", False
