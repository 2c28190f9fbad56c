"""How the reports write figures: one formatting of missing values, medians, sizes, verdicts, targets and tables for
every phase (no plotting library: the tests import it without bench's extras)."""
from __future__ import annotations

import shutil
import traceback
from pathlib import Path
from typing import Callable

from ..stats import ratio

RSS_LIMIT_MB = 200.0  # the pipe's peak RSS, in every push phase


def fmt(value: float | None, spec: str = "{:.2f}") -> str:
    return "n/a" if value is None else spec.format(value)


def median(summary: dict | None) -> float | None:
    """The median of one summary (stats.summary)."""
    return None if not summary else summary.get("median")


def med(figures: dict | None, metric: str = "seconds") -> float | None:
    """The median of one metric of one tool's figures (a value of stats.summarize_runs)."""
    return ((figures or {}).get(metric) or {}).get("median")


def seconds_ratio(tools: dict, num: str, den: str) -> float | None:
    """One tool's median time over another's, in one case's figures."""
    return ratio((tools.get(num) or {}).get("seconds") or {}, (tools.get(den) or {}).get("seconds") or {})


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


def target(figure: str, value: float | None, limit: str, met: bool | None, spec: str = "{:.2f}x") -> dict:
    """One row of a targets table; `limit` "(measure)": a figure to read, not a target."""
    return {"figure": figure, "value": value, "limit": limit, "met": met, "fmt": spec}


def at_most(figure: str, value: float | None, limit: float) -> dict:
    """A ratio's target."""
    return target(figure, value, f"<= {limit:g}x", None if value is None else value <= limit)


def peak_target(figure: str, peaks: list[float | None]) -> dict:
    worst = max((p for p in peaks if p is not None), default=None)
    return target(figure, worst, f"< {RSS_LIMIT_MB:g}", None if worst is None else worst < RSS_LIMIT_MB, "{:.0f}")


def table(header: str, rows: list[str], numeric: int, text: int = 0) -> list[str]:
    """A Markdown table: `header` and `rows` as `| a | b |` lines; after the first column (left aligned, as are
    the last `text` ones) `numeric` right-aligned ones."""
    first = header.count("|") - 1 - numeric - text
    return [header, "|" + "---|" * first + "---:|" * numeric + "---|" * text, *rows]


# A column of a per-case, per-tool table: its header, and its cell from (case, tool, that tool's figures).
Column = tuple[str, Callable[[str, str, dict], str]]


def metric(key: str, spec: str = "{:.2f}") -> Callable[[str, str, dict], str]:
    return lambda case, tool, d: fmt(med(d, key), spec)


def mb(key: str) -> Callable[[str, str, dict], str]:
    return lambda case, tool, d: megabytes(med(d, key))


def layers(tools: tuple[str, ...]) -> Callable[[str, str, dict], str]:
    """Layers uploaded/mounted/skipped as the pipe's output file gives them, for the pipe's `tools`."""
    return lambda case, tool, d: "/".join(fmt(med(d, f"output_layers_{k}"), "{:.0f}") for k in
                                          ("uploaded", "mounted", "skipped")) if tool in tools else ""


def tool_table(summary: dict, cases: list[str], case_name: Callable[[str], str], tools: dict[str, str],
               columns: tuple[Column, ...], text: int = 1) -> list[str]:
    """A row per case and tool measured: the case's and the tool's names, then `columns` (the last `text` of them
    left aligned)."""
    rows = [f"| {case_name(case)} | {name} | {' | '.join(cell(case, tool, d) for _, cell in columns)} |"
            for case in cases for tool, name in tools.items() if (d := summary[case].get(tool)) is not None]
    return table(f"| Case | Tool | {' | '.join(head for head, _ in columns)} |", rows, len(columns) - text, text)


def failed_section(title: str, section: dict) -> str:
    return f"\n### {title}\n\n**failed**: {section.get('error', 'no figures')}\n"


def targets_table(title: str, targets: list[dict]) -> list[str]:
    """The targets of a phase, each with its verdict (none for a figure that is no target)."""
    rows = [f"| {t['figure']} | {fmt(t['value'], t['fmt'])} | {t['limit']} | "
            f"{'' if t['limit'] == '(measure)' else verdict(t['met'])} |" for t in targets]
    return ["", *table(f"| {title} | Measured | Limit | Verdict |", rows, 1, 2)]


def failures(section: dict) -> list[str]:
    return [f"\n**failed**: {err}" for err in section.get("errors") or []]


def chart_line(what: str, draw: Callable[[], Path | None], publish_to: Path | None) -> tuple[str, bool]:
    """Draw one chart (`draw`: its file, None when it has nothing to draw), copied to `publish_to` (where the docs
    show it) when given: the table's line for it, and whether drawing it failed (the figures are written either way)."""
    try:
        if (png := draw()) and publish_to:
            publish_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, publish_to)
    except Exception as exc:
        traceback.print_exc()
        return f"\n**{what} failed**: {type(exc).__name__}: {exc}\n", True
    return (f"\nchart: {png}{f' (copied to {publish_to})' if publish_to else ''}\n" if png else ""), False
