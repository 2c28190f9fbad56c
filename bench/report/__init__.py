"""The Markdown of a run, from its results: the registry table, then the engine, archive and copy tables (each
empty when its phase did not run); the charts (report/charts.py, which needs matplotlib:
imported only when one is drawn); shared formatting in report/format.py."""
from __future__ import annotations

from collections.abc import Iterator
from functools import partial
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
    # (its line's name, its key, its title, the sections it draws, the phases whose full size it needs to replace the
    # one the docs show: the push chart, the engine phase's and, when it ran, the archive phase's)
    wanted = [chart for chart in (
        ("chart", "push", "Push", (eng, arc), ("engine", "archive") if arc.get("summary") else ("engine",)),
        ("Docker 26 chart", "push-26", "Push from Docker 26", (eng,), ("engine",)),
        ("copy chart", "copy", "Copy from a registry", (cop,), ("copy",)),
    ) if any(section.get("summary") for section in chart[3])]
    if not wanted:
        return
    from . import charts

    for what, key, title, sections, sized in wanted:
        publish = bool(sections[0].get("summary")) and charts.full_size(settings, *sized)
        yield chart_line(what, partial(charts.DRAW[key], *sections, out / f"{name}-{key}.png", f"{title}, {name}"),
                         charts.STABLE[key] if publish else None)
