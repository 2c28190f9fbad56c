"""The engine phase's table (Markdown): per case and tool, the medians; then its targets as ratios."""
from __future__ import annotations

from ..stats import ratio
from .format import fmt, med, megabytes, verdict

TOOL_NAMES = {
    "docker_push": "`docker push`",
    "native": "pipe, PUSH_ENGINE=native",
    "docker_engine": "pipe, PUSH_ENGINE=docker",
    "export": "bare export (floor)",
    "export_gzip": "export + the pipe's gzip, nothing sent",
}
TOOLS = tuple(TOOL_NAMES)
CASE_NAMES = {"cold": "cold", "pipelines": "fresh dockerd, all but the top layer held", "repush": "re-push, unchanged"}
# (case suffix, image kind or None for any, numerator, denominator, limit, label)
RATIO_TARGETS = (
    ("cold", "usr", "native", "docker_push", 0.5, "native / `docker push`"),
    ("cold", "random", "native", "docker_push", 0.75, "native / `docker push`"),
    ("cold", None, "native", "export", 1.3, "native / export"),
    ("pipelines", None, "native", "docker_push", 0.4, "native / `docker push` from that daemon"),
    ("pipelines", None, "native", "export", 1.25, "native / export from that daemon"),
)
RSS_LIMIT_MB = 200.0
REPUSH_LIMIT_S = 1.0


def targets(eng: dict) -> list[dict]:
    """Every target of the engine phase that this run can judge: figure, value, limit, met (None: not measured)."""
    summ = eng.get("summary") or {}
    out = []
    for case, tools in sorted(summ.items()):
        kind, _, suffix = case.partition("/")
        for want, want_kind, num, den, limit, label in RATIO_TARGETS:
            if suffix != want or want_kind not in (None, kind):
                continue
            q = ratio(tools.get(num, {}).get("seconds") or {}, tools.get(den, {}).get("seconds") or {})
            out.append({"figure": f"{kind} {CASE_NAMES[suffix]}: {label}", "value": q, "limit": f"<= {limit}x",
                        "met": None if q is None else q <= limit, "fmt": "{:.2f}x"})
        if suffix == "cold" and tools.get("export_gzip"):
            # Not targets: how far above the export any compressing push must be, and the pipe above that.
            for num, den, label in (("export_gzip", "export", "export + gzip, nothing sent / export"),
                                    ("native", "export_gzip", "native / (export + gzip, nothing sent)")):
                q = ratio(tools.get(num, {}).get("seconds") or {}, tools.get(den, {}).get("seconds") or {})
                out.append({"figure": f"{kind} cold: {label}", "value": q, "limit": "(measure)", "met": None,
                            "fmt": "{:.2f}x"})
            first = med(tools.get("export"), "first_byte_s")
            whole = med(tools.get("export"))
            if first and whole:
                out.append({"figure": f"{kind} cold: the export's first byte, share of its time",
                            "value": first / whole, "limit": "(measure)", "met": None, "fmt": "{:.2f}"})
        if suffix == "repush":
            v = med(tools.get("native"))
            out.append({"figure": f"{kind} re-push of an unchanged image, native, s", "value": v,
                        "limit": f"< {REPUSH_LIMIT_S:g} s", "met": None if v is None else v < REPUSH_LIMIT_S,
                        "fmt": "{:.2f}"})
    peaks = [r.get("peak_rss_mb") for tools in (eng.get("runs") or {}).values()
             for r in tools.get("native", [])]
    peaks = [p for p in peaks if p is not None]
    worst = max(peaks) if peaks else None
    out.append({"figure": "pipe peak RSS, native, worst run, MB", "value": worst, "limit": f"< {RSS_LIMIT_MB:g}",
                "met": None if worst is None else worst < RSS_LIMIT_MB, "fmt": "{:.0f}"})
    return out


def markdown(eng: dict) -> str:
    if not eng or "summary" not in eng:
        return ""
    size = eng["image_bytes"] / 2**30
    lines = [f"\n### Push engines: {eng['layers']} layers, {size:g} GiB per image "
             f"(repetitions {eng.get('reps')})\n"]
    landed = eng.get("engines_reported") or []
    if "native" not in landed:
        lines.append("**The native engine has not landed in this checkout**: the pipe's output file reported "
                     f"engine {landed or 'none'} for PUSH_ENGINE=native runs, so its figures are the daemon's "
                     "push and the verdicts below are baselines, not the engine's.\n")
    lines += ["| Case | Tool | Time, s | Tool CPU, s | dockerd CPU, s | registry CPU, s | Peak RSS, MB "
              "| Sent (output file), MB | Image as pushed, MB | Layers up/mounted/skipped |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case, tools in sorted((eng.get("summary") or {}).items()):
        kind, _, suffix = case.partition("/")
        for tool in TOOLS:
            d = tools.get(tool)
            if d is None:
                continue
            layers = "/".join(fmt(med(d, f"output_layers_{k}"), "{:.0f}") for k in ("uploaded", "mounted", "skipped"))
            lines.append(
                f"| {kind} {CASE_NAMES[suffix]} | {TOOL_NAMES[tool]} | {fmt(med(d))} | {fmt(med(d, 'cpu_s'))} "
                f"| {fmt(med(d, 'dockerd_cpu_s'))} | {fmt(med(d, 'registry_cpu_s'))} "
                f"| {fmt(med(d, 'peak_rss_mb'), '{:.0f}')} | {megabytes(med(d, 'output_pushed_bytes'))} "
                f"| {megabytes(med(d, 'compressed_image_bytes'))} "
                f"| {layers if tool in ('native', 'docker_engine') else ''} |")
    lines += ["", "| Target (push engines) | Measured | Limit | Verdict |", "|---|---:|---|---|"]
    prefix = "" if "native" in landed else "baseline, "  # the daemon's push measured under the native label
    for t in targets(eng):
        said = "" if t["limit"] == "(measure)" else prefix + verdict(t["met"])
        lines.append(f"| {t['figure']} | {fmt(t['value'], t['fmt'])} | {t['limit']} | {said} |")
    for err in eng.get("errors") or []:
        lines.append(f"\n**failed**: {err}")
    return "\n".join(lines) + "\n"
