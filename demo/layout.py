"""A small OCI image layout written with the standard library: what `IMAGE_ARCHIVE` takes, no daemon.

One gzip layer of the given files, a config naming its diff_id, a manifest, `index.json` tagging it,
and the `oci-layout` marker. The bytes are deterministic for the same files (fixed mtimes, owners
and gzip header), so the same content always has the same digest.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pipe.oci import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, digest_of

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
EPOCH = 946684800  # 2000-01-01: a fixed mtime, so the layer's bytes do not depend on the clock


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class Layout:
    path: Path
    manifest: Blob
    blobs: tuple[Blob, ...]  # the config, then the layers: what a manifest names


def layer_tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), EPOCH, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    return out.getvalue()


def _put(blobs: Path, data: bytes, media_type: str) -> Blob:
    digest = digest_of(data)
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return Blob(digest, len(data), media_type)


def _descriptor(blob: Blob, **extra: object) -> dict:
    return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size, **extra}


def write_layout(path: Path, files: dict[str, bytes], tag: str = "latest") -> Layout:
    """Write an OCI layout of one linux/amd64 image holding `files` into the new directory `path`."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    tar = layer_tar(files)
    layer = _put(blobs, gzip.compress(tar, mtime=0), OCI_LAYER_GZIP)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(tar)]},
        "history": [{"created": "2000-01-01T00:00:00Z", "created_by": "python -m demo (demo/layout.py)"}],
    }
    config_blob = _put(blobs, json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": _descriptor(config_blob),
                "layers": [_descriptor(layer)]}
    manifest_blob = _put(blobs, json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [_descriptor(manifest_blob, annotations={REF_NAME: tag},
                                       platform={"architecture": "amd64", "os": "linux"})]}
    (path / "index.json").write_text(json.dumps(index, sort_keys=True))
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return Layout(path, manifest_blob, (config_blob, layer))
