"""The containerd image store's export read as an OCI layout (pipe/sources/export_files.py and
DaemonSource on that store), from export streams written the way Docker 26 writes them: the blobs named
by digest in the order of their names, so the index, manifests and configs stand among the layers, with
index.json, manifest.json and oci-layout last. No daemon: a fake client hands out the stream."""
from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pytest

from pipe.errors import PipeFailure
from pipe.oci import OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, digest_of
from pipe.sources.daemon_export import DaemonSource
from pipe.sources.export_files import ExportFiles

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def image(arch: str, layers: list[bytes]) -> tuple[bytes, dict[str, bytes]]:
    """A platform's manifest and its blobs (config, gzip layers)."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest_of(gzip.decompress(layer)) for layer in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": descriptor(CONFIG_TYPE, config),
                           "layers": [descriptor(OCI_LAYER_GZIP, layer) for layer in layers]}).encode()
    return manifest, {digest_of(config): config, **{digest_of(layer): layer for layer in layers}}


def export_tar(blobs: dict[str, bytes], top: bytes, leave_out: tuple[str, ...] = ()) -> bytes:
    """Docker 26's export: blobs/sha256/<hex> sorted by name, then index.json, manifest.json, oci-layout."""
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_INDEX if b'"manifests"' in top else OCI_MANIFEST, top,
                   annotations={"org.opencontainers.image.ref.name": "1"})]}).encode()
    members = sorted((f"blobs/sha256/{digest[7:]}", data) for digest, data in blobs.items() if digest not in leave_out)
    members += [("index.json", index), ("manifest.json", b"[]"), ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def layer(size: int) -> bytes:
    return gzip.compress(os.urandom(size), mtime=0)


def two_platforms() -> tuple[dict[str, bytes], bytes, list[str]]:
    """An index of amd64 and arm64, and an attestation for amd64: every blob, the index, the manifests."""
    amd64, amd64_blobs = image("amd64", [layer(200_000), layer(3000)])
    arm64, arm64_blobs = image("arm64", [layer(150_000)])
    statement = b'{"_type": "https://in-toto.io/Statement/v0.1"}'
    attestation = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                              "config": descriptor(CONFIG_TYPE, b"{}"),
                              "layers": [descriptor("application/vnd.in-toto+json", statement)]}).encode()
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        descriptor(OCI_MANIFEST, amd64, platform={"architecture": "amd64", "os": "linux"}),
        descriptor(OCI_MANIFEST, arm64, platform={"architecture": "arm64", "os": "linux"}),
        descriptor(OCI_MANIFEST, attestation, platform={"architecture": "unknown", "os": "unknown"},
                   annotations={"vnd.docker.reference.type": "attestation-manifest",
                                "vnd.docker.reference.digest": digest_of(amd64)})]}).encode()
    blobs = {**amd64_blobs, **arm64_blobs, digest_of(b"{}"): b"{}", digest_of(statement): statement,
             digest_of(amd64): amd64, digest_of(arm64): arm64, digest_of(attestation): attestation,
             digest_of(index): index}
    return blobs, index, [digest_of(amd64), digest_of(arm64), digest_of(attestation)]


def read_to_end(reader) -> bytes:
    parts = []
    while part := reader.read(65536):  # a member hands out what its chunk holds: read until empty
        parts.append(bytes(part))
    return b"".join(parts)


class Exports:
    """`open_export` for ExportFiles: counts the exports and the chunks each one handed out."""

    def __init__(self, data: bytes, chunk: int = 65536) -> None:
        self.data = data
        self.chunk = chunk
        self.handed: list[int] = []

    def __call__(self):
        self.handed.append(0)
        for start in range(0, len(self.data), self.chunk):
            self.handed[-1] += 1
            yield self.data[start:start + self.chunk]


class FakeDaemon:
    """A docker client holding one image of the containerd store: its ID is the top manifest's digest."""

    def __init__(self, image_id: str, export: bytes) -> None:
        self.exports = Exports(export)
        parent = self

        class Images:
            def get(self, reference):
                return type("Image", (), {"id": image_id, "tags": [reference], "attrs": {
                    "Id": image_id, "Os": "linux", "Architecture": "amd64", "Size": 1,
                    "RootFS": {"Type": "layers", "Layers": []}}})()

        class API:
            def get_image(self, wanted, chunk_size=None):
                assert wanted == image_id
                return parent.exports()

        self.images, self.api = Images(), API()


def test_the_listing_keeps_the_small_members_and_a_stream_stops_after_the_last_wanted():
    blobs, index, _ = two_platforms()
    data = export_tar(blobs, index)
    exports = Exports(data)
    files = ExportFiles(exports, "the Docker daemon's export of app:1")
    assert files.size("index.json") is not None and files.size("blobs/sha256/" + "0" * 64) is None
    for digest, blob in blobs.items():
        assert files.size(f"blobs/sha256/{digest[7:]}") == len(blob)
        assert files.read(f"blobs/sha256/{digest[7:]}") == blob
    assert len(exports.handed) == 1, "everything small was kept from the one listing pass"
    first = sorted(blobs)[0]
    streamed = [(name, read_to_end(reader)) for name, reader in files.stream([f"blobs/sha256/{first[7:]}"])]
    assert streamed == [(f"blobs/sha256/{first[7:]}", blobs[first])]
    assert len(exports.handed) == 2 and exports.handed[1] < exports.handed[0], "the second export was cut short"


def test_a_multi_platform_image_of_the_containerd_store_is_its_stored_blobs():
    blobs, index, (amd64, arm64, attestation) = two_platforms()
    daemon = FakeDaemon(digest_of(index), export_tar(blobs, index))
    source = DaemonSource(daemon, "app:1", containerd_store=True)
    found = source.image()
    assert found.index is not None and found.index.digest == digest_of(index) and found.index.body == index
    assert [p.platform for p in found.platforms] == ["linux/amd64", "linux/arm64", "unknown/unknown"]
    assert found.platform_names == ["linux/amd64", "linux/arm64"]
    assert [p.manifest.digest for p in found.platforms] == [amd64, arm64, attestation]
    assert all(layer.stored is not None for p in found.platforms for layer in p.layers), "pushed as stored"
    assert len(daemon.exports.handed) == 1
    sweep = found.open()  # the layer blobs, from a second export, in the order they stand in it
    keys = [entry.key for entry in sweep.layers()]
    assert keys == sorted(keys) and len(keys) == 4 and len(daemon.exports.handed) == 2


def test_platforms_keeps_some_and_the_index_is_rebuilt():
    blobs, index, (_, arm64, _) = two_platforms()
    source = DaemonSource(FakeDaemon(digest_of(index), export_tar(blobs, index)), "app:1", containerd_store=True,
                          platforms=("linux/arm64",))
    found = source.image()
    assert [p.manifest.digest for p in found.platforms] == [arm64]
    assert found.index is not None and found.index.digest != digest_of(index)
    assert "Left out by PLATFORMS: linux/amd64" in found.notes


def test_a_platform_without_content_is_named_and_a_missing_attestation_is_left_out():
    blobs, index, (amd64, arm64, attestation) = two_platforms()
    partial = export_tar(blobs, index, leave_out=(arm64, attestation))
    with pytest.raises(PipeFailure) as caught:
        DaemonSource(FakeDaemon(digest_of(index), partial), "app:1", containerd_store=True).image()
    message = str(caught.value)
    assert "holds no content for linux/arm64 of the multi-platform image app:1" in message
    assert "set PLATFORMS to linux/amd64 to push what is there" in message and "linux/amd64," not in message
    found = DaemonSource(FakeDaemon(digest_of(index), partial), "app:1", containerd_store=True,
                         platforms=("linux/amd64",)).image()
    assert [p.manifest.digest for p in found.platforms] == [amd64]
    assert any("Left out: the attestation manifests of linux/amd64" in note for note in found.notes)


def test_an_export_of_another_image_is_refused():
    blobs, index, _ = two_platforms()
    source = DaemonSource(FakeDaemon("sha256:" + "ab" * 32, export_tar(blobs, index)), "app:1", containerd_store=True)
    with pytest.raises(PipeFailure, match=f"holds {digest_of(index)}, not the image sha256:abab"):
        source.image()


def test_a_cut_export_is_the_pipes_message():
    blobs, index, _ = two_platforms()
    data = export_tar(blobs, index)
    with pytest.raises(PipeFailure, match="ended early or is damaged"):
        ExportFiles(Exports(data[:len(data) // 2]), "the Docker daemon's export of app:1")
    with pytest.raises(PipeFailure, match="is not a tar stream"):
        ExportFiles(Exports(b"not a tar" * 100), "the Docker daemon's export of app:1")
