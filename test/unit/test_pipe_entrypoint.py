"""The pipe as a whole (pipe/pipe.py): in-process against a fake Docker client, and as a script.

No Docker daemon is needed: the fake client replays recorded daemon answers (a push stream, an
export), and the native engine's registry client is an in-memory one. The real daemon and
registries are exercised by the integration tests.
"""
import gzip
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path

import pytest
from docker.errors import ImageNotFound

from harness import pipe_process
from pipe import pipe as pipe_module
from pipe.daemon import api as daemon
from pipe.errors import Kind, RegistryError, RegistryFailure
from pipe.oci import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, digest_of
from pipe.outputs import OUTPUT_FILE_NAME
from pipe.retry import RetryPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]

TOKEN = "s3cr3t-T0ken-42"
IMAGE_ID = "sha256:" + "11" * 32
# What the scripted daemon's push leaves in the registry: a config, a layer and the manifest naming them.
PUSHED_CONFIG = b'{"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}'
PUSHED_LAYER = b"\x1f\x8b a layer"
PUSHED_MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
    "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(PUSHED_CONFIG),
               "digest": digest_of(PUSHED_CONFIG)},
    "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": len(PUSHED_LAYER), "digest": digest_of(PUSHED_LAYER)}],
}).encode()
DIGEST = digest_of(PUSHED_MANIFEST)
ENV = {
    "IMAGE_NAME": "my-container-app:dev",
    "TAGS": "latest v1",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": TOKEN,
    "REGISTRY": "127.0.0.1:5077",
    # Most tests here drive the daemon's push through a scripted client; the native ones set
    # NATIVE_ENV (below), and test/integration/test_native_push.py runs it against real registries.
    "PUSH_ENGINE": "docker",
}


def ok_stream(tag, uploaded=True):
    layer = [{"status": "Pushing", "progressDetail": {"current": 100, "total": 100}, "id": "aaa"},
             {"status": "Pushed", "progressDetail": {}, "id": "aaa"}] if uploaded else \
        [{"status": "Layer already exists", "progressDetail": {}, "id": "aaa"}]
    return [{"status": "The push refers to repository [127.0.0.1:5077/acme/my-container-app]"},
            {"status": "Preparing", "progressDetail": {}, "id": "aaa"}, *layer,
            {"progressDetail": {}, "aux": {"Tag": tag, "Digest": DIGEST, "Size": 500}}]


def error_stream(message):
    return [{"status": "The push refers to repository [127.0.0.1:5077/acme/my-container-app]"},
            {"errorDetail": {"message": message}, "error": message}]


class FakeImage:
    id = IMAGE_ID
    tags = ["my-container-app:dev"]
    attrs = {"Id": IMAGE_ID, "Os": "linux", "Architecture": "amd64"}


class FakeImages:
    def __init__(self, present):
        self.present = present

    def get(self, reference):
        if not self.present:
            raise ImageNotFound(f"No such image: {reference}")
        return FakeImage()


class FakeAPI:
    api_version = "1.41"

    def __init__(self, streams, local_tags, registry):
        self.timeout = 30
        self.registry = registry  # where a push that reports a digest leaves its blobs and manifest
        self.streams = list(streams)
        self.local_tags = dict(local_tags)
        self.pushed = []
        self.auth_configs = []

    def inspect_image(self, reference):
        if reference not in self.local_tags:
            raise ImageNotFound(reference)
        return {"Id": self.local_tags[reference]}

    def tag(self, image, repository, tag, force=False):
        self.local_tags[f"{repository}:{tag}"] = image
        return True

    def remove_image(self, reference, force=False, noprune=False):
        del self.local_tags[reference]

    def push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        assert stream and decode
        self.auth_configs.append(auth_config)
        self.pushed.append(f"{repository}:{tag}")
        stream = self.streams.pop(0)
        if any("aux" in record for record in stream):
            self.registry.blobs.update({digest_of(PUSHED_CONFIG): PUSHED_CONFIG, digest_of(PUSHED_LAYER): PUSHED_LAYER})
            self.registry.manifests[tag] = self.registry.manifests[DIGEST] = (DOCKER_MANIFEST, PUSHED_MANIFEST)
        return iter(stream)


def daemon_info(containerd_store=False):
    status = ([["driver-type", "io.containerd.snapshotter.v1"]] if containerd_store
              else [["Backing Filesystem", "extfs"]])
    return {"ServerVersion": "20.10.24", "DriverStatus": status}


class FakeClient:
    """A scripted daemon: each push plays the next stream; the one that reports a digest leaves the image
    in the registry client the pipe is given (`registry`), as a real daemon's push would."""

    def __init__(self, streams=(), image_present=True, local_tags=None, registry=None, containerd_store=False):
        self.registry = registry or MemoryRegistry()
        self.api = FakeAPI(streams, local_tags or {"my-container-app:dev": IMAGE_ID}, self.registry)
        self.images = FakeImages(image_present)
        self.containerd_store = containerd_store

    def ping(self):
        return True

    def info(self):
        return daemon_info(self.containerd_store)


@pytest.fixture
def output(monkeypatch):
    """Route the root logger to a buffer for the test, restoring handlers afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.handlers = [handler]
    yield buffer
    root.handlers, _ = saved
    root.setLevel(saved[1])


def run_pipe(monkeypatch, client, env=None, sleeps=None, **pipe_options):
    # Here, not in the fixture: pytest re-assigns sys.stdout between a test's setup and its call.
    buffer = logging.getLogger().handlers[0].stream
    monkeypatch.setattr(sys, "stdout", buffer)
    monkeypatch.setattr(sys, "stderr", buffer)
    monkeypatch.setattr(daemon.docker, "from_env", lambda **kwargs: client)
    sleeps = [] if sleeps is None else sleeps
    # The daemon's push (PUSH_ENGINE=docker) logs in, asks what the tags held and copies manifests with it.
    pipe_options.setdefault("registry_client", getattr(client, "registry", None) or MemoryRegistry())
    pipe = pipe_module.PushContainerImagePipe(env={**ENV, **(env or {})}, retry_policy=RetryPolicy(),
                                              sleep=sleeps.append, **pipe_options)
    try:
        pipe.run()
        return 0
    except pipe_module.PipeFailure as exc:
        print(f"FAIL: {exc}")
        return 1


def run_native(monkeypatch, registry, docker_client, env=None):
    return run_pipe(monkeypatch, docker_client, {**NATIVE_ENV, **(env or {})}, registry_client=registry)


def test_pushes_every_tag_writes_output_and_removes_temporary_tags(monkeypatch, output, tmp_path):
    client = FakeClient([ok_stream("latest")])
    assert run_pipe(monkeypatch, client, {"BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path / "out")}) == 0
    text = output.getvalue()
    # One daemon push, for the first tag; the other tag is the same manifest, copied by the pipe.
    assert client.api.pushed == ["127.0.0.1:5077/acme/my-container-app:latest"]
    assert client.registry.manifests["v1"] == (DOCKER_MANIFEST, PUSHED_MANIFEST)
    assert client.registry.requests[:2] == ["GET /v2/", "POST upload"], "login and push access come first"
    assert client.api.auth_configs[0] == {"username": "pipelines", "password": TOKEN}
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}  # only the source image is left
    assert "The Docker daemon pushed 127.0.0.1:5077/acme/my-container-app:latest (1 layer uploaded (100 B)" in text
    assert f"Pushed 127.0.0.1:5077/acme/my-container-app:latest digest: {DIGEST}" in text
    assert f"Pushed 127.0.0.1:5077/acme/my-container-app:v1 digest: {DIGEST}" in text
    assert "100 B uploaded" in text
    data = json.loads((tmp_path / "out" / OUTPUT_FILE_NAME).read_text())
    assert data["references"] == ["127.0.0.1:5077/acme/my-container-app:latest",
                                  "127.0.0.1:5077/acme/my-container-app:v1"]
    assert data["reference_by_digest"] == f"127.0.0.1:5077/acme/my-container-app@{DIGEST}"
    assert (data["digest"], data["tags"], data["pushed_bytes"]) == (DIGEST, ["latest", "v1"], 100)
    assert (data["engine"], data["platforms"], data["index_digest"]) == ("docker", ["linux/amd64"], None)
    assert TOKEN not in text and TOKEN not in json.dumps(data)


def test_auto_pushes_with_the_daemon_on_the_containerd_store(monkeypatch, output):
    client = FakeClient([ok_stream("latest")], containerd_store=True)
    assert run_pipe(monkeypatch, client, {"PUSH_ENGINE": "auto"}) == 0
    text = output.getvalue()
    assert "Docker daemon: Docker 20.10.24 (API 1.41), the containerd image store" in text
    assert "PUSH_ENGINE auto: the Docker daemon's push (the containerd image store keeps each layer" in text
    assert client.api.pushed == ["127.0.0.1:5077/acme/my-container-app:latest"]
    assert client.registry.manifests["v1"] == (DOCKER_MANIFEST, PUSHED_MANIFEST)


def test_on_the_containerd_store_protect_tags_and_dry_run_know_the_digest_exactly(monkeypatch, output):
    # There the image ID is the digest the daemon's push gives the tags: both decide before any push.
    client = FakeClient(containerd_store=True)
    client.registry.manifests["1.0.0"] = (DOCKER_MANIFEST, PUSHED_MANIFEST)
    env = {"PUSH_ENGINE": "auto", "TAGS": "1.0.0 latest", "PROTECT_TAGS": "*.*.*"}
    assert run_pipe(monkeypatch, client, env) == 1
    assert f"1.0.0 holds {DIGEST}, and this push would give it {IMAGE_ID}" in output.getvalue()
    assert client.api.pushed == []
    assert run_pipe(monkeypatch, client, {**env, "PROTECT_TAGS": "", "DRY_RUN": "true"}) == 0
    text = output.getvalue()
    assert f"Dry run: the tags would point at {IMAGE_ID}" in text and f"Dry run: tag 1.0.0: moves from {DIGEST}" in text
    assert "Dry run: layers: the Docker daemon's push sends those the registry lacks" in text
    assert client.api.pushed == [] and "latest" not in client.registry.manifests


def test_repush_says_nothing_new(monkeypatch, output):
    client = FakeClient([ok_stream("latest", False)])
    assert run_pipe(monkeypatch, client) == 0
    assert "nothing new uploaded, every layer was already in the registry" in output.getvalue()


def test_permanent_push_error_fails_once_and_cleans_up(monkeypatch, output):
    client = FakeClient([error_stream("denied: push on acme/my-container-app needs write permission")])
    sleeps = []
    assert run_pipe(monkeypatch, client, sleeps=sleeps) == 1
    text = output.getvalue()
    assert "FAIL: Push of 127.0.0.1:5077/acme/my-container-app:latest denied: the token of user pipelines lacks push " \
           "permission" in text
    assert sleeps == [] and len(client.api.pushed) == 1
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_transient_push_error_is_retried(monkeypatch, output):
    client = FakeClient([error_stream("received unexpected HTTP status: 502 Bad Gateway"), ok_stream("latest")])
    sleeps = []
    assert run_pipe(monkeypatch, client, sleeps=sleeps) == 0
    assert sleeps == [2.0]
    assert "retrying in 2 s (attempt 2 of 3)" in output.getvalue()


def test_transient_errors_give_up_after_three_attempts(monkeypatch, output):
    client = FakeClient([error_stream("write: connection reset by peer")] * 3)
    assert run_pipe(monkeypatch, client) == 1
    assert "[gave up after 3 attempts]" in output.getvalue()
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_login_refused_fails_before_tagging(monkeypatch, output):
    client = FakeClient(registry=MemoryRegistry(refuse_login=True))
    assert run_pipe(monkeypatch, client) == 1
    assert ("FAIL: Login to 127.0.0.1:5077 refused for user pipelines: check BITBUCKET_PACKAGES_USERNAME / "
            "BITBUCKET_PACKAGES_TOKEN") in output.getvalue()
    assert client.api.pushed == [] and client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_missing_image(monkeypatch, output):
    assert run_pipe(monkeypatch, FakeClient(image_present=False)) == 1
    assert "FAIL: Image my-container-app:dev not found in the Docker daemon: build it earlier in the same step with " \
           "`docker build -t my-container-app:dev .`" in output.getvalue()


def test_existing_user_tags_are_left_or_restored(monkeypatch, output):
    other = "sha256:" + "22" * 32
    tags = {"my-container-app:dev": IMAGE_ID,
            "127.0.0.1:5077/acme/my-container-app:latest": IMAGE_ID,  # already the image: left alone
            "127.0.0.1:5077/acme/my-container-app:v1": other}        # another image: moved back afterwards
    client = FakeClient([ok_stream("latest")], local_tags=tags)
    assert run_pipe(monkeypatch, client) == 0
    assert client.api.local_tags == tags


def test_token_is_scrubbed_even_when_the_registry_echoes_it(monkeypatch, output):
    client = FakeClient([error_stream(f"manifest invalid: weird registry echoing {TOKEN}")])
    assert run_pipe(monkeypatch, client, {"DEBUG": "true"}) == 1
    text = output.getvalue()
    assert "weird registry echoing ********" in text
    assert TOKEN not in text


def script(env, timeout=60):
    """`python -m pipe` as a process, through the one launcher, with a bare PATH and HOME beside `env`."""
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return pipe_process.run_pipe(env, timeout=timeout, base_env=base)


def test_script_reports_all_invalid_variables_without_traceback():
    result = script({"IMAGE_NAME": "Bad Name", "TAGS": "ok a,b", "BITBUCKET_PACKAGES_TOKEN": TOKEN, "DEBUG": "true",
                     "REGISTRY": "https://crg.apkg.io"})
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Invalid pipe variables (5 problems):" in out
    assert "IMAGE_NAME 'Bad Name' is not a valid image name" in out
    assert "TAGS entry 'a,b' is not a valid tag" in out
    assert "WORKSPACE is missing: set WORKSPACE to your workspace slug or run inside Bitbucket Pipelines" in out
    assert "BITBUCKET_PACKAGES_USERNAME is missing" in out
    assert "REGISTRY 'https://crg.apkg.io' is not valid" in out
    assert "Traceback" not in out and TOKEN not in out


def test_script_without_a_daemon_says_add_the_docker_service():
    result = script({**ENV, "DOCKER_HOST": "tcp://127.0.0.1:9", "DEBUG": "true"})
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Cannot connect to the Docker daemon at DOCKER_HOST=tcp://127.0.0.1:9: add `services: [docker]`" in out
    assert TOKEN not in out


# -- the default engine (PUSH_ENGINE=native), with an in-memory registry client injected ---------
# What goes up is checked byte for byte: the layers gunzip to the daemon's, the config is the
# daemon's, the manifest names them.
LAYERS = [os.urandom(300_000), os.urandom(50_000)]
DIFF_IDS = [digest_of(layer) for layer in LAYERS]
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": DIFF_IDS}}).encode()
EXPORTED_ID = digest_of(CONFIG)


def export_tar() -> bytes:
    """The daemon's export as docker >= 25 writes it: an OCI layout, uncompressed layers by diff ID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in [(f"blobs/sha256/{d[7:]}", layer) for d, layer in zip(DIFF_IDS, LAYERS, strict=True)] + \
                [(f"blobs/sha256/{EXPORTED_ID[7:]}", CONFIG), ("index.json", b"{}"), ("oci-layout", b"{}")]:
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
                return type("Image", (), {"id": EXPORTED_ID, "tags": [reference], "attrs": {
                    "Id": EXPORTED_ID, "Os": "linux", "Architecture": "amd64", "Size": sum(map(len, LAYERS)),
                    "RootFS": {"Type": "layers", "Layers": DIFF_IDS}}})()

        class API:
            timeout = 30
            api_version = "1.41"

            def get_image(self, image_id, chunk_size=None):
                assert image_id == EXPORTED_ID
                daemon_client.exports += 1
                data = export_tar()
                return iter([data[i:i + 65536] for i in range(0, len(data), 65536)])

        self.images = Images()
        self.api = API()

    def ping(self):
        return True

    def info(self):
        return daemon_info()


NATIVE_ENV = {"PUSH_ENGINE": "native"}


class MemoryRegistry:
    """The registry client's operations over dicts, checking what a registry checks: chunk offsets,
    digests on finishing an upload, and that a manifest's blobs are there."""

    def __init__(self, settings=None, refuse_push=False, refuse_login=False):
        self.repository = "acme/my-container-app"
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}  # tag or digest -> (media type, body)
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[str] = []
        self.refuse_push = refuse_push
        self.refuse_login = refuse_login
        self.closed = False
        self.sleep = lambda seconds: None

    def __call__(self, settings, pull_from, sleep):  # the pipe's registry_client factory
        assert (settings.registry, settings.username) == ("127.0.0.1:5077", "pipelines")
        assert settings.token.reveal() == TOKEN
        return self

    def connect(self):
        self.requests.append("GET /v2/")
        if self.refuse_login:
            raise RegistryFailure(RegistryError(Kind.UNAUTHORIZED, "unauthorized: authentication required", False),
                                  status=401)

    def check_push_access(self):
        self.requests.append("POST upload")
        if self.refuse_push:
            raise RegistryFailure(RegistryError(Kind.DENIED, "denied: requested access to the resource is denied",
                                                False), status=403)

    def has_blob(self, digest, repository=None):
        self.requests.append(f"HEAD {digest}")
        return len(self.blobs[digest]) if digest in self.blobs else None

    def has_blobs(self, digests):
        return {digest: self.has_blob(digest) for digest in dict.fromkeys(digests)}

    def get_blob(self, digest, repository=None, limit=1 << 24):
        return self.blobs.get(digest)

    def mount(self, digest, source):
        return False

    def get_manifest(self, reference, repository=None):
        return self.manifests.get(reference)

    def head_manifest(self, reference):
        self.requests.append(f"HEAD manifest {reference}")
        found = self.manifests.get(reference)
        return None if found is None else digest_of(found[1])

    def granted_push(self):
        return not self.refuse_push

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


def test_the_default_engine_pushes_the_daemons_image_byte_for_byte(monkeypatch, output, tmp_path):
    registry, docker_client = MemoryRegistry(), ExportingDaemon()
    assert run_native(monkeypatch, registry, docker_client, {"BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path)}) == 0
    text = output.getvalue()
    assert docker_client.exports == 1 and registry.closed
    media_type, body = registry.manifests["latest"]
    assert media_type == DOCKER_MANIFEST and registry.manifests["v1"] == (media_type, body)
    manifest = json.loads(body)
    assert manifest["config"]["digest"] == EXPORTED_ID and registry.blobs[EXPORTED_ID] == CONFIG
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
    assert run_native(monkeypatch, registry, ExportingDaemon()) == 0
    first = registry.manifests["latest"]
    again = ExportingDaemon()
    assert run_native(monkeypatch, registry, again, {"TAGS": "latest 2.0",
                                                   "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path)}) == 0
    assert again.exports == 0
    assert registry.manifests["2.0"] == first
    assert "no layer was read" in output.getvalue()
    data = json.loads((tmp_path / OUTPUT_FILE_NAME).read_text())
    assert (data["pushed_bytes"], data["layers_uploaded"], data["layers_skipped"]) == (0, 0, 2)


def test_no_push_access_fails_before_the_export(monkeypatch, output):
    registry, docker_client = MemoryRegistry(refuse_push=True), ExportingDaemon()
    assert run_native(monkeypatch, registry, docker_client) == 1
    text = output.getvalue()
    assert "lacks push permission" in text and "requested access to the resource is denied" in text
    assert docker_client.exports == 0 and registry.blobs == {} and registry.manifests == {}
    assert registry.closed
    assert TOKEN not in text


def test_a_dry_run_reads_no_layer_and_writes_nothing(monkeypatch, output, tmp_path):
    registry, docker_client = MemoryRegistry(), ExportingDaemon()
    env = {"BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path), "DRY_RUN": "true"}
    assert run_native(monkeypatch, registry, docker_client, env) == 0
    text = output.getvalue()
    assert docker_client.exports == 0 and not registry.uploads and not registry.manifests
    assert [r for r in registry.requests if r.startswith(("POST", "PUT"))] == []
    assert "Dry run: layers: 2 layers to upload, 0 to mount, 0 already in the registry" in text
    assert "Dry run: tag latest: new" in text and "Dry run: tag v1: new" in text
    assert not (tmp_path / OUTPUT_FILE_NAME).exists()
    assert TOKEN not in text


def test_protect_tags_refuses_before_the_export_and_a_rerun_of_the_same_image_passes(monkeypatch, output, tmp_path):
    registry = MemoryRegistry()
    assert run_native(monkeypatch, registry, ExportingDaemon(), {"TAGS": "latest"}) == 0
    pushed = registry.manifests["latest"]
    held = digest_of(pushed[1])
    other = ("application/json", b'{"config": {"digest": "sha256:another-image"}}')
    registry.manifests["1.0.0"] = registry.manifests[digest_of(other[1])] = other
    docker_client = ExportingDaemon()
    assert run_native(monkeypatch, registry, docker_client, {"TAGS": "1.0.0 latest", "PROTECT_TAGS": "*.*.*"}) == 1
    assert f"1.0.0 holds {digest_of(other[1])}, and this push would give it {held}" in output.getvalue()
    assert docker_client.exports == 0 and registry.manifests["1.0.0"] == other  # not one layer read

    del registry.manifests["latest"]  # now the plan cannot tell the digest: a new manifest of this image
    assert run_native(monkeypatch, registry, docker_client, {"TAGS": "1.0.0 latest", "PROTECT_TAGS": "*.*.*"}) == 1
    assert f"would give it a new manifest of image {EXPORTED_ID}" in output.getvalue()
    assert docker_client.exports == 0 and "latest" not in registry.manifests

    registry.manifests["1.0.0"] = pushed  # the tag on this very image: re-running is not a change
    env = {"TAGS": "1.0.0 latest", "PROTECT_TAGS": "*.*.*", "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path)}
    assert run_native(monkeypatch, registry, ExportingDaemon(), env) == 0
    data = json.loads((tmp_path / OUTPUT_FILE_NAME).read_text())
    assert data["previous_digests"] == {"1.0.0": held, "latest": None} and data["digest"] == held
