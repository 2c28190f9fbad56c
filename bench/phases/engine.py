"""The `engine` phase (BENCHMARKS.md, "Push engines" and "Docker engines"): the pipe's engines against `docker push`
and the bare export, per image kind and daemon, interleaved. On 20.10 the cases `cold`, `repush` and `pipelines`; on
each Docker 26 daemon `cold-<daemon>` and `pipelines-<daemon>`."""
from __future__ import annotations

import shutil
import time
from functools import partial

from harness.docker_images import remove_image

from ..phase import PushPhase
from ..pushes import engine_daemons
from ..pushes.engine_daemons import MAIN, Daemon, EngineImage
from ..pushes.engine_push import push_timeout
from ..stats import rotate

TAG = "latest"
COLD_TOOLS = ("docker_push", "native", "docker_engine", "export")
PIPELINES_TOOLS = ("docker_push", "native", "export")
TOOLS_26 = ("docker_push", "auto", "native", "docker_engine", "export")  # both cases on the 26 daemons
PUSH_ENGINES = {"auto": "auto", "native": "native", "docker_engine": "docker"}  # tool -> PUSH_ENGINE


def case_suffix(case: str, label: str) -> str:
    """`cold`, `pipelines` on 20.10 (the names of the runs before the 26 daemons); `cold-26-containerd` etc."""
    return case if label == MAIN else f"{case}-{label}"


class EnginePhase(PushPhase):
    name = "engine"

    def _push(self, tool: str, image: str, package: str, d: Daemon, timeout: float) -> dict:
        """One push of `image` from `d` to `package`, by `docker push` or the pipe with that tool's engine."""
        others = d.others(self.registry.pid)
        if tool == "docker_push":
            return self.bench.docker_push(image, package, TAG, others, timeout, d.host, d.cli)
        return self.bench.pipe(PUSH_ENGINES[tool], image, package, TAG, others, timeout, d.host, d.cli)

    def cold(self, image: EngineImage, rep: int, d: Daemon) -> None:
        case, b = f"{image.kind}/{case_suffix('cold', d.label)}", self.bench
        timeout = push_timeout(image.image_bytes)

        def push(tool: str) -> dict:
            package = b.new_package(f"{image.kind}-{tool.replace('_', '-')}")
            try:
                out = self._push(tool, image.current, package, d, timeout)
                if tool in ("native", "docker_engine") and d.label == MAIN:  # the same image and tag again
                    self.record(f"{image.kind}/repush", tool, lambda: self._push(tool, image.current, package, d,
                                                                                 timeout))
                return out
            finally:
                b.drop_package(package)

        for tool in rotate(COLD_TOOLS if d.label == MAIN else TOOLS_26, rep):
            if tool == "export":
                self.record(case, tool, lambda: b.export(image.current, d.others(), timeout, d.host))
            else:
                self.record(case, tool, partial(push, tool))

    def pipelines(self, image: EngineImage, rep: int, source: Daemon) -> None:
        """A fresh second daemon of `source`'s kind per measurement: a daemon that has pushed once remembers
        which compressed digests the registry holds and skips them, which no Pipelines step can do."""
        case, b = f"{image.kind}/{case_suffix('pipelines', source.label)}", self.bench
        timeout = push_timeout(image.image_bytes)

        def with_fresh_daemon(tool: str) -> dict:
            fresh, package = None, None
            try:
                t0 = time.monotonic()
                fresh = engine_daemons.start(source.label, self.workdir)  # its layers on the disk of --workdir
                fresh.second.load(image.current, timeout=timeout, source=source.second)  # docker save | load
                print(f"     fresh dockerd up, image loaded in {time.monotonic() - t0:.1f} s", flush=True)
                if tool == "export":
                    return b.export(image.current, fresh.others(), timeout, fresh.host)
                package = b.new_package(f"{image.kind}-pl-{tool.replace('_', '-')}")
                # What the last build left under the target tag: every layer but the top one.
                b.docker_push(image.previous, package, TAG, source.others(self.registry.pid), timeout,
                              source.host, source.cli)
                return self._push(tool, image.current, package, fresh, timeout)
            finally:
                if package is not None:
                    b.drop_package(package)
                if fresh is not None:
                    fresh.stop()

        for tool in rotate(PIPELINES_TOOLS if source.label == MAIN else TOOLS_26, rep):
            self.record(case, tool, partial(with_fresh_daemon, tool))

    def _build(self, kind: str, label: str, d: Daemon) -> EngineImage | None:
        """One kind's images in one daemon (the 26 daemons from one context per kind, written once); None when
        the build fails."""
        s, t0 = self.s, time.monotonic()
        context = self.workdir / (f"context-{kind}" if d.second is None else f"context26-{kind}")
        try:
            if not context.exists():
                engine_daemons.write_context(kind, context, s.engine_layers, s.engine_layer_bytes, d.second is not None)
            image = engine_daemons.build(d, kind, context, s.engine_layers, s.engine_layer_bytes)
        except Exception as exc:
            self.failed(f"{label} {kind}: building the images", exc)
            shutil.rmtree(context, ignore_errors=True)  # written again whole for the next daemon
            return None
        finally:
            if d.second is None:
                shutil.rmtree(context, ignore_errors=True)
        print(f"   built {kind} images in {label} in {time.monotonic() - t0:.1f} s", flush=True)
        return image

    def measure(self) -> dict:
        s = self.s
        self.bench.prepare()
        sources: dict[str, Daemon] = {}  # by label, the daemons whose images are pushed
        images: dict[str, dict[str, EngineImage]] = {}
        try:
            for label in s.engine_daemons:
                try:
                    sources[label] = engine_daemons.default() if label == MAIN else \
                        engine_daemons.start(label, self.workdir)
                except Exception as exc:
                    self.failed(f"{label}: starting the daemon", exc)
            for kind in s.engine_kinds:
                for label, d in sources.items():
                    images.setdefault(label, {})[kind] = self._build(kind, label, d)
                shutil.rmtree(self.workdir / f"context26-{kind}", ignore_errors=True)
            for rep in self.repetitions(s.engine_reps):
                for kind in s.engine_kinds:
                    for label in rotate(tuple(sources), rep):
                        if (image := images[label][kind]) is not None:
                            self.cold(image, rep, sources[label])
                            self.pipelines(image, rep, sources[label])
        finally:
            self.bench.cleanup()
            remove_image(*(ref for image in images.get(MAIN, {}).values() if image
                                    for ref in (image.previous, image.current)))
            for d in sources.values():
                d.stop()  # a second daemon's images go with it
        return self.section(s.engine_layers, s.engine_layer_bytes, daemons=list(sources))
