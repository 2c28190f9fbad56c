"""The registry table (Markdown): the registry phases' figures against distribution 2.8 and their targets, and the
UI pages."""
from __future__ import annotations

from ..stats import ratio
from .format import fmt, median, size, table, verdict

PHASES = ("ingest", "serving", "memory", "small", "ui")
WHOLE, RATIO = "{:.0f}", "{:.2f}x"


def compared(figure: str, d: dict, spec: str = WHOLE, at_least: float | None = None) -> tuple[str, ...]:
    """A row of a figure measured in both registries (stats.compare), with its target: the ratio at least `at_least`."""
    q, met = d["ratio"], None if at_least is None or d["ratio"] is None else d["ratio"] >= at_least
    return (figure, fmt(median(d["embedded"]), spec), fmt(median(d["reference"]), spec), fmt(q, RATIO),
            "" if at_least is None else f">= {at_least:g}x", "" if at_least is None else verdict(met))


def rows(results: dict) -> list[tuple[str, ...]]:
    """(figure, embedded, reference, ratio, target, verdict) rows."""
    out = []
    ing = results.get("ingest") or {}
    sha = median(ing.get("sha256_mb_s"))
    if ing and "error" not in ing:
        out.append(("hashlib SHA-256, one core (ceiling), MB/s", fmt(sha, WHOLE), "", "", "", ""))
        blob = size(ing["blob_bytes"])
        for mode, name in (("monolithic", "monolithic PUT"), ("chunked", f"chunked PATCH {size(ing['chunk_bytes'])}")):
            d = ing[f"{mode}_mb_s"]
            e, r, q = median(d["embedded"]), median(d["reference"]), d["ratio"]
            ok = None if e is None or q is None or sha is None else (q >= 2 and e >= sha / 2)
            out.append((f"ingest {blob}, {name}, MB/s", fmt(e, WHOLE), fmt(r, WHOLE), fmt(q, RATIO),
                        f">= 2x and >= {fmt(sha / 2 if sha else None, WHOLE)} (half ceiling)", verdict(ok)))
            if c := ing.get(f"{mode}_cpu_s_per_gib"):
                out.append(compared(f"  registry CPU (all threads) per GiB, {mode}, s", c, "{:.2f}"))
    srv = results.get("serving") or {}
    if srv and "error" not in srv:
        blob = size((results.get("ingest") or {}).get("blob_bytes", 0))
        for key, name in (("full_mb_s", f"GET full {blob}"), ("range_mb_s", f"GET Range {size(srv['range_bytes'])}")):
            out.append(compared(f"serving, {name}, MB/s", srv[key], at_least=1))
    mem = results.get("memory") or {}
    if mem and "error" not in mem:
        for d in mem.values():
            if not isinstance(d, dict) or "peak_rss_mb" not in d:
                continue
            peaks = d["peak_rss_mb"]
            e = peaks["embedded"].get("max")
            out.append((f"peak RSS ingesting {size(d['blob_bytes'])}, MB", fmt(e, WHOLE),
                        fmt(peaks["reference"].get("max"), WHOLE), "", "< 150",
                        verdict(None if e is None else e < 150)))
    sm = results.get("small") or {}
    if sm and "error" not in sm:
        out.append(compared(f"{sm['clients']} clients x {sm['blobs_per_client']} blobs of 1 MiB, requests/s",
                            sm["requests_per_s"], at_least=1))
    return out + ui_rows(results.get("ui") or {})


def ui_rows(d: dict) -> list[tuple[str, ...]]:
    """Each packages page beside the JSON API's listing."""
    if not d or "error" in d:
        return []
    out = []
    for name, label in (("page", "first page"), ("page_filtered", "filtered by name"), ("page_last", "last page")):
        ms, q = d["ms"][name]["median"], ratio(d["ms"][name], d["ms"]["api"])
        out.append((f"packages page of {d['images']} images / {d['tags']} tags ({label}), ms", f"{ms:.1f}",
                    f"{d['ms']['api']['median']:.1f} (JSON API list)", f"{q:.2f}x" if q else "",
                    f"< {d['target_ms']}", "met" if ms < d["target_ms"] else "NOT met"))
    return out


def markdown(results: dict) -> str:
    if not rows(results) and not any("error" in (results.get(p) or {}) for p in PHASES):
        return ""  # none of the registry phases ran (e.g. `--phases engine`)
    lines = table("| Figure (median) | Embedded | Reference | Ratio | Target | Verdict |",
                  ["| " + " | ".join(r) + " |" for r in rows(results)], 3, 2)
    for phase in PHASES:
        d = results.get(phase) or {}
        if "error" in d:
            lines.append(f"\n**{phase}: failed**: {d['error']}")
    return "\n".join(lines) + "\n"
