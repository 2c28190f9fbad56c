"""The Markdown of a run, from its results: the registry table, then the engine, archive and copy tables (each
empty when its phase did not run); the charts (report/charts.py, which needs matplotlib:
imported only when one is drawn); shared formatting in report/format.py."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from . import archive, copy, engine, registry
from .format import chart_line


def markdown(results: dict) -> str:
    return (registry.markdown(results) + engine.markdown(results.get("engine") or {})
            + archive.markdown(results.get("archive") or {}) + copy.markdown(results.get("copy") or {}))


def chart_lines(results: dict, settings, out: Path, name: str) -> Iterator[tuple[str, bool]]:
    """Each chart this run has figures for, drawn to out/<name>-*.png: its line for the table, and whether drawing
    it failed (the figures are written either way)."""
    eng, arc, cop = (results.get(phase) or {} for phase in ("engine", "archive", "copy"))
    if not any(section.get("summary") for section in (eng, arc, cop)):
        return
    from . import charts

    if eng.get("summary") or arc.get("summary"):  # the push chart needs the engine phase at the full size
        sized = ("engine", "archive") if arc.get("summary") else ("engine",)
        publish = bool(eng.get("summary")) and charts.full_size(settings, *sized)
        yield chart_line("chart", lambda: (charts.push(eng, arc, out / f"{name}-push.png", f"Push, {name}", publish),
                                           publish), charts.STABLE["push"])
    if eng.get("summary"):
        publish = charts.full_size(settings, "engine")
        yield chart_line("Docker 26 chart", lambda: (charts.push_26(
            eng, out / f"{name}-push-26.png", f"Push from Docker 26, {name}", publish), publish),
            charts.STABLE["push-26"])
    if cop.get("summary"):
        publish = charts.full_size(settings, "copy")
        yield chart_line("copy chart", lambda: (charts.copies(
            cop, out / f"{name}-copy.png", f"Copy from a registry, {name}", publish), publish), charts.STABLE["copy"])
