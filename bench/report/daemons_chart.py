"""The engine phase's Docker 26 cases as a chart: one panel per image store, the cold and fresh-daemon cases of
each image kind, one bar per tool (`docker push`, the pipe's three engines, the export) as in report/chart.py."""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from harness.paths import REPO_ROOT

from .chart import COLOURS, KIND_NAMES, bars, save
from .engine import CASE_NAMES, DAEMON_NAMES, TOOL_NAMES
from .format import size

STABLE_PATH = REPO_ROOT / "docs" / "bench-push-26.png"
TOOLS = ("docker_push", "auto", "native", "docker_engine", "export")
# auto is native on the classic store and the daemon's push on the containerd one: its own, darker blue.
DAEMON_COLOURS = {**COLOURS, "auto": "#08306b"}


def draw(eng: dict, out: Path, title: str, publish: bool) -> Path | None:
    """Write the PNG to `out` (and, when `publish`, copy it to docs/bench-push-26.png); None without 26 cases."""
    summ = eng.get("summary") or {}
    panels = []
    for daemon in DAEMON_NAMES:
        cases = [c for c in summ if c.partition("/")[2].endswith(f"-{daemon}")]
        if cases:
            panels.append((daemon, sorted(cases, key=_order)))
    if not panels:
        return None
    fig = Figure(figsize=(6.5 * len(panels), 5.5), dpi=110)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]

    def label(c: str) -> str:
        kind, _, suffix = c.partition("/")
        return f"{KIND_NAMES.get(kind, kind)} {size(eng['image_bytes'])}\n{CASE_NAMES[suffix.partition('-')[0]]}" \
            .replace(", ", ",\n")

    for ax, (daemon, cases) in zip(axes, panels, strict=True):
        bars(ax, summ, cases, TOOLS, TOOL_NAMES, DAEMON_COLOURS, label)
        ax.set_title(DAEMON_NAMES[daemon], fontsize=9)
    axes[0].set_ylabel("seconds (median; whiskers: min-max)")
    return save(fig, title, out, STABLE_PATH if publish else None)


def _order(case: str) -> tuple[int, str]:
    """Cold before the fresh daemon, then by kind."""
    kind, _, suffix = case.partition("/")
    return list(CASE_NAMES).index(suffix.partition("-")[0]), kind
