"""The archive phase's table (Markdown): per archive and tool, the medians; then its targets."""
from __future__ import annotations

from . import format as form

TOOL_NAMES = {"pipe": "pipe, IMAGE_ARCHIVE", "skopeo": "`skopeo copy`"}
CASE_NAMES = {"oci-layout": "OCI layout, gzip layers", "docker-archive": "docker-archive (`docker save`)"}
RATIO_LIMITS = {"oci-layout": 1.0, "docker-archive": 0.6}  # pipe time / skopeo time
# Sent: the pipe's output file; held: what the registry holds for the tag, for both tools (BENCHMARKS.md's table).
COLUMNS = (("Time, s (min-max)", lambda case, tool, d: form.seconds_range(d)), ("Tool CPU, s", form.metric("cpu_s")),
           ("Registry CPU, s", form.metric("registry_cpu_s")), ("Peak RSS, MB", form.metric("peak_rss_mb", "{:.0f}")),
           ("Sent (output file), MB", form.mb("output_pushed_bytes")),
           ("Held for the tag, MB", form.mb("compressed_image_bytes")))


def targets(arc: dict) -> list[dict]:
    """Each target this run can judge: figure, value, limit, met (None: not measured), format."""
    summ, runs = arc.get("summary") or {}, arc.get("runs") or {}
    out = [form.at_most(f"{CASE_NAMES[case]}: pipe / `skopeo copy`",
                        form.seconds_ratio(summ.get(case) or {}, "pipe", "skopeo"), limit)
           for case, limit in RATIO_LIMITS.items()]
    return out + [form.peak_target(f"pipe peak RSS, {CASE_NAMES[case]}, worst run, MB",
                                   [r.get("peak_rss_mb") for r in runs[case].get("pipe", [])])
                  for case in CASE_NAMES if case in runs]


def markdown(arc: dict) -> str:
    if not arc:
        return ""
    if "summary" not in arc:
        return form.failed_section("Push from an archive", arc)
    facts = arc.get("archives") or {}
    lines = [f"\n### Push from an archive: real files, {arc['layers']} layers, {form.size(arc['image_bytes'])} "
             f"(repetitions {arc.get('reps')}, cold pushes)\n"]
    if facts:
        lines.append(f"OCI layout: {form.megabytes(facts.get('oci_layout_layer_bytes'))} MB of gzip layers; "
                     f"docker-archive: {form.megabytes(facts.get('docker_archive_bytes'))} MB.\n")
    lines += form.tool_table(arc["summary"], [c for c in CASE_NAMES if c in arc["summary"]], CASE_NAMES.get, TOOL_NAMES,
                             COLUMNS, 0)
    lines += form.targets_table("Target (archive push)", targets(arc)) + form.failures(arc)
    return "\n".join(lines) + "\n"
