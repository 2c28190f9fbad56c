"""The `push` phase: the pipe against plain `docker push` of the same small image to the embedded registry,
alternating which goes first; and the pipe's no-op re-push."""
from __future__ import annotations

from ..phase import Context, Deadline, Phase
from ..pushes.pipe_push import PushBench, pipe_missing
from ..settings import Settings
from ..stats import ratio, summary


class PushPhase(Phase):
    name = "push"

    def __init__(self) -> None:
        self.bench: PushBench | None = None

    def run(self, ctx: Context) -> dict:
        self.bench = PushBench(ctx.embedded, ctx.workdir / "push", list(ctx.settings.pipe_layers))
        return push(ctx.settings, self.bench, ctx.deadline)

    def cleanup(self) -> None:
        if self.bench is not None:
            self.bench.cleanup()


def push(s: Settings, bench: PushBench, deadline: Deadline) -> dict:
    missing = pipe_missing()
    docker_s, pipe_s, noop_s = [], [], []
    bench.prepare()
    out: dict = {"image_bytes": bench.image_bytes(), "layers": len(s.pipe_layers)}
    for rep in range(s.pipe_reps):
        if deadline.expired():
            break
        steps = ["docker", "pipe"] if rep % 2 == 0 else ["pipe", "docker"]
        for step in steps:
            if step == "docker":
                docker_s.append(bench.docker_push(rep))
            elif missing is None:
                first, again = bench.pipe_push(rep)
                pipe_s.append(first)
                noop_s.append(again)
    out.update({
        "pipe_status": "ran" if missing is None else f"NOT RUN: {missing}",
        "docker_push_s": summary(docker_s),
        "pipe_push_s": summary(pipe_s),
        "pipe_noop_repush_s": summary(noop_s),
    })
    out["pipe_over_docker"] = ratio(out["pipe_push_s"], out["docker_push_s"])
    return out
