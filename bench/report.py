"""The figures table (Markdown) and the targets, from a results dictionary."""
from __future__ import annotations

from . import ui_pages

PHASES = ("ingest", "serving", "memory", "small", "push", "ui")


def _f(value, fmt: str = "{:.0f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _med(d: dict | None) -> float | None:
    return None if not d else d.get("median")


def _size(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def rows(results: dict) -> list[tuple[str, str, str, str, str, str]]:
    """(figure, embedded, reference, ratio, target, verdict) rows."""
    out = []
    ing = results.get("ingest") or {}
    sha = _med(ing.get("sha256_mb_s"))
    if ing and "error" not in ing:
        out.append(("hashlib SHA-256, one core (ceiling), MB/s", _f(sha), "", "", "", ""))
        out.append(("plain 4 MiB writes into new page cache, MB/s", _f(_med(ing.get("page_cache_write_mb_s"))), "", "", "", ""))
        size = _size(ing["blob_bytes"])
        for mode, name in (("monolithic", "monolithic PUT"), ("chunked", f"chunked PATCH {_size(ing['chunk_bytes'])}")):
            d = ing[f"{mode}_mb_s"]
            e, r, q = _med(d["embedded"]), _med(d["reference"]), d["ratio"]
            ok = None if e is None or q is None or sha is None else (q >= 2 and e >= sha / 2)
            out.append((f"ingest {size}, {name}, MB/s", _f(e), _f(r), _f(q, "{:.2f}x"),
                        f">= 2x and >= {_f(sha / 2 if sha else None)} (half ceiling)", _verdict(ok)))
            c = ing.get(f"{mode}_cpu_s_per_gib")
            if c:
                out.append((f"  registry CPU (all threads) per GiB, {mode}, s", _f(_med(c["embedded"]), "{:.2f}"),
                            _f(_med(c["reference"]), "{:.2f}"), _f(c["ratio"], "{:.2f}x"), "", ""))
    srv = results.get("serving") or {}
    if srv and "error" not in srv:
        size = _size((results.get("ingest") or {}).get("blob_bytes", 0))
        for key, name in (("full_mb_s", f"GET full {size}"), ("range_mb_s", f"GET Range {_size(srv['range_bytes'])}")):
            d = srv[key]
            q = d["ratio"]
            out.append((f"serving, {name}, MB/s", _f(_med(d["embedded"])), _f(_med(d["reference"])),
                        _f(q, "{:.2f}x"), ">= 1x", _verdict(None if q is None else q >= 1)))
    mem = results.get("memory") or {}
    if mem and "error" not in mem:
        for key, d in mem.items():
            if not isinstance(d, dict) or "peak_rss_mb" not in d:
                continue
            peaks = d["peak_rss_mb"]
            e = peaks["embedded"].get("max")
            out.append((f"peak RSS ingesting {_size(d['blob_bytes'])}, MB", _f(e), _f(peaks["reference"].get("max")), "",
                        "< 150", _verdict(None if e is None else e < 150)))
    sm = results.get("small") or {}
    if sm and "error" not in sm:
        d = sm["requests_per_s"]
        q = d["ratio"]
        out.append((f"{sm['clients']} clients x {sm['blobs_per_client']} blobs of 1 MiB, requests/s",
                    _f(_med(d["embedded"])), _f(_med(d["reference"])), _f(q, "{:.2f}x"), ">= 1x",
                    _verdict(None if q is None else q >= 1)))
    ps = results.get("push") or {}
    if ps and "error" not in ps:
        docker, pipe, noop = _med(ps["docker_push_s"]), _med(ps["pipe_push_s"]), _med(ps["pipe_noop_repush_s"])
        q = ps.get("pipe_over_docker")
        mib = ps["image_bytes"] / 2**20
        out.append((f"push {ps['layers']}-layer image of {mib:.0f} MiB: pipe vs docker push, s",
                    _f(pipe, "{:.2f}"), _f(docker, "{:.2f}") + " (docker push)", _f(q, "{:.2f}x"), "<= 1.10x",
                    _verdict(None if q is None else q <= 1.10)))
        out.append(("no-op re-push with the pipe, s", _f(noop, "{:.2f}"), "", "", "< 3",
                    _verdict(None if noop is None else noop < 3)))
    out += ui_pages.report_rows(results.get("ui") or {})
    return out


def markdown(results: dict) -> str:
    if not rows(results) and not any("error" in (results.get(p) or {}) for p in PHASES):
        return ""  # none of the registry phases ran (e.g. `--phases engine`)
    lines = [
        "| Figure (median) | Embedded | Reference | Ratio | Target | Verdict |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    for phase in PHASES:
        d = results.get(phase) or {}
        if "error" in d:
            lines.append(f"\n**{phase}: failed**: {d['error']}")
    ps = results.get("push") or {}
    if ps.get("pipe_status", "ran") != "ran":
        lines.append(f"\n**pipe**: {ps['pipe_status']}")
    return "\n".join(lines) + "\n"
