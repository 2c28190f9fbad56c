"""The copy phase's images, written straight as OCI layouts (BENCHMARKS.md, "Copy from a registry"); a nonce in
every layer keeps each image's blobs its own, so a purge never touches another's."""
from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from pipe.oci import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, Descriptor, Index

from ..measure import step
from .engine_daemons import Cut, usr_tar
from .engine_push import no_docker_host

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYOUT_TAG = "latest"
PIECE = 1024**2
SEED_TIMEOUT = 900.0
KINDS = ("image", "index")
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


@dataclass
class CopyImage:
    """One layout: its blobs (layers and configs), its manifests, and the digest a copy must keep."""
    kind: str
    layout: Path
    digest: str = ""  # of the top manifest or index
    blobs: list[Descriptor] = field(default_factory=list)  # layers then configs, in manifest order
    manifests: list[Descriptor] = field(default_factory=list)  # the image manifests (and the index, last)

    @property
    def compressed_bytes(self) -> int:
        return sum(b.size for b in self.blobs)

    @property
    def digests(self) -> list[str]:
        """Everything a registry stores for it (distribution keeps manifests as blobs too)."""
        return [b.digest for b in self.blobs + self.manifests]


class _GzipSink:
    """A file-like target for tarfile: the tar bytes hashed (diff_id), gzipped, the gzip bytes hashed and written."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.diff, self.blob, self.size = out, hashlib.sha256(), hashlib.sha256(), 0
        self.z = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)  # gzip wrapper, level 1

    def _emit(self, data: bytes) -> None:
        self.blob.update(data)
        self.out.write(data)
        self.size += len(data)

    def write(self, data: bytes) -> int:
        self.diff.update(data)
        self._emit(self.z.compress(data))
        return len(data)

    def close(self) -> None:
        self._emit(self.z.flush())


def _write_blob(layout: Path, data: bytes, media_type: str) -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return Descriptor(digest, len(data), media_type)


def _layer(layout: Path, usr: BinaryIO, index: int, size: int, nonce: str) -> tuple[Descriptor, str]:
    """One gzip layer: a nonce file and `size` bytes of /usr's tar stream as one file. Returns it and its diff_id."""
    tmp = layout / "blobs" / "sha256" / f"tmp-{index}"
    with open(tmp, "wb") as out:
        sink = _GzipSink(out)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT,
                          copybufsize=PIECE) as tar:  # type: ignore[call-overload]
            note = f"{nonce} layer {index}\n".encode()
            for name, length, data in (("bench-nonce", len(note), io.BytesIO(note)),
                                       (f"layer{index}.bin", size, Cut(usr, size))):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = length, 0
                tar.addfile(info, data)
        sink.close()
    digest = "sha256:" + sink.blob.hexdigest()
    tmp.rename(layout / "blobs" / "sha256" / digest[7:])
    return Descriptor(digest, sink.size, OCI_LAYER_GZIP), "sha256:" + sink.diff.hexdigest()


def _manifest(layout: Path, layers: list[tuple[Descriptor, str]], os_: str, arch: str,
              nonce: str) -> tuple[Descriptor, Descriptor]:
    config = _write_blob(layout, json.dumps({
        "architecture": arch, "os": os_, "created": "2026-12-01T00:00:00Z",
        "config": {"Labels": {"bench.nonce": nonce}},
        "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
    }, sort_keys=True).encode(), OCI_CONFIG)
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(),
                       "layers": [b.to_json() for b, _ in layers]}).encode()
    return config, _write_blob(layout, body, OCI_MANIFEST)


def write(kind: str, layout: Path, layers: int, layer_bytes: int) -> CopyImage:
    """Write the layout of one `kind` image (see the module's docstring) into `layout`."""
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}: {KINDS}")
    shutil.rmtree(layout, ignore_errors=True)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    nonce, image, descriptors = secrets.token_hex(8), CopyImage(kind, layout), []
    per = {"image": [layers], "index": [layers // 2, layers - layers // 2]}[kind]
    with usr_tar() as usr:
        for (os_, arch), n in zip(PLATFORMS, per, strict=False):  # one platform for an image
            made = [_layer(layout, usr, len(image.manifests) * per[0] + i, layer_bytes, nonce) for i in range(n)]
            config, manifest = _manifest(layout, made, os_, arch, nonce)
            image.blobs += [b for b, _ in made] + [config]
            image.manifests.append(manifest)
            descriptors.append(Descriptor.from_json({**manifest.to_json(), "platform": {"os": os_,
                                                                                      "architecture": arch}}))
    top = image.manifests[0]
    if kind == "index":
        top = _write_blob(layout, Index.new(descriptors).body, OCI_INDEX)
        image.manifests.append(top)
    image.digest = top.digest
    named = Descriptor.from_json({**top.to_json(), "annotations": {REF_NAME: LAYOUT_TAG}})
    (layout / "index.json").write_bytes(Index.new([named]).body)
    return image


def seed(image: CopyImage, dest: str, creds: str | None) -> float:
    """`skopeo copy --all` of the layout to `dest` (docker://host/repo:tag), as stored (no conversion); the seconds
    it took (untimed in the figures)."""
    cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
           *(["--dest-creds", creds] if creds else []), f"oci:{image.layout}:{LAYOUT_TAG}", dest]
    return step(cmd, SEED_TIMEOUT, env=no_docker_host())
