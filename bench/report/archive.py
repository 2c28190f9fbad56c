"""The archive phase's table (Markdown): per archive and tool, the medians; then its targets."""
from __future__ import annotations

from ..stats import ratio
from .engine import RSS_LIMIT_MB
from .format import fmt, med, megabytes, seconds_range, size, verdict

TOOL_NAMES = {"pipe": "pipe, IMAGE_ARCHIVE", "skopeo": "`skopeo copy`"}
CASE_NAMES = {"oci-layout": "OCI layout, gzip layers", "docker-archive": "docker-archive (`docker save`)"}
# (case, limit of pipe time / skopeo time)
RATIO_TARGETS = (("oci-layout", 1.0), ("docker-archive", 0.6))


def targets(arc: dict) -> list[dict]:
    """Each target this run can judge: figure, value, limit, met (None: not measured), format."""
    summ = arc.get("summary") or {}
    out = []
    for case, limit in RATIO_TARGETS:
        tools = summ.get(case) or {}
        q = ratio((tools.get("pipe") or {}).get("seconds") or {}, (tools.get("skopeo") or {}).get("seconds") or {})
        out.append({"figure": f"{CASE_NAMES[case]}: pipe / `skopeo copy`", "value": q, "limit": f"<= {limit}x",
                    "met": None if q is None else q <= limit, "fmt": "{:.2f}x"})
    for case in [c for c in CASE_NAMES if c in (arc.get("runs") or {})]:
        peaks = [r.get("peak_rss_mb") for r in ((arc.get("runs") or {}).get(case) or {}).get("pipe", [])]
        worst = max((p for p in peaks if p is not None), default=None)
        out.append({"figure": f"pipe peak RSS, {CASE_NAMES[case]}, worst run, MB", "value": worst,
                    "limit": f"< {RSS_LIMIT_MB:g}", "met": None if worst is None else worst < RSS_LIMIT_MB,
                    "fmt": "{:.0f}"})
    return out


def markdown(arc: dict) -> str:
    if not arc:
        return ""
    if "summary" not in arc:
        return f"\n### Push from an archive\n\n**failed**: {arc.get('error', 'no figures')}\n"
    facts = arc.get("archives") or {}
    lines = [f"\n### Push from an archive: real files, {arc['layers']} layers, {size(arc['image_bytes'])} "
             f"(repetitions {arc.get('reps')}, cold pushes)\n"]
    if facts:
        lines.append(f"OCI layout written by `skopeo copy docker-daemon: oci:` in "
                     f"{fmt(facts.get('oci_layout_s'), '{:.1f}')} s ({megabytes(facts.get('oci_layout_layer_bytes'))} "
                     f"MB of gzip layers); docker-archive by `docker save` in "
                     f"{fmt(facts.get('docker_save_s'), '{:.1f}')} s "
                     f"({megabytes(facts.get('docker_archive_bytes'))} MB).\n")
    lines += ["| Archive | Tool | Time, s (min-max) | Tool CPU, s | registry CPU, s | dockerd CPU, s | Peak RSS, MB "
              "| Sent (output file), MB | Held for the tag, MB | Layers uploaded / skopeo blobs copied (skipped) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in CASE_NAMES:
        for tool in TOOL_NAMES:
            d = ((arc.get("summary") or {}).get(case) or {}).get(tool)
            if d is None:
                continue
            if tool == "pipe":
                blobs = fmt(med(d, "output_layers_uploaded"), "{:.0f}")
            else:
                blobs = (f"{fmt(med(d, 'skopeo_blobs_copied'), '{:.0f}')} "
                         f"({fmt(med(d, 'skopeo_blobs_skipped'), '{:.0f}')})")
            lines.append(
                f"| {CASE_NAMES[case]} | {TOOL_NAMES[tool]} | {seconds_range(d)} | {fmt(med(d, 'cpu_s'))} "
                f"| {fmt(med(d, 'registry_cpu_s'))} | {fmt(med(d, 'dockerd_cpu_s'))} "
                f"| {fmt(med(d, 'peak_rss_mb'), '{:.0f}')} | {megabytes(med(d, 'output_pushed_bytes'))} "
                f"| {megabytes(med(d, 'compressed_image_bytes'))} | {blobs} |")
    lines += ["", "| Target (archive push) | Measured | Limit | Verdict |", "|---|---:|---|---|"]
    for t in targets(arc):
        lines.append(f"| {t['figure']} | {fmt(t['value'], t['fmt'])} | {t['limit']} | {verdict(t['met'])} |")
    for err in arc.get("errors") or []:
        lines.append(f"\n**failed**: {err}")
    return "\n".join(lines) + "\n"
