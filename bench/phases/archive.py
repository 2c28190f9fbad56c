"""The `archive` phase (BENCHMARKS.md, "Push from an archive"): the pipe from IMAGE_ARCHIVE against `skopeo copy`
of the same OCI layout or `docker save` tar, made once from the engine phase's `usr` image; every push cold."""
from __future__ import annotations

import shutil
import time
from functools import partial
from pathlib import Path

from harness.accounts import TOKENS
from harness.docker_images import remove_image
from pipe import oci

from .. import measure
from ..phase import PushPhase
from ..pushes import engine_daemons
from ..pushes.engine_push import USER, push_timeout
from ..registries import WORKSPACE, purge_blobs
from ..stats import rotate

TAG = "latest"
CASES = ("oci-layout", "docker-archive")
MEASUREMENTS = tuple(f"{case} {tool}" for case in CASES for tool in ("pipe", "skopeo"))
MAKE_TIMEOUT = 900.0


def make_archives(workdir: Path, layers: int, layer_bytes: int) -> dict:
    """Both archives under `workdir`; how long each took and how large it is."""
    t0 = time.monotonic()
    engine_daemons.write_context("usr", workdir / "context", layers, layer_bytes, slices=False)
    image = engine_daemons.build(engine_daemons.default(), "usr", workdir / "context", layers, layer_bytes)
    shutil.rmtree(workdir / "context")
    try:
        facts = {"image_build_s": round(time.monotonic() - t0, 1),
                 "oci_layout_s": measure.step(["skopeo", "copy", f"docker-daemon:{image.current}",
                                               f"oci:{workdir / 'layout'}:{TAG}"], MAKE_TIMEOUT),
                 "docker_save_s": measure.step(["docker", "save", "-o", str(workdir / "image.tar"), image.current],
                                               MAKE_TIMEOUT)}
    finally:
        remove_image(image.previous, image.current)
    layout = workdir / "layout"
    top = oci.Index.parse((layout / "index.json").read_bytes()).manifests[0]
    layers = oci.Manifest.parse((layout / "blobs" / "sha256" / top.digest.partition(":")[2]).read_bytes()).layers
    media = sorted({d.media_type for d in layers})
    if media != [oci.OCI_LAYER_GZIP]:  # the case would not be "layers already compressed" any more
        raise RuntimeError(f"skopeo wrote layers of {media} into {workdir / 'layout'}, not only {oci.OCI_LAYER_GZIP}")
    return {**facts, "oci_layout_layers": len(layers), "oci_layout_layer_bytes": sum(d.size for d in layers),
            "oci_layout_media_types": media, "docker_archive_bytes": (workdir / "image.tar").stat().st_size}


class ArchivePhase(PushPhase):
    name = "archive"

    def push(self, case: str, tool: str) -> dict:
        b, s, archives = self.bench, self.s, self.workdir / "archives"
        timeout = push_timeout(s.archive_layers * s.archive_layer_bytes)
        # dockerd's CPU-seconds too: near zero shows that neither tool went through the daemon.
        others = {"registry": self.registry.pid, "dockerd": measure.daemon_pid()}
        package, digests = b.new_package(f"ar-{case}-{tool}"), []
        try:
            if tool == "pipe":
                # IMAGE_ARCHIVE is read in place, no daemon; IMAGE_NAME only names the package.
                archive = archives / ("layout" if case == "oci-layout" else "image.tar")
                out = b.run_pipe({"IMAGE_ARCHIVE": str(archive), "IMAGE_NAME": f"{package}:{TAG}", "TAGS": TAG},
                                 f"archive-{package}", others, timeout)
                if out.get("output_source") != case:  # the pipe took the archive for another kind
                    self.errors.append(f"{case} pipe: the output file says source {out.get('output_source')!r}")
            else:
                source = f"oci:{archives / 'layout'}:{TAG}" if case == "oci-layout" else \
                    f"docker-archive:{archives / 'image.tar'}"
                out = b.skopeo(["--dest-tls-verify=false", "--dest-creds", f"{USER}:{TOKENS[USER]}"], source,
                               f"docker://{b.host}/{WORKSPACE}/{package}:{TAG}", others, timeout, package)
            out.update(b.check_tag(package, TAG, with_digests=True))
            digests = out.pop("blob_digests")
            return out
        finally:
            b.drop_package(package)
            if digests:
                purge_blobs(self.registry.root, digests)

    def measure(self) -> dict:
        s = self.s
        try:
            facts = make_archives(self.workdir / "archives", s.archive_layers, s.archive_layer_bytes)
            print(f"   archives ready: {facts}", flush=True)
            for rep in self.repetitions(s.archive_reps):
                for case, _, tool in (m.partition(" ") for m in rotate(MEASUREMENTS, rep)):
                    self.record(case, tool, partial(self.push, case, tool))
        finally:
            shutil.rmtree(self.workdir / "archives", ignore_errors=True)
        return self.section(s.archive_layers, s.archive_layer_bytes, archives=facts)
