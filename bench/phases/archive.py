"""The `archive` phase: the pipe pushing from an image archive (IMAGE_ARCHIVE, no daemon) against
`skopeo copy` of the same archive, on the same real-files image and the same embedded registry.

Cases (bench/pushes/archive_sources.py makes both archives once per run):
- oci-layout: an OCI layout directory with gzip layers, which both tools upload as stored;
- docker-archive: the tar of `docker save`, whose uncompressed layers each tool compresses (the pipe
  with isal on all cores, skopeo with its own gzip).
Each push is cold, as in the engine phase: to a package created for it alone and deleted after it;
then the blobs it stored are purged from the registry's root, so no push finds a blob on disk that
an earlier one left. The four measurements of a repetition run in an order that rotates with it.
One failed measurement is recorded under `errors` and the others go on.
"""
from __future__ import annotations

import shutil
import traceback
from pathlib import Path

from .. import measure
from ..ordering import rotate
from ..phase import Context, Deadline, Phase
from ..pushes import archive_sources
from ..pushes.engine_push import EngineBench, push_timeout
from ..pushes.skopeo_push import skopeo_copy
from ..registries.embedded import EmbeddedRegistry
from ..registries.purge import purge_blobs
from ..settings import Settings
from ..stats import summarize_runs

TAG = "latest"
CASES = ("oci-layout", "docker-archive")
TOOLS = ("pipe", "skopeo")
MEASUREMENTS = tuple(f"{case} {tool}" for case in CASES for tool in TOOLS)
METRICS = ("seconds", "cpu_s", "peak_rss_mb", "registry_cpu_s", "dockerd_cpu_s", "compressed_image_bytes",
           "output_pushed_bytes", "output_layers_uploaded", "output_layers_mounted", "output_layers_skipped",
           "skopeo_blobs_copied", "skopeo_blobs_skipped")


class ArchivePhase(Phase):
    name = "archive"

    def run(self, ctx: Context) -> dict:
        workdir = ctx.workdir / "archive"
        workdir.mkdir(parents=True, exist_ok=True)
        return ArchiveRun(ctx.settings, ctx.embedded, workdir).run()


class ArchiveRun:
    """One run of the phase: both archives made once, then the four measurements of every repetition."""

    def __init__(self, s: Settings, registry: EmbeddedRegistry, workdir: Path) -> None:
        self.s = s
        self.registry = registry
        self.workdir = workdir
        self.bench = EngineBench(registry, workdir)
        self.runs: dict[str, dict[str, list[dict]]] = {}
        self.errors: list[str] = []
        # dockerd's CPU-seconds are measured too: near zero shows that neither tool went through the daemon.
        self.others = {"registry": registry.pid, "dockerd": measure.daemon_pid()}

    def push(self, archives: archive_sources.Archives, case: str, tool: str) -> dict:
        b = self.bench
        timeout = push_timeout(self.s.archive_layers * self.s.archive_layer_bytes)
        package = b.new_package(f"ar-{case}-{tool}")
        digests: list[str] = []
        try:
            if tool == "pipe":
                out = b.pipe_archive(archives.pipe_path(case), package, TAG, self.others, timeout)
                if out.get("output_source") != case:  # the pipe took the archive for another kind
                    self.errors.append(f"{case} pipe: the output file says source {out.get('output_source')!r}")
            else:
                out = skopeo_copy(b, archives.skopeo_ref(case), package, TAG, self.others, timeout)
            digests = out.pop("blob_digests", [])
            return out
        finally:
            b.drop_package(package)
            if digests:
                purge_blobs(self.registry.process.root, digests)

    def _record(self, archives: archive_sources.Archives, measurement: str) -> None:
        case, _, tool = measurement.partition(" ")
        print(f"   {case} {tool}", flush=True)
        try:
            out = self.push(archives, case, tool)
        except Exception as exc:
            self.errors.append(f"{case} {tool}: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            return
        self.runs.setdefault(case, {}).setdefault(tool, []).append(out)

    def run(self) -> dict:
        s = self.s
        deadline = Deadline(s.archive_deadline_s)
        self.bench.logs.mkdir(parents=True, exist_ok=True)
        reps = 0
        try:
            archives = archive_sources.make(self.workdir / "archives", s.archive_layers, s.archive_layer_bytes)
            print(f"   archives ready: {archives.facts}", flush=True)
            for rep in range(s.archive_reps):
                if deadline.expired():
                    self.errors.append(f"deadline ({s.archive_deadline_s:.0f} s) reached before rep {rep}")
                    break
                for measurement in rotate(MEASUREMENTS, rep):
                    self._record(archives, measurement)
                reps += 1
        finally:
            shutil.rmtree(self.workdir / "archives", ignore_errors=True)
        return {
            "layers": s.archive_layers,
            "layer_bytes": s.archive_layer_bytes,
            "image_bytes": s.archive_layers * s.archive_layer_bytes,
            "reps": reps,
            "archives": archives.facts,
            "summary": summarize_runs(self.runs, METRICS),
            "runs": self.runs,
            "errors": self.errors,
        }
