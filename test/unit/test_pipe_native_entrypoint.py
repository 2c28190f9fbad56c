"""The pipe's default path (PUSH_ENGINE=native) as a whole, in-process: a scripted daemon export in, an
in-memory registry client injected in place of the HTTP one. What goes up is checked byte for byte: the
layers gunzip to the daemon's, the config is the daemon's, the manifest names them. The same path
against real registries and a real daemon is in test/integration/test_native_push.py.
"""
import gzip
import io
import json
import logging
import os
import sys
import tarfile

import pytest

from pipe import daemon
from pipe import pipe as pipe_module
from pipe.errors import Kind, RegistryError, RegistryFailure
from pipe.oci import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, digest_of
from pipe.outputs import OUTPUT_FILE_NAME

TOKEN = "s3cr3t-T0ken-42"
ENV = {
    "IMAGE_NAME": "my-container-app:dev",
    "TAGS": "latest v1",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": TOKEN,
    "REGISTRY": "127.0.0.1:5077",
}
LAYERS = [os.urandom(300_000), os.urandom(50_000)]
DIFF_IDS = [digest_of(layer) for layer in LAYERS]
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": DIFF_IDS}}).encode()
IMAGE_ID = digest_of(CONFIG)


def export_tar() -> bytes:
    """The daemon's export as docker >= 25 writes it: an OCI layout, uncompressed layers by diff ID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in [(f"blobs/sha256/{d[7:]}", layer) for d, layer in zip(DIFF_IDS, LAYERS, strict=True)] + \
                [(f"blobs/sha256/{IMAGE_ID[7:]}", CONFIG), ("index.json", b"{}"), ("oci-layout", b"{}")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class ExportingDaemon:
    """A Docker client that holds one image and exports it."""

    def __init__(self):
        self.exports = 0
        daemon_client = self

        class Images:
            def get(self, reference):
                return type("Image", (), {"id": IMAGE_ID, "tags": [reference], "attrs": {
                    "Id": IMAGE_ID, "Os": "linux", "Architecture": "amd64", "Size": sum(map(len, LAYERS)),
                    "RootFS": {"Type": "layers", "Layers": DIFF_IDS}}})()

        class API:
            timeout = 30

            def get_image(self, image_id, chunk_size=None):
                assert image_id == IMAGE_ID
                daemon_client.exports += 1
                data = export_tar()
                return iter([data[i:i + 65536] for i in range(0, len(data), 65536)])

        self.images = Images()
        self.api = API()

    def ping(self):
        return True


class MemoryRegistry:
    """The registry client's operations over dicts, checking what a registry checks: chunk offsets,
    digests on finishing an upload, and that a manifest's blobs are there."""

    def __init__(self, settings=None, refuse_push=False):
        self.repository = "acme/my-container-app"
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}  # tag or digest -> (media type, body)
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[str] = []
        self.refuse_push = refuse_push
        self.closed = False
        self.sleep = lambda seconds: None

    def __call__(self, settings, pull_from, sleep):  # the pipe's registry_client factory
        assert (settings.registry, settings.username) == ("127.0.0.1:5077", "pipelines")
        assert settings.token.reveal() == TOKEN
        return self

    def connect(self):
        self.requests.append("GET /v2/")

    def check_push_access(self):
        self.requests.append("POST upload")
        if self.refuse_push:
            raise RegistryFailure(RegistryError(Kind.DENIED, "denied: requested access to the resource is denied",
                                                False), status=403)

    def has_blob(self, digest, repository=None):
        self.requests.append(f"HEAD {digest}")
        return len(self.blobs[digest]) if digest in self.blobs else None

    def get_blob(self, digest, repository=None, limit=1 << 24):
        return self.blobs.get(digest)

    def mount(self, digest, source):
        return False

    def get_manifest(self, reference, repository=None):
        return self.manifests.get(reference)

    def put_manifest(self, reference, media_type, body):
        doc = json.loads(body)
        for descriptor in [doc["config"], *doc["layers"]]:
            assert len(self.blobs[descriptor["digest"]]) == descriptor["size"], descriptor
        self.manifests[reference] = self.manifests[digest_of(body)] = (media_type, body)
        self.requests.append(f"PUT manifest {reference}")
        return digest_of(body)

    def start_upload(self):
        location = f"upload-{len(self.uploads)}"
        self.uploads[location] = bytearray()
        return location

    def patch(self, location, data, start):
        assert start == len(self.uploads[location]), "a chunk out of order"
        self.uploads[location] += data
        return location

    def upload_status(self, location):
        return len(self.uploads[location]), location

    def cancel(self, location):
        self.uploads.pop(location, None)

    def finish_upload(self, location, digest, body=b"", length=0):
        data = self.uploads.pop(location) + (body.read() if hasattr(body, "read") else body)
        assert digest_of(data) == digest, "the digest given does not match the bytes sent"
        self.blobs[digest] = bytes(data)
        self.requests.append(f"PUT blob {digest}")

    def upload_whole(self, data, digest):
        self.finish_upload(self.start_upload(), digest, data, len(data))

    def close(self):
        self.closed = True


@pytest.fixture
def output(monkeypatch):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.handlers = [handler]
    yield buffer
    root.handlers, _ = saved
    root.setLevel(saved[1])


def run_pipe(monkeypatch, registry, docker_client, env=None):
    buffer = logging.getLogger().handlers[0].stream
    monkeypatch.setattr(sys, "stdout", buffer)
    monkeypatch.setattr(sys, "stderr", buffer)
    monkeypatch.setattr(daemon.docker, "from_env", lambda **kwargs: docker_client)
    pipe = pipe_module.PushContainerImagePipe(env={**ENV, **(env or {})}, registry_client=registry)
    try:
        pipe.run()
        return 0
    except pipe_module.PipeFailure as exc:
        print(f"FAIL: {exc}")
        return 1


def test_the_default_engine_pushes_the_daemons_image_byte_for_byte(monkeypatch, output, tmp_path):
    registry, docker_client = MemoryRegistry(), ExportingDaemon()
    assert run_pipe(monkeypatch, registry, docker_client, {"BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path)}) == 0
    text = output.getvalue()
    assert docker_client.exports == 1 and registry.closed
    media_type, body = registry.manifests["latest"]
    assert media_type == DOCKER_MANIFEST and registry.manifests["v1"] == (media_type, body)
    manifest = json.loads(body)
    assert manifest["config"]["digest"] == IMAGE_ID and registry.blobs[IMAGE_ID] == CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * 2
    assert [gzip.decompress(registry.blobs[layer["digest"]]) for layer in manifest["layers"]] == LAYERS
    assert "Plan: 2 layers; 0 already in the registry, 0 mounted from other images, 2 to upload" in text
    data = json.loads((tmp_path / OUTPUT_FILE_NAME).read_text())
    assert (data["engine"], data["source"], data["platforms"]) == ("native", "daemon", ["linux/amd64"])
    assert (data["layers_uploaded"], data["layers_skipped"], data["layers_mounted"]) == (2, 0, 0)
    assert data["digest"] == digest_of(body) and data["tags"] == ["latest", "v1"]
    assert data["pushed_bytes"] == sum(len(registry.blobs[d["digest"]]) for d in manifest["layers"]) + len(CONFIG)
    assert TOKEN not in text


def test_a_repush_reads_nothing_and_keeps_the_digest(monkeypatch, output, tmp_path):
    registry = MemoryRegistry()
    assert run_pipe(monkeypatch, registry, ExportingDaemon()) == 0
    first = registry.manifests["latest"]
    again = ExportingDaemon()
    assert run_pipe(monkeypatch, registry, again, {"TAGS": "latest 2.0",
                                                   "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path)}) == 0
    assert again.exports == 0
    assert registry.manifests["2.0"] == first
    assert "no layer was read" in output.getvalue()
    data = json.loads((tmp_path / OUTPUT_FILE_NAME).read_text())
    assert (data["pushed_bytes"], data["layers_uploaded"], data["layers_skipped"]) == (0, 0, 2)


def test_no_push_access_fails_before_the_export(monkeypatch, output):
    registry, docker_client = MemoryRegistry(refuse_push=True), ExportingDaemon()
    assert run_pipe(monkeypatch, registry, docker_client) == 1
    text = output.getvalue()
    assert "lacks push permission" in text and "requested access to the resource is denied" in text
    assert docker_client.exports == 0 and registry.blobs == {} and registry.manifests == {}
    assert registry.closed
    assert TOKEN not in text
