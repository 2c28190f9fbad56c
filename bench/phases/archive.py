"""The `archive` phase: the pipe pushing from an image archive (IMAGE_ARCHIVE, no daemon) against `skopeo copy` of
the same archive, on the same real-files image and the same embedded registry.

Cases (pushes/archive_sources.py makes both archives once per run): `oci-layout`, an OCI layout with gzip layers,
which both tools upload as stored; `docker-archive`, the tar of `docker save`, whose layers each tool compresses.
Each push is cold: to a package made for it alone and deleted after it, the blobs it stored then purged from the
registry's root. The four measurements of a repetition run in an order that rotates with it.
"""
from __future__ import annotations

import shutil
from functools import partial

from harness.accounts import TOKENS

from .. import measure
from ..phase import PushPhase
from ..pushes import archive_sources
from ..pushes.engine_push import USER, push_timeout
from ..registries import WORKSPACE, purge_blobs
from ..stats import rotate

TAG = "latest"
CASES = ("oci-layout", "docker-archive")
MEASUREMENTS = tuple(f"{case} {tool}" for case in CASES for tool in ("pipe", "skopeo"))
METRICS = ("seconds", "cpu_s", "peak_rss_mb", "registry_cpu_s", "dockerd_cpu_s", "compressed_image_bytes",
           "output_pushed_bytes", "output_layers_uploaded", "output_layers_mounted", "output_layers_skipped",
           "skopeo_blobs_copied", "skopeo_blobs_skipped")


class ArchivePhase(PushPhase):
    name = "archive"

    def push(self, archives: archive_sources.Archives, case: str, tool: str) -> dict:
        b, s = self.bench, self.s
        timeout = push_timeout(s.archive_layers * s.archive_layer_bytes)
        # dockerd's CPU-seconds too: near zero shows that neither tool went through the daemon.
        others = {"registry": self.registry.pid, "dockerd": measure.daemon_pid()}
        package = b.new_package(f"ar-{case}-{tool}")
        digests: list[str] = []
        try:
            if tool == "pipe":
                out = b.pipe_archive(archives.pipe_path(case), package, TAG, others, timeout)
                if out.get("output_source") != case:  # the pipe took the archive for another kind
                    self.errors.append(f"{case} pipe: the output file says source {out.get('output_source')!r}")
            else:
                out = b.skopeo(["--dest-tls-verify=false", "--dest-creds", f"{USER}:{TOKENS[USER]}"],
                               archives.skopeo_ref(case), f"docker://{b.host}/{WORKSPACE}/{package}:{TAG}",
                               others, timeout, package)
                out.update(b.check_tag(package, TAG, with_digests=True))
            digests = out.pop("blob_digests", [])
            return out
        finally:
            b.drop_package(package)
            if digests:
                purge_blobs(self.registry.root, digests)

    def measure(self) -> dict:
        s = self.s
        reps, archives = 0, None
        try:
            archives = archive_sources.make(self.workdir / "archives", s.archive_layers, s.archive_layer_bytes)
            print(f"   archives ready: {archives.facts}", flush=True)
            for rep in self.repetitions(s.archive_reps, s.archive_deadline_s):
                for measurement in rotate(MEASUREMENTS, rep):
                    case, _, tool = measurement.partition(" ")
                    self.record(case, tool, partial(self.push, archives, case, tool))
                reps += 1
        finally:
            shutil.rmtree(self.workdir / "archives", ignore_errors=True)
        return self.section(s.archive_layers, s.archive_layer_bytes, reps, METRICS, archives=archives.facts)
