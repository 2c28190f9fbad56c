"""The copy phase's tables (Markdown): per case and tool, the medians; then its targets (bench/phases/copy.py)."""
from __future__ import annotations

from . import format as form

TOOL_NAMES = {
    "pipe": "pipe, SOURCE_IMAGE",
    "rerun": "pipe again, all there",
    "skopeo": "`skopeo copy --all`",
    "floor": "GET -> PUT loop (floor)",
    "docker": "`docker pull` + `tag` + `push`, fresh dockerd",
}
PROMOTE_LIMIT_S = 1.5
LIMITS = {"skopeo": 1.0, "floor": 1.2}  # pipe time / that tool's, for the copies between registries
DIRECTIONS = {"reference": "distribution", "embedded": "emulator"}
_layers = form.layers(("pipe", "rerun"))


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


def targets(cop: dict) -> list[dict]:
    """Each target this run can judge: figure, value, limit, met (None: a measure, not a target), format."""
    summ, runs = cop.get("summary") or {}, cop.get("runs") or {}
    out = []
    for case in ordered(cop):
        tools, name = summ[case], case_name(case)
        if case.startswith("promote"):
            v = form.med(tools.get("pipe"))
            out.append(form.target(f"{name}: pipe wall time, s", v, f"< {PROMOTE_LIMIT_S:g} s",
                                   None if v is None else v < PROMOTE_LIMIT_S, "{:.2f}"))
            out += [form.target(f"{name}: pipe / {TOOL_NAMES[other]}", form.seconds_ratio(tools, "pipe", other),
                                "(measure)", None) for other in ("docker", "skopeo")]
            continue
        out += [form.at_most(f"{name}: pipe / {TOOL_NAMES[other]}", form.seconds_ratio(tools, "pipe", other), limit)
                for other, limit in LIMITS.items()]
        want = _image_bytes(cop, case)
        sent = [r.get("output_pushed_bytes") for r in (runs.get(case) or {}).get("pipe", [])]
        if sent and want:
            out.append(form.target(f"{name}: pipe sent, MB (every run)", max(sent) / 1e6, f"= {want / 1e6:.0f} (the "
                                   "image, compressed)", all(s == want for s in sent), "{:.0f}"))
        again = [r.get("output_pushed_bytes") for r in (runs.get(case) or {}).get("rerun", [])]
        if again:
            out.append(form.target(f"{name}: re-run, bytes sent (every run)", max(again), "0",
                                   all(a == 0 for a in again), "{:.0f}"))
    peaks = [r.get("peak_rss_mb") for case in runs.values() for tool in ("pipe", "rerun") for r in case.get(tool, [])]
    return out + [form.peak_target("pipe peak RSS, worst run, MB", peaks)]


def _blobs(case: str, tool: str, d: dict) -> str:
    """The pipe's layers; skopeo's blobs as its log names them (skopeo 1.9 logs no skip without a tty)."""
    return f"{form.fmt(form.med(d, 'skopeo_blobs_copied'), '{:.0f}')} named" if tool == "skopeo" else \
        _layers(case, tool, d)


def markdown(cop: dict) -> str:
    if not cop:
        return ""
    if "summary" not in cop:
        return form.failed_section("Copy from a registry (SOURCE_IMAGE)", cop)
    loads = sorted(r["load_1m"] for tools in (cop.get("runs") or {}).values() for runs in tools.values()
                   for r in runs if r.get("load_1m") is not None)
    lines = [f"\n### Copy from a registry (SOURCE_IMAGE): real files, {cop['layers']} layers, "
             f"{form.size(cop['image_bytes'])} per image (repetitions {cop.get('reps')})\n"]
    if loads:
        lines.append(f"Load average (1 min) as each measurement started: {loads[0]:.2f}-{loads[-1]:.2f} "
                     f"(median {loads[len(loads) // 2]:.2f}) on {cop.get('cores')} cores.\n")
    columns = (
        ("Time, s (min-max)", lambda case, tool, d: form.seconds_range(d)), ("Tool CPU, s", form.metric("cpu_s")),
        ("emulator CPU, s", form.metric("embedded_cpu_s")), ("distribution CPU, s", form.metric("reference_cpu_s")),
        ("dockerd CPU, s", lambda case, tool, d: form.fmt(form.med(d, "dockerd_cpu_s")) if tool == "docker" else ""),
        ("Peak RSS, MB", form.metric("peak_rss_mb", "{:.0f}")),
        ("Sent, MB", lambda case, tool, d: _sent(tool, d)),
        ("Image, MB", lambda case, tool, d: form.megabytes(_image_bytes(cop, case))),
        ("Layers up/mounted/skipped (skopeo: blobs in its log)", _blobs))
    lines += form.tool_table(cop["summary"], ordered(cop), case_name, TOOL_NAMES, columns)
    lines += form.targets_table("Target (copy from a registry)", targets(cop)) + form.failures(cop)
    return "\n".join(lines) + "\n"


def _sent(tool: str, d: dict) -> str:
    sent = form.med(d, "output_pushed_bytes") if tool in ("pipe", "rerun") else form.med(d, "floor_bytes")
    return "" if sent is None else form.megabytes(sent)
