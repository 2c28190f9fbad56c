"""The push phases as charts (BENCHMARKS.md shows them): median time per case, one bar per tool, min-max whiskers;
a run at the full sizes copies each to docs/."""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure  # drawn straight to a file: no pyplot, no display backend

from harness.paths import REPO_ROOT

from ..settings import FULL, Settings
from . import archive, copy, engine
from .format import size

STABLE = {"push": REPO_ROOT / "docs" / "bench-push.png", "push-26": REPO_ROOT / "docs" / "bench-push-26.png",
          "copy": REPO_ROOT / "docs" / "bench-copy.png"}
KIND_NAMES = {"usr": "real files (/usr)", "random": "random bytes"}
COLOURS = {"docker_push": "#8c8c8c", "auto": "#08306b", "native": "#1f6fb4", "docker_engine": "#9ecae1",
           "export": "#e6a23c", "skopeo": "#b07aa1", "pipe": "#1f6fb4", "docker": "#8c8c8c",
           "floor": "#e6a23c", "rerun": "#9ecae1"}  # auto: native on the classic store, the daemon's push on containerd
SECONDS = "seconds (median; whiskers: min-max)"


def bars(ax, summ: dict, cases: list[str], tools: tuple[str, ...], names: dict[str, str],
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
                           color=COLOURS[tool])
            ax.bar_label(drawn, fmt=value_format, fontsize=7, padding=2)
    ax.set_xticks(range(len(cases)), [label(c) for c in cases], fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def engine_label(eng: dict, case: str) -> str:
    """`usr/cold-26-classic` -> the kind, the image's size and the case's name, on three lines."""
    kind, _, suffix = case.partition("/")
    return f"{KIND_NAMES.get(kind, kind)} {size(eng['image_bytes'])}\n{engine.CASE_NAMES[suffix.partition('-')[0]]}" \
        .replace(", ", ",\n")


def full_size(settings: Settings, *phases: str) -> bool:
    """Whether a run's charts replace the ones the docs show: only at the full run's sizes of those phases."""
    return all((getattr(settings, f"{p}_layers"), getattr(settings, f"{p}_layer_bytes"))
               == (getattr(FULL, f"{p}_layers"), getattr(FULL, f"{p}_layer_bytes")) for p in phases)


def push(eng: dict, arc: dict, out: Path, title: str) -> Path | None:
    """The 20.10 cases on the left, the archive phase (when it ran) on the right, each with its own tools."""
    summ, arc_summ = eng.get("summary") or {}, arc.get("summary") or {}
    order = list(engine.CASE_NAMES)
    cases = sorted((c for c in summ if c.partition("/")[2] in order),
                   key=lambda c: (order.index(c.partition("/")[2]), c))
    arc_cases = [c for c in archive.CASE_NAMES if c in arc_summ]
    if not cases and not arc_cases:
        return None
    widths = [n for n in (len(cases) * 2, len(arc_cases)) if n]  # the engine cases have twice the tools
    fig = Figure(figsize=(11 + 2.5 * bool(arc_cases and cases), 5.5), dpi=110)
    panels = list(fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}, squeeze=False)[0])
    panels[0].set_ylabel(SECONDS)
    if cases:
        bars(panels.pop(0), summ, cases, ("docker_push", "native", "docker_engine", "export"), engine.TOOL_NAMES,
             partial(engine_label, eng))
    if arc_cases:
        arc_size, ax = size(arc["image_bytes"]), panels.pop(0)
        bars(ax, arc_summ, arc_cases, ("skopeo", "pipe"), archive.TOOL_NAMES,
             lambda c: f"{archive.CASE_NAMES[c]}\nreal files {arc_size}, cold".replace("`", "").replace(", ", ",\n"))
        ax.set_title("from an archive, no daemon", fontsize=9)
    return save(fig, title, out)


def push_26(eng: dict, out: Path, title: str) -> Path | None:
    """Cold before the fresh daemon, then by kind, one panel per 26 daemon; None without 26 cases."""
    summ, order = eng.get("summary") or {}, list(engine.CASE_NAMES)
    panels = [(daemon, sorted((c for c in summ if c.partition("/")[2].endswith(f"-{daemon}")),
                              key=lambda c: (order.index(c.partition("/")[2].partition("-")[0]), c)))
              for daemon in engine.DAEMON_NAMES]
    panels = [(daemon, cases) for daemon, cases in panels if cases]
    if not panels:
        return None
    fig = Figure(figsize=(6.5 * len(panels), 5.5), dpi=110)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (daemon, cases) in zip(axes, panels, strict=True):
        bars(ax, summ, cases, ("docker_push", "auto", "native", "docker_engine", "export"), engine.TOOL_NAMES,
             partial(engine_label, eng))
        ax.set_title(engine.DAEMON_NAMES[daemon], fontsize=9)
    axes[0].set_ylabel(SECONDS)
    return save(fig, title, out)


def copies(cop: dict, out: Path, title: str) -> Path | None:
    """Promotion on the left (per image size), the cold copies between the registries on the right."""
    summ = cop.get("summary") or {}
    if not summ:
        return None
    promote = [c for c in copy.ordered(cop) if c.startswith("promote")]
    others = [c for c in copy.ordered(cop) if not c.startswith("promote")]
    widths = [n for n in (len(promote) * 1.2, len(others) * 1.6) if n]
    fig = Figure(figsize=(13, 5.5), dpi=110)
    panels = list(fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths}, squeeze=False)[0])

    def label(case: str) -> str:
        return copy.case_name(case).replace("promotion to a new tag, ", "promotion,\n").replace(", ", ",\n")

    if promote:
        ax = panels.pop(0)
        bars(ax, summ, promote, ("docker", "skopeo", "pipe"), copy.TOOL_NAMES, label, "%.2f")
        ax.set_ylabel(SECONDS)
        ax.set_title("a new tag for an image in the emulator", fontsize=9)
        ax.set_ylim(top=ax.get_ylim()[1] * 1.35)  # room for the legend above the tall docker bar
        ax.legend(fontsize=8, loc="upper left")
    if others:
        ax = panels.pop(0)
        bars(ax, summ, others, ("skopeo", "floor", "pipe", "rerun"), copy.TOOL_NAMES, label, "%.2f")
        ax.set_title("between distribution 2.8 and the emulator, destination empty", fontsize=9)
    return save(fig, title, out)


def save(fig: Figure, title: str, out: Path) -> Path:
    """Title, lay out and write a chart."""
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


DRAW = {"push": push, "push-26": push_26, "copy": copies}
