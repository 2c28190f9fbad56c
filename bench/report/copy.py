"""The copy phase's tables (Markdown): per case and tool, the medians; then its targets (bench/phases/copy.py)."""
from __future__ import annotations

from ..stats import ratio
from .engine import RSS_LIMIT_MB
from .format import fmt, med, megabytes, seconds_range, size, verdict

TOOL_NAMES = {
    "pipe": "pipe, SOURCE_IMAGE",
    "rerun": "pipe again, all there",
    "skopeo": "`skopeo copy --all`",
    "floor": "GET -> PUT loop (floor)",
    "docker": "`docker pull` + `tag` + `push`, fresh dockerd",
}
PROMOTE_LIMIT_S = 1.5
SKOPEO_LIMIT = 1.0
FLOOR_LIMIT = 1.2
DIRECTIONS = {"reference": "distribution", "embedded": "emulator"}


def case_name(case: str) -> str:
    """'promote 1GiB' -> 'promotion, 1 GiB'; 'reference-embedded index' -> 'distribution -> emulator, index'."""
    first, _, kind = case.partition(" ")
    if first == "promote":
        return f"promotion to a new tag, {kind.replace('GiB', ' GiB').replace('MiB', ' MiB')}"
    frm, _, to = first.partition("-")
    what = "two-platform index" if kind == "index" else "image"
    return f"{DIRECTIONS.get(frm, frm)} -> {DIRECTIONS.get(to, to)}, {what}, cold"


def ordered(cop: dict) -> list[str]:
    """The cases as they run: promotions, smaller first; then copies from distribution, then to it."""
    def key(case: str) -> tuple:
        first, _, kind = case.partition(" ")
        if first == "promote":
            return (0, _image_bytes(cop, case) or 0, case)
        return (1 if first.startswith("reference") else 2, kind != "image", case)
    return sorted(cop.get("summary") or {}, key=key)


def _image_bytes(cop: dict, case: str) -> int | None:
    return ((cop.get("images") or {}).get(case.replace(" ", "-")) or {}).get("compressed_bytes")


def _seconds(tools: dict, tool: str) -> dict:
    return (tools.get(tool) or {}).get("seconds") or {}


def targets(cop: dict) -> list[dict]:
    """Each target this run can judge: figure, value, limit, met (None: a measure, not a target), format."""
    summ, runs = cop.get("summary") or {}, cop.get("runs") or {}
    out = []
    for case in ordered(cop):
        tools, name = summ[case], case_name(case)
        if case.startswith("promote"):
            v = _seconds(tools, "pipe").get("median")
            out.append({"figure": f"{name}: pipe wall time, s", "value": v, "limit": f"< {PROMOTE_LIMIT_S:g} s",
                        "met": None if v is None else v < PROMOTE_LIMIT_S, "fmt": "{:.2f}"})
            for other in ("docker", "skopeo"):
                q = ratio(_seconds(tools, "pipe"), _seconds(tools, other))
                out.append({"figure": f"{name}: pipe / {TOOL_NAMES[other]}", "value": q, "limit": "(measure)",
                            "met": None, "fmt": "{:.2f}x"})
            continue
        for other, limit in (("skopeo", SKOPEO_LIMIT), ("floor", FLOOR_LIMIT)):
            q = ratio(_seconds(tools, "pipe"), _seconds(tools, other))
            out.append({"figure": f"{name}: pipe / {TOOL_NAMES[other]}", "value": q, "limit": f"<= {limit:g}x",
                        "met": None if q is None else q <= limit, "fmt": "{:.2f}x"})
        want = _image_bytes(cop, case)
        sent = [r.get("output_pushed_bytes") for r in (runs.get(case) or {}).get("pipe", [])]
        if sent and want:
            out.append({"figure": f"{name}: pipe sent, MB (every run)", "value": max(sent) / 1e6,
                        "limit": f"= {want / 1e6:.0f} (the image, compressed)",
                        "met": all(s == want for s in sent), "fmt": "{:.0f}"})
        again = [r.get("output_pushed_bytes") for r in (runs.get(case) or {}).get("rerun", [])]
        if again:
            out.append({"figure": f"{name}: re-run, bytes sent (every run)", "value": max(again), "limit": "0",
                        "met": all(a == 0 for a in again), "fmt": "{:.0f}"})
    peaks = [r.get("peak_rss_mb") for case in runs.values() for tool in ("pipe", "rerun") for r in case.get(tool, [])]
    peaks = [p for p in peaks if p is not None]
    worst = max(peaks) if peaks else None
    out.append({"figure": "pipe peak RSS, worst run, MB", "value": worst, "limit": f"< {RSS_LIMIT_MB:g}",
                "met": None if worst is None else worst < RSS_LIMIT_MB, "fmt": "{:.0f}"})
    return out


def _blobs(tool: str, d: dict) -> str:
    if tool in ("pipe", "rerun"):
        return "/".join(fmt(med(d, f"output_layers_{k}"), "{:.0f}") for k in ("uploaded", "mounted", "skipped"))
    if tool == "skopeo":
        return f"{fmt(med(d, 'skopeo_blobs_copied'), '{:.0f}')} named"  # skopeo 1.9 logs no skip without a tty
    return ""


def markdown(cop: dict) -> str:
    if not cop:
        return ""
    if "summary" not in cop:
        return f"\n### Copy from a registry (SOURCE_IMAGE)\n\n**failed**: {cop.get('error', 'no figures')}\n"
    loads = [r["load_1m"] for tools in (cop.get("runs") or {}).values() for runs in tools.values() for r in runs
             if r.get("load_1m") is not None]
    lines = [f"\n### Copy from a registry (SOURCE_IMAGE): real files, {cop['layers']} layers, "
             f"{size(cop['image_bytes'])} per image (repetitions {cop.get('reps')})\n"]
    if loads:
        lines.append(f"Load average (1 min) as each measurement started: {min(loads):.2f}-{max(loads):.2f} "
                     f"(median {sorted(loads)[len(loads) // 2]:.2f}) on {cop.get('cores')} cores.\n")
    lines += [
             "| Case | Tool | Time, s (min-max) | Tool CPU, s | emulator CPU, s | distribution CPU, s | dockerd CPU, s "
             "| Peak RSS, MB | Sent, MB | Image, MB | Layers up/mounted/skipped (skopeo: blobs in its log) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in ordered(cop):
        tools = cop["summary"][case]
        for tool in TOOL_NAMES:
            d = tools.get(tool)
            if d is None:
                continue
            sent = med(d, "output_pushed_bytes") if tool in ("pipe", "rerun") else med(d, "floor_bytes")
            lines.append(
                f"| {case_name(case)} | {TOOL_NAMES[tool]} | {seconds_range(d)} | {fmt(med(d, 'cpu_s'))} "
                f"| {fmt(med(d, 'embedded_cpu_s'))} | {fmt(med(d, 'reference_cpu_s'))} "
                f"| {fmt(med(d, 'dockerd_cpu_s')) if tool == 'docker' else ''} "
                f"| {fmt(med(d, 'peak_rss_mb'), '{:.0f}')} | {megabytes(sent) if sent is not None else ''} "
                f"| {megabytes(_image_bytes(cop, case))} | {_blobs(tool, d)} |")
    lines += ["", "| Target (copy from a registry) | Measured | Limit | Verdict |", "|---|---:|---|---|"]
    for t in targets(cop):
        said = "" if t["limit"] == "(measure)" else verdict(t["met"])
        lines.append(f"| {t['figure']} | {fmt(t['value'], t['fmt'])} | {t['limit']} | {said} |")
    for err in cop.get("errors") or []:
        lines.append(f"\n**failed**: {err}")
    return "\n".join(lines) + "\n"
