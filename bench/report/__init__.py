"""The Markdown of a run, from its results: the registry table, then the engine and archive tables (each
empty when its phases did not run); the push chart in report/chart.py; shared formatting in report/format.py."""
from __future__ import annotations

from . import archive, engine, registry


def markdown(results: dict) -> str:
    return (registry.markdown(results) + engine.markdown(results.get("engine") or {})
            + archive.markdown(results.get("archive") or {}))
