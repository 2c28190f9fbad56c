"""The Markdown of a run, from its results: the registry table, then the engine, archive and copy tables (each
empty when its phases did not run); the charts in report/chart.py and report/copy_chart.py; shared formatting
in report/format.py."""
from __future__ import annotations

from . import archive, copy, engine, registry


def markdown(results: dict) -> str:
    return (registry.markdown(results) + engine.markdown(results.get("engine") or {})
            + archive.markdown(results.get("archive") or {}) + copy.markdown(results.get("copy") or {}))
