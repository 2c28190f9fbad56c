"""The engine phase as a chart: median time per case, one bar per tool side by side, min-max whiskers."""
from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .engine_report import CASE_NAMES, TOOL_NAMES  # noqa: E402

STABLE_PATH = Path(__file__).resolve().parent.parent / "docs" / "bench-push.png"
TOOLS = ("docker_push", "native", "docker_engine", "export")
KIND_NAMES = {"usr": "real files (/usr)", "random": "random bytes"}
COLOURS = {"docker_push": "#8c8c8c", "native": "#1f6fb4", "docker_engine": "#9ecae1", "export": "#e6a23c"}


def draw(eng: dict, out: Path, title: str, publish: bool) -> Path | None:
    """Write the PNG to `out` (and, when `publish`, copy it to docs/bench-push.png); None when nothing was measured."""
    summ = eng.get("summary") or {}
    cases = sorted(summ, key=lambda c: (list(CASE_NAMES).index(c.partition("/")[2]), c))
    if not cases:
        return None
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    width = 0.8 / len(TOOLS)
    for i, tool in enumerate(TOOLS):
        xs, heights, low, high = [], [], [], []
        for x, case in enumerate(cases):
            s = (summ[case].get(tool) or {}).get("seconds") or {}
            if s.get("median") is None:
                continue
            xs.append(x + (i - (len(TOOLS) - 1) / 2) * width)
            heights.append(s["median"])
            low.append(s["median"] - s["min"])
            high.append(s["max"] - s["median"])
        if xs:
            bars = ax.bar(xs, heights, width, yerr=[low, high], capsize=3, label=TOOL_NAMES[tool].replace("`", ""),
                          color=COLOURS[tool])
            ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    size = f"{eng['image_bytes'] / 2**30:g} GiB"
    labels = [f"{KIND_NAMES.get(c.partition('/')[0], c)} {size}\n{CASE_NAMES[c.partition('/')[2]]}".replace(", ", ",\n")
              for c in cases]
    ax.set_xticks(range(len(cases)), labels, fontsize=8)
    ax.set_ylabel("seconds (median; whiskers: min-max)")
    if "native" not in (eng.get("engines_reported") or []):
        title += "\n(native engine not landed: PUSH_ENGINE=native ran the daemon's push)"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    if publish:
        STABLE_PATH.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, STABLE_PATH)
    return out
