"""The engine phase's tables (Markdown): per case and tool, the medians; the pipe's engines as ratios to
`docker push` and to the export, per case and daemon; then its targets and the Docker 26 goals."""
from __future__ import annotations

from . import format as form

TOOL_NAMES = {
    "docker_push": "`docker push`",
    "auto": "pipe, PUSH_ENGINE=auto",
    "native": "pipe, PUSH_ENGINE=native",
    "docker_engine": "pipe, PUSH_ENGINE=docker",
    "export": "bare export (floor)",
}
CASE_NAMES = {"cold": "cold", "pipelines": "fresh dockerd, all but the top layer held", "repush": "re-push, unchanged"}
# The cases on the Docker 26 daemons are `<case>-<daemon>` (phases/engine.py); those on 20.10 are bare.
DAEMON_NAMES = {"26-classic": "Docker 26, classic store", "26-containerd": "Docker 26, containerd store"}
PIPE_ENGINES = ("auto", "native", "docker_engine")
# (case suffix, image kind or None for any, numerator, denominator, limit, label)
RATIO_TARGETS = (
    ("cold", "usr", "native", "docker_push", 0.5, "native / `docker push`"),
    ("cold", "random", "native", "docker_push", 0.75, "native / `docker push`"),
    ("cold", None, "native", "export", 1.3, "native / export"),
    # The pipe through the daemon's own push costs at most a tenth more than that push (the old `push` phase).
    ("cold", None, "docker_engine", "docker_push", 1.1, "PUSH_ENGINE=docker / `docker push`"),
    ("pipelines", None, "native", "docker_push", 0.4, "native / `docker push` from that daemon"),
    ("pipelines", None, "native", "export", 1.25, "native / export from that daemon"),
)
# The Docker 26 goals, of the pipe with PUSH_ENGINE=auto: at most factor x `docker push` from the same daemon
# + seconds. (case suffix, image kind or None for any, factor, seconds)
GOALS_26 = (
    ("cold-26-containerd", None, 1.05, 0.0),
    ("pipelines-26-containerd", None, 1.1, 0.3),
    # The classic store: the issue asks 0.5x cold for both image kinds, 0.4x for a fresh daemon.
    ("cold-26-classic", "usr", 0.5, 0.0),
    ("cold-26-classic", "random", 0.5, 0.0),
    ("pipelines-26-classic", None, 0.4, 0.0),
)
REPUSH_LIMITS_S = {"native": 1.0, "docker_engine": 3.0}  # the daemon's push: the old `push` phase's target
COLUMNS = (("Time, s", form.metric("seconds")), ("Tool CPU, s", form.metric("cpu_s")),
           ("dockerd CPU, s", form.metric("dockerd_cpu_s")), ("registry CPU, s", form.metric("registry_cpu_s")),
           ("Peak RSS, MB", form.metric("peak_rss_mb", "{:.0f}")),
           ("Sent (output file), MB", form.mb("output_pushed_bytes")),
           ("Image as pushed, MB", form.mb("compressed_image_bytes")),
           ("Layers up/mounted/skipped", form.layers(PIPE_ENGINES)))


def case_name(suffix: str) -> str:
    """`cold` on 20.10; `cold-26-containerd` names its daemon too."""
    case, _, daemon = suffix.partition("-")
    return CASE_NAMES[case] + (f", {DAEMON_NAMES.get(daemon, daemon)}" if daemon else "")


def row_name(case: str) -> str:
    """`usr/cold-26-classic` -> `usr cold, Docker 26, classic store`."""
    kind, _, suffix = case.partition("/")
    return f"{kind} {case_name(suffix)}"


def goals_26(kind: str, suffix: str, tools: dict) -> list[dict]:
    """The Docker 26 goals of one case."""
    out = []
    for want, want_kind, factor, plus in GOALS_26:
        if suffix != want or want_kind not in (None, kind):
            continue
        auto, push = form.med(tools.get("auto")), form.med(tools.get("docker_push"))
        if plus:  # in seconds: the limit is no ratio
            limit = None if push is None else factor * push + plus
            out.append(form.target(f"{kind} {case_name(suffix)}: auto, s", auto,
                                   f"<= {factor:g}x `docker push` + {plus:g} s ({form.fmt(limit)} s)",
                                   None if auto is None or limit is None else auto <= limit, "{:.2f}"))
        else:
            out.append(form.at_most(f"{kind} {case_name(suffix)}: auto / `docker push`",
                                    None if auto is None or not push else auto / push, factor))
    return out


def targets(eng: dict) -> list[dict]:
    """Every target of the engine phase that this run can judge: figure, value, limit, met (None: not measured)."""
    out, goals = [], []
    for case, tools in sorted((eng.get("summary") or {}).items()):
        kind, _, suffix = case.partition("/")
        out += [form.at_most(f"{kind} {CASE_NAMES[suffix]}: {label}", form.seconds_ratio(tools, num, den), limit)
                for want, want_kind, num, den, limit, label in RATIO_TARGETS
                if suffix == want and want_kind in (None, kind)]
        first, whole = form.med(tools.get("export"), "first_byte_s"), form.med(tools.get("export"))
        if suffix == "cold" and first and whole:  # not a target: how late 20.10's export starts sending
            out.append(form.target(f"{kind} cold: the export's first byte, share of its time", first / whole,
                                   "(measure)", None, "{:.2f}"))
        if suffix == "repush":
            for tool, limit in REPUSH_LIMITS_S.items():
                v = form.med(tools.get(tool))
                out.append(form.target(f"{kind} re-push of an unchanged image, {TOOL_NAMES[tool]}, s", v,
                                       f"< {limit:g} s", None if v is None else v < limit, "{:.2f}"))
        goals += goals_26(kind, suffix, tools)
    peaks = [r.get("peak_rss_mb") for tools in (eng.get("runs") or {}).values() for r in tools.get("native", [])]
    return out + goals + [form.peak_target("pipe peak RSS, native, worst run, MB", peaks)]


def ratios(eng: dict) -> list[str]:
    """Each engine of the pipe against `docker push` and the export from the same daemon, per case; and
    which engine PUSH_ENGINE=auto took (the pipe's output file)."""
    runs = eng.get("runs") or {}
    heads = [f"{e.replace('_engine', '')} / {den}" for den in ("`docker push`", "export") for e in PIPE_ENGINES]
    rows = []
    for case, tools in sorted((eng.get("summary") or {}).items()):
        if case.endswith("/repush"):
            continue
        cells = [form.fmt(form.seconds_ratio(tools, e, den), "{:.2f}x") for den in ("docker_push", "export")
                 for e in PIPE_ENGINES]
        took = sorted({str(r.get("output_engine")) for r in (runs.get(case) or {}).get("auto", [])})
        rows.append(f"| {row_name(case)} | {' | '.join(cells)} | {', '.join(took)} |")
    return ["", *form.table(f"| Case | {' | '.join(heads)} | auto took |", rows, len(heads), 1)]


def markdown(eng: dict) -> str:
    if not eng or "summary" not in eng:
        return ""
    lines = [f"\n### Push engines: {eng['layers']} layers, {eng['image_bytes'] / 2**30:g} GiB per image "
             f"(repetitions {eng.get('reps')})\n"]
    lines += form.tool_table(eng["summary"], sorted(eng["summary"]), row_name, TOOL_NAMES, COLUMNS)
    lines += ratios(eng)
    lines += form.targets_table("Target (push engines)", targets(eng))
    return "\n".join(lines + form.failures(eng)) + "\n"
