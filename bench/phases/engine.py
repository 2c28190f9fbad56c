"""The `engine` phase: the pipe's native push engine against `docker push`, the pipe through the
daemon, and the daemon's bare export, for each image kind, interleaved within each repetition.

Cases (per image kind):
- cold: a fresh package, the default daemon: `docker push`, the pipe with PUSH_ENGINE=native and
  with PUSH_ENGINE=docker, the bare export, and the export read and compressed by the pipe's code with
  nothing sent (pushes/export_gzip.py: the floor of any push that compresses); the order rotates with the
  repetition;
- repush: the native pipe again, same image, same tag, right after its cold push;
- pipelines: a fresh second dockerd holding the image (`docker save | docker load`), a package
  that already holds every layer but the top one under the target tag: `docker push` from that
  daemon, the native pipe from it, the bare export from it; a new daemon for each of the three.
One failed measurement is recorded under `errors` and the others go on.
"""
from __future__ import annotations

import time
import traceback
from functools import partial
from pathlib import Path

from harness.second_daemon import SecondDaemon

from .. import measure
from ..ordering import rotate
from ..phase import Context, Deadline, Phase
from ..pushes import engine_images
from ..pushes.engine_push import EngineBench, push_timeout
from ..registries.embedded import EmbeddedRegistry
from ..settings import Settings
from ..stats import summarize_runs

TAG = "latest"
COLD_TOOLS = ("docker_push", "native", "docker_engine", "export", "export_gzip")
PIPELINES_TOOLS = ("docker_push", "native", "export")
METRICS = ("seconds", "cpu_s", "peak_rss_mb", "dockerd_cpu_s", "registry_cpu_s", "compressed_image_bytes",
           "output_pushed_bytes", "output_layers_uploaded", "output_layers_mounted", "output_layers_skipped",
           "export_bytes", "first_byte_s")
# The Pipelines case's fresh daemon, one per measurement: generous bounds on its start and stop.
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 30.0


class EnginePhase(Phase):
    name = "engine"

    def run(self, ctx: Context) -> dict:
        workdir = ctx.workdir / "engine"
        workdir.mkdir(parents=True, exist_ok=True)
        return EngineRun(ctx.settings, ctx.embedded, workdir).run()


class EngineRun:
    """One run of the phase: the images built once, then the cases of every repetition, interleaved."""

    def __init__(self, s: Settings, registry: EmbeddedRegistry, workdir: Path) -> None:
        self.s = s
        self.registry = registry
        self.workdir = workdir
        self.bench = EngineBench(registry, workdir)
        self.runs: dict[str, dict[str, list[dict]]] = {}
        self.errors: list[str] = []
        self.engines_seen: set[str] = set()
        self.dockerd = measure.daemon_pid()

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

    def _others(self, dockerd: int | None) -> dict:
        return {"dockerd": dockerd, "registry": self.registry.pid}

    # -- cases ---------------------------------------------------------------------------
    def cold(self, image: engine_images.EngineImage, rep: int) -> None:
        case, b = f"{image.kind}/cold", self.bench
        timeout = push_timeout(image.image_bytes)
        others = self._others(self.dockerd)

        def push(tool: str) -> dict:
            package = b.new_package(f"{image.kind}-{tool.replace('_', '-')}")
            try:
                if tool == "docker_push":
                    return b.docker_push(image.current, package, TAG, others, timeout)
                engine = "native" if tool == "native" else "docker"
                out = b.pipe(engine, image.current, package, TAG, others, timeout)
                if tool == "native":
                    self._record(f"{image.kind}/repush", "native",
                                 lambda: b.pipe("native", image.current, package, TAG, others, timeout))
                return out
            finally:
                b.drop_package(package)

        for tool in rotate(COLD_TOOLS, rep):
            if tool == "export":
                self._record(case, tool, lambda: b.export(image.current, self.dockerd, timeout))
            elif tool == "export_gzip":
                self._record(case, tool, lambda: b.export_gzip(image.current, self.dockerd, timeout))
            else:
                self._record(case, tool, partial(push, tool))

    def pipelines(self, image: engine_images.EngineImage, rep: int) -> None:
        """A fresh second dockerd per measurement: a daemon that has pushed once remembers which
        compressed digests the registry holds and skips them, which no Pipelines step can do."""
        case, b = f"{image.kind}/pipelines", self.bench
        timeout = push_timeout(image.image_bytes)

        def measure_with_fresh_daemon(tool: str) -> dict:
            daemon = SecondDaemon(start_timeout=DAEMON_START_TIMEOUT, stop_timeout=DAEMON_STOP_TIMEOUT,
                                  data_parent=self.workdir)  # its layers on the disk of --workdir
            package = None
            try:
                t0 = time.monotonic()
                daemon.start()
                daemon.load(image.current, timeout=timeout)
                print(f"     fresh dockerd up, image loaded in {time.monotonic() - t0:.1f} s", flush=True)
                if tool == "export":
                    return b.export(image.current, daemon.pid, timeout, daemon.docker_host)
                package = b.new_package(f"{image.kind}-pl-{tool.replace('_', '-')}")
                # What the last build left: the image that differs only in its top layer, under the target tag.
                b.docker_push(image.previous, package, TAG, self._others(self.dockerd), timeout)
                others = self._others(daemon.pid)
                if tool == "docker_push":
                    return b.docker_push(image.current, package, TAG, others, timeout, docker_host=daemon.docker_host)
                return b.pipe("native", image.current, package, TAG, others, timeout, docker_host=daemon.docker_host)
            finally:
                if package is not None:
                    b.drop_package(package)
                daemon.stop()  # by its pid; removes its directories and bridge

        for tool in rotate(PIPELINES_TOOLS, rep):
            self._record(case, tool, partial(measure_with_fresh_daemon, tool))

    # -- the whole phase -----------------------------------------------------------------
    def run(self) -> dict:
        s = self.s
        deadline = Deadline(s.engine_deadline_s)
        self.bench.prepare()
        images: dict[str, engine_images.EngineImage] = {}
        built: list[str] = []
        reps = {kind: 0 for kind in s.engine_kinds}
        try:
            for kind in s.engine_kinds:
                t0 = time.monotonic()
                try:
                    images[kind] = engine_images.build(kind, self.workdir / f"context-{kind}", s.engine_layers,
                                                       s.engine_layer_bytes)
                    built += [images[kind].previous, images[kind].current]
                    print(f"   built {kind} images in {time.monotonic() - t0:.1f} s", flush=True)
                except Exception as exc:
                    self.errors.append(f"{kind}: building the images: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
            for rep in range(s.engine_reps):
                for kind, image in images.items():
                    if deadline.expired():
                        self.errors.append(f"deadline ({s.engine_deadline_s:.0f} s) reached before {kind} rep {rep}")
                        continue
                    self.cold(image, rep)
                    if s.engine_pipelines:
                        self.pipelines(image, rep)
                    reps[kind] += 1
        finally:
            self.bench.cleanup()
            engine_images.remove(*built)
        return {
            "layers": s.engine_layers,
            "layer_bytes": s.engine_layer_bytes,
            "image_bytes": s.engine_layers * s.engine_layer_bytes,
            "reps": reps,
            "engines_reported": sorted(self.engines_seen),
            "summary": self.summary(),
            "runs": self.runs,
            "errors": self.errors,
        }

    def summary(self) -> dict:
        return summarize_runs(self.runs, METRICS)
