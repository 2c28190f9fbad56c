"""The Markdown of a run, from its results: the registry table, then the engine, archive and copy tables (each
empty when its phase did not run); the charts (report/chart.py, daemons_chart.py, copy_chart.py, which need
matplotlib: imported only when drawn); shared formatting in report/format.py."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from . import archive, copy, engine, registry
from .format import chart_line


def markdown(results: dict) -> str:
    return (registry.markdown(results) + engine.markdown(results.get("engine") or {})
            + archive.markdown(results.get("archive") or {}) + copy.markdown(results.get("copy") or {}))


def charts(results: dict, settings, out: Path, name: str) -> Iterator[tuple[str, bool]]:
    """Each chart this run has figures for, drawn to out/<name>-*.png: its line for the table, and whether drawing
    it failed (the figures are written either way)."""
    from . import chart, copy_chart, daemons_chart

    eng, arc, cop = (results.get(phase) or {} for phase in ("engine", "archive", "copy"))
    if eng.get("summary") or arc.get("summary"):
        publish = chart.publishes(settings, eng, arc)
        yield chart_line("chart", lambda: (chart.draw(eng, out / f"{name}-push.png", f"Push, {name}", publish, arc),
                                           publish), chart.STABLE_PATH)
    if eng.get("summary"):
        publish = chart.publishes(settings, eng, {})
        yield chart_line("Docker 26 chart", lambda: (daemons_chart.draw(
            eng, out / f"{name}-push-26.png", f"Push from Docker 26, {name}", publish), publish),
            daemons_chart.STABLE_PATH)
    if cop.get("summary"):
        publish = copy_chart.publishes(settings)
        yield chart_line("copy chart", lambda: (copy_chart.draw(
            cop, out / f"{name}-copy.png", f"Copy from a registry, {name}", publish), publish), copy_chart.STABLE_PATH)
