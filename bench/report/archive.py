"""The archive phase's table (Markdown): per archive and tool, the medians; then its targets."""
from __future__ import annotations

from .format import (
    at_most,
    failures,
    fmt,
    med,
    megabytes,
    peak_target,
    seconds_range,
    seconds_ratio,
    size,
    table,
    targets_table,
)

TOOL_NAMES = {"pipe": "pipe, IMAGE_ARCHIVE", "skopeo": "`skopeo copy`"}
CASE_NAMES = {"oci-layout": "OCI layout, gzip layers", "docker-archive": "docker-archive (`docker save`)"}
RATIO_LIMITS = {"oci-layout": 1.0, "docker-archive": 0.6}  # pipe time / skopeo time


def targets(arc: dict) -> list[dict]:
    """Each target this run can judge: figure, value, limit, met (None: not measured), format."""
    summ, runs = arc.get("summary") or {}, arc.get("runs") or {}
    out = [at_most(f"{CASE_NAMES[case]}: pipe / `skopeo copy`", seconds_ratio(summ.get(case) or {}, "pipe", "skopeo"),
                   limit) for case, limit in RATIO_LIMITS.items()]
    return out + [peak_target(f"pipe peak RSS, {CASE_NAMES[case]}, worst run, MB",
                              [r.get("peak_rss_mb") for r in runs[case].get("pipe", [])])
                  for case in CASE_NAMES if case in runs]


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
    rows = []
    for case in CASE_NAMES:
        for tool in TOOL_NAMES:
            d = ((arc.get("summary") or {}).get(case) or {}).get(tool)
            if d is None:
                continue
            blobs = fmt(med(d, "output_layers_uploaded"), "{:.0f}") if tool == "pipe" else \
                f"{fmt(med(d, 'skopeo_blobs_copied'), '{:.0f}')} ({fmt(med(d, 'skopeo_blobs_skipped'), '{:.0f}')})"
            rows.append(f"| {CASE_NAMES[case]} | {TOOL_NAMES[tool]} | {seconds_range(d)} | {fmt(med(d, 'cpu_s'))} "
                        f"| {fmt(med(d, 'registry_cpu_s'))} | {fmt(med(d, 'dockerd_cpu_s'))} "
                        f"| {fmt(med(d, 'peak_rss_mb'), '{:.0f}')} | {megabytes(med(d, 'output_pushed_bytes'))} "
                        f"| {megabytes(med(d, 'compressed_image_bytes'))} | {blobs} |")
    lines += table("| Archive | Tool | Time, s (min-max) | Tool CPU, s | registry CPU, s | dockerd CPU, s "
                   "| Peak RSS, MB | Sent (output file), MB | Held for the tag, MB "
                   "| Layers uploaded / skopeo blobs copied (skipped) |", rows, 7, 1)
    lines += targets_table("Target (archive push)", targets(arc)) + failures(arc)
    return "\n".join(lines) + "\n"
