"""The copy phase as a chart: promotion on the left (the pipe, skopeo, docker pull + tag + push, per image
size), the cold copies between the registries on the right (skopeo, the floor, the pipe, the pipe's re-run),
with the bars of report/chart.py."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # drawn straight to a file: no pyplot, no display backend

from harness.paths import REPO_ROOT

from ..settings import FULL, Settings
from .chart import bars, save
from .copy import TOOL_NAMES, case_name, ordered

STABLE_PATH = REPO_ROOT / "docs" / "bench-copy.png"
PROMOTE_TOOLS = ("docker", "skopeo", "pipe")
COPY_TOOLS = ("skopeo", "floor", "pipe", "rerun")
COLOURS = {"docker": "#8c8c8c", "skopeo": "#b07aa1", "floor": "#e6a23c", "pipe": "#1f6fb4", "rerun": "#9ecae1"}


def publishes(settings: Settings) -> bool:
    """Whether this run's chart replaces the one BENCHMARKS.md shows: only at the full run's sizes."""
    return (settings.copy_layers, settings.copy_layer_bytes) == (FULL.copy_layers, FULL.copy_layer_bytes)


def _label(case: str) -> str:
    return case_name(case).replace("promotion to a new tag, ", "promotion,\n").replace(", ", ",\n")


def draw(cop: dict, out: Path, title: str, publish: bool) -> Path | None:
    """Write the PNG to `out` (and, when `publish`, copy it to docs/bench-copy.png); None when nothing was measured."""
    summ = cop.get("summary") or {}
    promote = [c for c in ordered(cop) if c.startswith("promote")]
    copies = [c for c in ordered(cop) if not c.startswith("promote")]
    if not summ:
        return None
    widths = [n for n in (len(promote) * 1.2, len(copies) * 1.6) if n]
    fig = Figure(figsize=(13, 5.5), dpi=110)
    axes = fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}, squeeze=False)
    panels = list(axes[0])
    if promote:
        ax = panels.pop(0)
        bars(ax, summ, promote, PROMOTE_TOOLS, TOOL_NAMES, COLOURS, _label, "%.2f")
        ax.set_ylabel("seconds (median; whiskers: min-max)")
        ax.set_title("a new tag for an image in the emulator", fontsize=9)
        ax.set_ylim(top=ax.get_ylim()[1] * 1.35)  # room for the legend above the tall docker bar
        ax.legend(fontsize=8, loc="upper left")
    if copies:
        ax = panels.pop(0)
        bars(ax, summ, copies, COPY_TOOLS, TOOL_NAMES, COLOURS, _label, "%.2f")
        ax.set_title("between distribution 2.8 and the emulator, destination empty", fontsize=9)
    return save(fig, title, out, STABLE_PATH if publish else None)
