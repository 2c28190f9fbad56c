"""Raw OCI Distribution API calls for the registry's tests, and docker and skopeo CLI helpers.

Raw calls use `requests` with a bearer token from the registry's token endpoint, so the tests
see exactly the status codes, headers and bodies a client would.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field

import requests

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
TIMEOUT = 60


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_codes(response: requests.Response) -> list[str]:
    """The OCI error codes of an error answer (empty when the body is not the OCI form)."""
    try:
        return [e["code"] for e in response.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


def error_message(response: requests.Response) -> str:
    try:
        return " ".join(e.get("message", "") for e in response.json()["errors"])
    except (ValueError, KeyError, TypeError):
        return ""


@dataclass
class Client:
    """One member talking to one repository (`<workspace>/<package>`) of a running registry."""

    registry: RegistryProcess
    repository: str
    user: str = "pipelines"
    actions: str = "pull,push"
    secret: str | None = None
    _token: str | None = field(default=None, repr=False)

    @property
    def base(self) -> str:
        return f"{self.registry.url}/v2/{self.repository}"

    def token(self) -> str:
        if self._token is None:
            r = requests.get(
                f"{self.registry.url}/token",
                params={"scope": f"repository:{self.repository}:{self.actions}", "service": "crg.apkg.io"},
                auth=(self.user, self.secret or TOKENS[self.user]), timeout=TIMEOUT,
            )
            r.raise_for_status()
            self._token = r.json()["token"]
        return self._token

    def request(self, method: str, url: str, headers: dict | None = None, **kwargs) -> requests.Response:
        if not url.startswith("http"):
            url = self.registry.url + url if url.startswith("/") else f"{self.base}/{url}"
        headers = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        return requests.request(method, url, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs)

    # -- blobs ----------------------------------------------------------------------------
    def start_upload(self) -> str:
        r = self.request("POST", "blobs/uploads/")
        assert r.status_code == 202, (r.status_code, r.text)
        return r.headers["Location"]

    def push_blob(self, data: bytes) -> str:
        """POST then PUT ?digest= with the whole body: the simplest complete upload."""
        digest = digest_of(data)
        location = self.start_upload()
        r = self.request("PUT", location, params={"digest": digest}, data=data,
                         headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, (r.status_code, r.text)
        assert r.headers["Docker-Content-Digest"] == digest
        return digest

    def head_blob(self, digest: str) -> requests.Response:
        return self.request("HEAD", f"blobs/{digest}")

    def get_blob(self, digest: str, **kwargs) -> requests.Response:
        return self.request("GET", f"blobs/{digest}", **kwargs)

    # -- manifests ------------------------------------------------------------------------
    def put_manifest(self, reference: str, body: bytes, media_type: str | None) -> requests.Response:
        headers = {"Content-Type": media_type} if media_type else {}
        return self.request("PUT", f"manifests/{reference}", data=body, headers=headers)

    def get_manifest(self, reference: str, method: str = "GET") -> requests.Response:
        accept = ", ".join([DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX])
        return self.request(method, f"manifests/{reference}", headers={"Accept": accept})

    def push_image(self, tag: str | None, layers: list[bytes], media_type: str = DOCKER_MANIFEST,
                   platform: tuple[str, str] = ("linux", "amd64")) -> tuple[str, bytes]:
        """Upload a config and the layers, then the manifest; return (digest, manifest bytes)."""
        body = image_manifest(self, layers, media_type, platform)
        r = self.put_manifest(tag or digest_of(body), body, media_type)
        assert r.status_code == 201, (r.status_code, r.text)
        return r.headers["Docker-Content-Digest"], body


def image_manifest(client: Client, layers: list[bytes], media_type: str = DOCKER_MANIFEST,
                   platform: tuple[str, str] = ("linux", "amd64")) -> bytes:
    """Push the blobs of an image and return the bytes of its manifest (not pushed)."""
    oci = media_type == OCI_MANIFEST
    config = json.dumps({
        "architecture": platform[1], "os": platform[0],
        "rootfs": {"type": "layers", "diff_ids": [digest_of(layer) for layer in layers]},
        "config": {}, "nonce": os.urandom(8).hex(),
    }).encode()
    config_digest = client.push_blob(config)
    descriptors = [
        {"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": len(layer), "digest": client.push_blob(layer)}
        for layer in layers
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config), "digest": config_digest},
        "layers": descriptors,
    }
    # Pretty-printed with a trailing newline: the registry must return these exact bytes.
    return (json.dumps(manifest, indent=3) + "\n").encode()


def index_manifest(media_type: str, children: list[tuple[str, int, str, tuple[str, str]]]) -> bytes:
    """An index / manifest list of (digest, size, media type, (os, architecture)) children."""
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": mt, "digest": d, "size": s, "platform": {"os": os_, "architecture": arch}}
            for d, s, mt, (os_, arch) in children
        ],
    }, indent=2).encode()


# -- docker and skopeo CLI ------------------------------------------------------------------
def docker(*args: str, timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input)


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)


def docker_login(registry: RegistryProcess, user: str) -> None:
    r = docker("login", registry.host, "-u", user, "--password-stdin", input=TOKENS[user], timeout=60)
    assert r.returncode == 0, r.stderr


def docker_logout(registry: RegistryProcess) -> None:
    docker("logout", registry.host, timeout=60)


def image_id(ref: str) -> str:
    r = docker("image", "inspect", "--format", "{{.Id}}", ref, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def repo_digest(ref: str, repository: str) -> str:
    """The registry digest docker recorded for `ref` in `repository` (after a push or pull)."""
    r = docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref, timeout=60)
    assert r.returncode == 0, r.stderr
    for entry in json.loads(r.stdout):
        name, _, digest = entry.partition("@")
        if name == repository:
            return digest
    raise AssertionError(f"{ref} has no digest for {repository}: {r.stdout}")


def verify_tagged_image(client: Client, tag: str) -> int:
    """GET the manifest by tag and every blob it references; check each digest. Returns blob count."""
    r = client.get_manifest(tag)
    assert r.status_code == 200, (tag, r.status_code, r.text)
    assert digest_of(r.content) == r.headers["Docker-Content-Digest"]
    doc = r.json()
    descriptors = [doc["config"], *doc["layers"]]
    for d in descriptors:
        blob = client.get_blob(d["digest"])
        assert blob.status_code == 200, (tag, d["digest"], blob.status_code, blob.text)
        assert len(blob.content) == d["size"], (tag, d["digest"])
        assert digest_of(blob.content) == d["digest"], (tag, d["digest"])
    return len(descriptors)


def docker_push(local: str, remote: str, refs: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Tag `local` as `remote` and push it with the docker CLI (through the real daemon)."""
    r = docker("tag", local, remote, timeout=60)
    assert r.returncode == 0, r.stderr
    refs.append(remote)
    return docker("push", remote, timeout=timeout)
