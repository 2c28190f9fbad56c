"""The `engine` phase: the pipe's push engines against `docker push`, the pipe through the daemon, and the
daemon's bare export, for each image kind and each daemon, interleaved within each repetition.

Daemons (Settings.engine_daemons, bench/pushes/engine_daemons.py): `20.10`, the default daemon, with images
built by its `docker build`; `26-classic` and `26-containerd`, Debian 13's Docker 26 started as second
daemons for the run, with the classic or the containerd image store, each building its own images with
BuildKit (its own CLI pushes from it).

Cases (per image kind) on 20.10, named as before the 26 daemons came:
- cold: a fresh package, the default daemon: `docker push`, the pipe with PUSH_ENGINE=native and
  with PUSH_ENGINE=docker, the bare export, and the export read and compressed by the pipe's code with
  nothing sent (pushes/export_gzip.py: the floor of any push that compresses); the order rotates with the
  repetition;
- repush: the native pipe again, same image, same tag, right after its cold push;
- pipelines: a fresh second dockerd holding the image (`docker save | docker load`), a package
  that already holds every layer but the top one under the target tag: `docker push` from that
  daemon, the native pipe from it, the bare export from it; a new daemon for each of the three.
On each 26 daemon, `cold-<daemon>` and `pipelines-<daemon>` (e.g. `cold-26-containerd`) are the same two
cases, the fresh daemon being one of the same kind loaded from the run's one, with `docker push`, the pipe
with PUSH_ENGINE auto, native and docker, and the bare export.
One failed measurement is recorded under `errors` and the others go on.
"""
from __future__ import annotations

import shutil
import time
import traceback
from functools import partial
from pathlib import Path

from ..ordering import rotate
from ..phase import Context, Deadline, Phase
from ..pushes import engine_daemons, engine_images
from ..pushes.engine_daemons import MAIN, Daemon
from ..pushes.engine_push import EngineBench, push_timeout
from ..registries.embedded import EmbeddedRegistry
from ..settings import Settings
from ..stats import summarize_runs

TAG = "latest"
COLD_TOOLS = ("docker_push", "native", "docker_engine", "export", "export_gzip")
PIPELINES_TOOLS = ("docker_push", "native", "export")
TOOLS_26 = ("docker_push", "auto", "native", "docker_engine", "export")  # both cases on the 26 daemons
PUSH_ENGINES = {"auto": "auto", "native": "native", "docker_engine": "docker"}  # tool -> PUSH_ENGINE
METRICS = ("seconds", "cpu_s", "peak_rss_mb", "dockerd_cpu_s", "containerd_cpu_s", "registry_cpu_s",
           "compressed_image_bytes", "output_pushed_bytes", "output_layers_uploaded", "output_layers_mounted",
           "output_layers_skipped", "export_bytes", "first_byte_s")


class EnginePhase(Phase):
    name = "engine"

    def run(self, ctx: Context) -> dict:
        workdir = ctx.workdir / "engine"
        workdir.mkdir(parents=True, exist_ok=True)
        return EngineRun(ctx.settings, ctx.embedded, workdir).run()


class EngineRun:
    """One run of the phase: the images built once per daemon, then the cases of every repetition, interleaved."""

    def __init__(self, s: Settings, registry: EmbeddedRegistry, workdir: Path) -> None:
        self.s = s
        self.registry = registry
        self.workdir = workdir
        self.bench = EngineBench(registry, workdir)
        self.runs: dict[str, dict[str, list[dict]]] = {}
        self.errors: list[str] = []
        self.engines_seen: set[str] = set()

    def _record(self, case: str, tool: str, fn) -> None:
        print(f"   {case} {tool}", flush=True)
        try:
            out = fn()
        except Exception as exc:
            self.errors.append(f"{case} {tool}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            return
        if tool in ("native", "repush") and out.get("output_engine"):
            self.engines_seen.add(str(out["output_engine"]))
        self.runs.setdefault(case, {}).setdefault(tool, []).append(out)

    # -- cases ---------------------------------------------------------------------------
    def _measure(self, tool: str, image: str, package: str, d: Daemon, timeout: float) -> dict:
        """One push of `image` from `d` to `package`, by `docker push` or the pipe with that tool's engine."""
        others = d.others(self.registry.pid)
        if tool == "docker_push":
            return self.bench.docker_push(image, package, TAG, others, timeout, d.host, d.cli)
        return self.bench.pipe(PUSH_ENGINES[tool], image, package, TAG, others, timeout, d.host, d.cli)

    def cold(self, image: engine_images.EngineImage, rep: int, d: Daemon) -> None:
        case, b = f"{image.kind}/{case_suffix('cold', d.label)}", self.bench
        timeout = push_timeout(image.image_bytes)

        def push(tool: str) -> dict:
            package = b.new_package(f"{image.kind}-{tool.replace('_', '-')}")
            try:
                out = self._measure(tool, image.current, package, d, timeout)
                if tool == "native" and d.label == MAIN:
                    self._record(f"{image.kind}/repush", "native",
                                 lambda: self._measure("native", image.current, package, d, timeout))
                return out
            finally:
                b.drop_package(package)

        for tool in rotate(COLD_TOOLS if d.label == MAIN else TOOLS_26, rep):
            if tool == "export":
                self._record(case, tool, lambda: b.export(image.current, d.others(), timeout, d.host))
            elif tool == "export_gzip":
                self._record(case, tool, lambda: b.export_gzip(image.current, d.pid, timeout))
            else:
                self._record(case, tool, partial(push, tool))

    def pipelines(self, image: engine_images.EngineImage, rep: int, source: Daemon) -> None:
        """A fresh second daemon of `source`'s kind per measurement: a daemon that has pushed once remembers
        which compressed digests the registry holds and skips them, which no Pipelines step can do."""
        case, b = f"{image.kind}/{case_suffix('pipelines', source.label)}", self.bench
        timeout = push_timeout(image.image_bytes)

        def measure_with_fresh_daemon(tool: str) -> dict:
            fresh, package = None, None
            try:
                t0 = time.monotonic()
                fresh = engine_daemons.start(source.label, self.workdir)  # its layers on the disk of --workdir
                engine_daemons.copy(image.current, source, fresh, timeout)
                print(f"     fresh dockerd up, image loaded in {time.monotonic() - t0:.1f} s", flush=True)
                if tool == "export":
                    return b.export(image.current, fresh.others(), timeout, fresh.host)
                package = b.new_package(f"{image.kind}-pl-{tool.replace('_', '-')}")
                # What the last build left under the target tag: every layer but the top one.
                b.docker_push(image.previous, package, TAG, source.others(self.registry.pid), timeout,
                              source.host, source.cli)
                return self._measure(tool, image.current, package, fresh, timeout)
            finally:
                if package is not None:
                    b.drop_package(package)
                if fresh is not None:
                    fresh.stop()

        for tool in rotate(PIPELINES_TOOLS if source.label == MAIN else TOOLS_26, rep):
            self._record(case, tool, partial(measure_with_fresh_daemon, tool))

    # -- the whole phase -----------------------------------------------------------------
    def _build(self, sources: dict[str, Daemon]) -> dict[str, dict[str, engine_images.EngineImage]]:
        """Every kind's images in every daemon (the 26 daemons from one context per kind); a failed build
        leaves that daemon without that kind."""
        s = self.s
        images: dict[str, dict[str, engine_images.EngineImage]] = {label: {} for label in sources}
        for kind in s.engine_kinds:
            context = self.workdir / f"context26-{kind}"
            try:
                for label, d in sources.items():
                    t0 = time.monotonic()
                    try:
                        if d.second is None:
                            images[label][kind] = engine_images.build(kind, self.workdir / f"context-{kind}",
                                                                      s.engine_layers, s.engine_layer_bytes)
                        else:
                            if not context.exists():
                                engine_daemons.write_context(kind, context, s.engine_layers, s.engine_layer_bytes)
                            images[label][kind] = engine_daemons.build(d, kind, context, s.engine_layers,
                                                                       s.engine_layer_bytes)
                        print(f"   built {kind} images in {label} in {time.monotonic() - t0:.1f} s", flush=True)
                    except Exception as exc:
                        self.errors.append(f"{label} {kind}: building the images: {type(exc).__name__}: {exc}")
                        traceback.print_exc()
                        shutil.rmtree(context, ignore_errors=True)  # written again whole for the next daemon
            finally:
                shutil.rmtree(context, ignore_errors=True)
        return images

    def run(self) -> dict:
        s = self.s
        deadline = Deadline(s.engine_deadline_s)
        self.bench.prepare()
        sources: dict[str, Daemon] = {}  # by label, the daemons whose images are pushed
        images: dict[str, dict[str, engine_images.EngineImage]] = {}
        reps = {kind: 0 for kind in s.engine_kinds}
        try:
            for label in s.engine_daemons:
                try:
                    sources[label] = engine_daemons.default() if label == MAIN else \
                        engine_daemons.start(label, self.workdir)
                except Exception as exc:
                    self.errors.append(f"{label}: starting the daemon: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
            images = self._build(sources)
            for rep in range(s.engine_reps):
                for kind in s.engine_kinds:
                    if deadline.expired():
                        self.errors.append(f"deadline ({s.engine_deadline_s:.0f} s) reached before {kind} rep {rep}")
                        continue
                    for label in rotate(tuple(sources), rep):
                        image = images[label].get(kind)
                        if image is None:
                            continue
                        self.cold(image, rep, sources[label])
                        if s.engine_pipelines:
                            self.pipelines(image, rep, sources[label])
                    reps[kind] += 1
        finally:
            self.bench.cleanup()
            engine_images.remove(*(ref for image in images.get(MAIN, {}).values()
                                   for ref in (image.previous, image.current)))
            for d in sources.values():
                d.stop()  # a second daemon's images go with it
        return {
            "layers": s.engine_layers,
            "layer_bytes": s.engine_layer_bytes,
            "image_bytes": s.engine_layers * s.engine_layer_bytes,
            "daemons": list(sources),
            "reps": reps,
            "engines_reported": sorted(self.engines_seen),
            "summary": self.summary(),
            "runs": self.runs,
            "errors": self.errors,
        }

    def summary(self) -> dict:
        return summarize_runs(self.runs, METRICS)


def case_suffix(case: str, label: str) -> str:
    """`cold`, `pipelines` on 20.10 (the names of the runs before the 26 daemons); `cold-26-containerd` etc."""
    return case if label == MAIN else f"{case}-{label}"
