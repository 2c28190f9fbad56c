"""The push phases as a chart: median time per case, one bar per tool side by side, min-max whiskers.
The engine phase's 20.10 cases on the left, the archive phase (when it ran) on the right, each with its own
tools. The engine phase's Docker 26 cases (report/daemons_chart.py) and the copy phase (report/copy_chart.py)
have their own charts, drawn with the same bars."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure  # drawn straight to a file: no pyplot, no display backend

from harness.paths import REPO_ROOT

from ..settings import FULL, Settings
from .archive import CASE_NAMES as ARCHIVE_CASE_NAMES
from .archive import TOOL_NAMES as ARCHIVE_TOOL_NAMES
from .engine import CASE_NAMES, TOOL_NAMES
from .format import size

STABLE_PATH = REPO_ROOT / "docs" / "bench-push.png"
TOOLS = ("docker_push", "native", "docker_engine", "export", "export_gzip")
KIND_NAMES = {"usr": "real files (/usr)", "random": "random bytes"}
COLOURS = {"docker_push": "#8c8c8c", "native": "#1f6fb4", "docker_engine": "#9ecae1", "export": "#e6a23c",
           "export_gzip": "#f3d08a"}
ARCHIVE_TOOLS = ("skopeo", "pipe")
ARCHIVE_COLOURS = {"skopeo": "#b07aa1", "pipe": "#1f6fb4"}


def bars(ax, summ: dict, cases: list[str], tools: tuple[str, ...], names: dict[str, str], colours: dict[str, str],
        label: Callable[[str], str], value_format: str = "%.1f") -> None:
    width = 0.8 / len(tools)
    for i, tool in enumerate(tools):
        xs, heights, low, high = [], [], [], []
        for x, case in enumerate(cases):
            s = (summ[case].get(tool) or {}).get("seconds") or {}
            if s.get("median") is None:
                continue
            xs.append(x + (i - (len(tools) - 1) / 2) * width)
            heights.append(s["median"])
            low.append(s["median"] - s["min"])
            high.append(s["max"] - s["median"])
        if xs:
            drawn = ax.bar(xs, heights, width, yerr=[low, high], capsize=3, label=names[tool].replace("`", ""),
                           color=colours[tool])
            ax.bar_label(drawn, fmt=value_format, fontsize=7, padding=2)
    ax.set_xticks(range(len(cases)), [label(c) for c in cases], fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def publishes(settings: Settings, eng: dict, arc: dict) -> bool:
    """Whether this run's chart replaces the one BENCHMARKS.md and the README show: only at the full run's sizes,
    and only with the engine phase in it (the chart's main figures)."""
    return bool(eng.get("summary")) and (
        (settings.engine_layers, settings.engine_layer_bytes) == (FULL.engine_layers, FULL.engine_layer_bytes)
        and (not arc.get("summary") or (settings.archive_layers, settings.archive_layer_bytes)
             == (FULL.archive_layers, FULL.archive_layer_bytes)))


def draw(eng: dict, out: Path, title: str, publish: bool, archive: dict | None = None) -> Path | None:
    """Write the PNG to `out` (and, when `publish`, copy it to docs/bench-push.png); None when nothing was measured."""
    summ = eng.get("summary") or {}
    on_main = [c for c in summ if c.partition("/")[2] in CASE_NAMES]  # `cold-26-classic` etc. are not
    cases = sorted(on_main, key=lambda c: (list(CASE_NAMES).index(c.partition("/")[2]), c))
    arc_summ = (archive or {}).get("summary") or {}
    arc_cases = [c for c in ARCHIVE_CASE_NAMES if c in arc_summ]
    if not cases and not arc_cases:
        return None
    widths = [n for n in (len(cases) * 2, len(arc_cases)) if n]  # the engine cases have twice the tools
    fig = Figure(figsize=(11 + 2.5 * bool(arc_cases and cases), 5.5), dpi=110)
    axes = fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}, squeeze=False)
    panels = list(axes[0])
    if cases:
        ax = panels.pop(0)

        def label(c: str) -> str:
            kind, _, suffix = c.partition("/")
            return f"{KIND_NAMES.get(kind, c)} {size(eng['image_bytes'])}\n{CASE_NAMES[suffix]}".replace(", ", ",\n")

        bars(ax, summ, cases, TOOLS, TOOL_NAMES, COLOURS, label)
        ax.set_ylabel("seconds (median; whiskers: min-max)")
        if "native" not in (eng.get("engines_reported") or []):
            ax.set_title("(native engine not landed: PUSH_ENGINE=native ran the daemon's push)", fontsize=9)
    if arc_cases:
        ax = panels.pop(0)
        arc_size = size((archive or {})["image_bytes"])
        bars(ax, arc_summ, arc_cases, ARCHIVE_TOOLS, ARCHIVE_TOOL_NAMES, ARCHIVE_COLOURS,
              lambda c: f"{ARCHIVE_CASE_NAMES[c]}\nreal files {arc_size}, cold".replace("`", "").replace(", ", ",\n"))
        ax.set_title("from an archive, no daemon", fontsize=9)
        if not cases:
            ax.set_ylabel("seconds (median; whiskers: min-max)")
    return save(fig, title, out, STABLE_PATH if publish else None)


def save(fig: Figure, title: str, out: Path, publish_to: Path | None) -> Path:
    """Title, lay out and write a chart; a full-size run also copies it where the docs show it."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    if publish_to is not None:
        publish_to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, publish_to)
    return out
