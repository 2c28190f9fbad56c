"""The two archives the archive phase pushes, made once per run from one real-files image.

- an OCI layout directory, written by `skopeo copy docker-daemon:IMG oci:DIR:latest` (skopeo
  gzip-compresses the daemon's uncompressed layers: both tools then upload the layers as stored);
- a docker-archive, written by `docker save -o` (uncompressed layers: each tool compresses them).
The daemon's images are removed once both are written: the measured pushes need no daemon.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import engine_daemons

MAKE_TIMEOUT = 900.0
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUT_TAG = "latest"


@dataclass(frozen=True)
class Archives:
    layout: Path  # OCI layout directory
    tar: Path  # docker save
    facts: dict = field(default_factory=dict)  # how long each took and how large it is

    def pipe_path(self, case: str) -> Path:
        return self.layout if case == "oci-layout" else self.tar

    def skopeo_ref(self, case: str) -> str:
        return f"oci:{self.layout}:{LAYOUT_TAG}" if case == "oci-layout" else f"docker-archive:{self.tar}"


def _run(cmd: list[str]) -> float:
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=MAKE_TIMEOUT)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed: {r.stderr.strip()[-500:]}")
    return round(time.monotonic() - t0, 1)


def _layout_layers(layout: Path) -> list[dict]:
    """The layer descriptors of the one image in the layout (index.json -> manifest blob)."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest.partition(":")[2]).read_text())
    return manifest["layers"]


def make(workdir: Path, layers: int, layer_bytes: int) -> Archives:
    """Build the real-files image (the engine phase's `usr` kind), write both archives, drop the image."""
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    image = engine_daemons.build("usr", workdir / "context", layers, layer_bytes)
    try:
        build_s = round(time.monotonic() - t0, 1)
        layout, tar = workdir / "layout", workdir / "image.tar"
        layout_s = _run(["skopeo", "copy", f"docker-daemon:{image.current}", f"oci:{layout}:{LAYOUT_TAG}"])
        save_s = _run(["docker", "save", "-o", str(tar), image.current])
    finally:
        engine_daemons.remove(image.previous, image.current)
    descriptors = _layout_layers(layout)
    media = sorted({d["mediaType"] for d in descriptors})
    if media != [GZIP_LAYER]:  # the case would not be "layers already compressed" any more
        raise RuntimeError(f"skopeo wrote layers of {media} into {layout}, not only {GZIP_LAYER}")
    return Archives(layout, tar, {
        "image_build_s": build_s,
        "oci_layout_s": layout_s,
        "oci_layout_layers": len(descriptors),
        "oci_layout_layer_bytes": sum(d["size"] for d in descriptors),
        "oci_layout_media_types": media,
        "docker_save_s": save_s,
        "docker_archive_bytes": tar.stat().st_size,
    })
