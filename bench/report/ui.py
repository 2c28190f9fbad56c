"""The UI phase's rows in the registry table: each packages page beside the JSON API's listing."""
from __future__ import annotations

from ..stats import ratio


def rows(d: dict) -> list[tuple[str, str, str, str, str, str]]:
    """(figure, embedded, reference, ratio, target, verdict) rows for bench/report/registry.py's table."""
    if not d or "error" in d:
        return []
    out = []
    for name, label in (("page", "first page"), ("page_filtered", "filtered by name"), ("page_last", "last page")):
        ms = d["ms"][name]["median"]
        q = ratio(d["ms"][name], d["ms"]["api"])
        out.append((f"packages page of {d['images']} images / {d['tags']} tags ({label}), ms",
                     f"{ms:.1f}", f"{d['ms']['api']['median']:.1f} (JSON API list)", f"{q:.2f}x" if q else "",
                     f"< {d['target_ms']}", "met" if ms < d["target_ms"] else "NOT met"))
    return out
