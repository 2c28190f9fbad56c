"""The ORAS CLI (Debian 13's oras 1.2, the `oras-go` client) against the emulator over verified TLS.

ORAS pushes and pulls artifacts that are not container images (files as layers, an artifact type), copies
them with their referrers, and attaches referrers (signatures, SBOMs) to a subject, which it lists with
`discover`. The emulator has no referrers API: its 404 for `/v2/<name>/referrers/<digest>` must not be
NAME_UNKNOWN, so that ORAS falls back to the referrers tag schema (an index tagged `sha256-<hex>`).
ORAS logs in with pipeline credentials, as a pipeline step would, and trusts the throwaway CA only
through `--ca-file`: without it the handshake fails, so every success here went over verified TLS.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from harness.accounts import default_config
from harness.engines import debian13
from harness.registry_process import RegistryProcess
from test.helpers.certificates import make_ca_and_server_cert
from test.helpers.oci_client import OCI_INDEX, OCI_MANIFEST, Client, digest_of, error_codes

APP = "acme/my-container-app"  # linked to web-app, as is other-app
OTHER = "acme/other-app"
SIGNATURE = "application/vnd.example.signature.v1"
SBOM = "application/vnd.example.sbom.v1"


@dataclass
class Oras:
    registry: RegistryProcess
    ca: Path
    auth: Path  # ORAS's registry config, written by `oras login`
    home: Path
    binary: str

    def run(self, *args: str, ca: bool = True, input: str | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """One command against one registry: ORAS's credentials, and the CA unless `ca` is false."""
        trust = ["--ca-file", str(self.ca)] if ca else []
        return self._oras([*args, "--registry-config", str(self.auth), *trust], input, cwd, timeout)

    def cp(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """`oras cp`, which takes the credentials and the CA of each side apart."""
        sides = [f"--{side}-{flag}={path}" for side in ("from", "to")
                 for flag, path in (("registry-config", self.auth), ("ca-file", self.ca))]
        return self._oras(["cp", *args, *sides], None, None, timeout)

    def _oras(self, args: list[str], input: str | None, cwd: Path | None,
              timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], input=input, capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.home, env={**os.environ, "HOME": str(self.home)})

    def json(self, *args: str, cwd: Path | None = None) -> dict:
        r = self.run(*args, "--format", "json", cwd=cwd)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def ref(self, repository: str, tag: str) -> str:
        return f"{self.registry.host}/{repository}:{tag}"


@pytest.fixture(scope="module")
def oras(tmp_path_factory) -> Oras:
    base = tmp_path_factory.mktemp("oras")
    ca, cert, key = make_ca_and_server_cert(base)
    config = default_config()
    # Each attach pushes an untagged manifest before the index that references it: the default grace
    # period, not the tests' zero, keeps a collection from freeing it in between.
    config["gc"]["grace_seconds"] = 900
    registry = RegistryProcess(base / "registry", config,
                               extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
    home = base / "home"
    home.mkdir()
    try:
        client = Oras(registry, ca, base / "oras-auth.json", home, str(debian13().oras))
        user, secret = registry.pipeline_credentials("web-app")
        login = client.run("login", registry.host, "-u", user, "--password-stdin", input=secret)
        assert login.returncode == 0, login.stderr
        yield client
    finally:
        registry.stop()


@pytest.fixture
def trusting(oras, monkeypatch):
    """Let this test's raw HTTP client (requests) trust the throwaway CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(oras.ca))


def files(directory: Path, **contents: bytes) -> dict[str, bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (directory / name).write_bytes(data)
    return contents


def push_artifact(oras: Oras, directory: Path, tag: str) -> tuple[str, dict[str, bytes]]:
    """Two files pushed as an artifact under APP:tag; its manifest digest and the files."""
    pushed = files(directory, **{"notes.txt": f"notes {uuid.uuid4()}\n".encode(), "data.bin": os.urandom(70_000)})
    out = oras.json("push", oras.ref(APP, tag), "notes.txt:text/plain", "data.bin",
                    "--artifact-type", "application/vnd.example.bundle.v1", cwd=directory)
    return out["digest"], pushed


def tag_digest(registry: RegistryProcess, repository: str, tag: str) -> str:
    package = repository.split("/", 1)[1]
    r = registry.api("GET", f"/workspaces/acme/packages/{package}/tags/{tag}")
    assert r.status_code == 200, r.text
    return r.json()["digest"]


def referrers_tag(digest: str) -> str:
    return digest.replace(":", "-")


def test_oras_refuses_the_registry_without_its_ca(oras, tmp_path):
    r = oras.run("manifest", "fetch", oras.ref(APP, "anything"), ca=False)
    assert r.returncode != 0 and "certificate" in r.stderr, r.stderr


def test_push_then_pull_gives_back_the_same_files_and_digest(oras, tmp_path, trusting):
    digest, pushed = push_artifact(oras, tmp_path / "push", "oras-v1")
    assert tag_digest(oras.registry, APP, "oras-v1") == digest
    manifest = Client(oras.registry, APP, user="boss", actions="pull").get_manifest("oras-v1")
    assert manifest.status_code == 200 and digest_of(manifest.content) == digest
    body = manifest.json()
    assert body["mediaType"] == OCI_MANIFEST and body["artifactType"] == "application/vnd.example.bundle.v1"
    layers = {layer["annotations"]["org.opencontainers.image.title"]: layer for layer in body["layers"]}
    assert {name: layer["digest"] for name, layer in layers.items()} == \
        {name: digest_of(data) for name, data in pushed.items()}
    assert layers["notes.txt"]["mediaType"] == "text/plain"

    out = tmp_path / "pulled"
    pulled = oras.json("pull", oras.ref(APP, "oras-v1"), "-o", str(out))
    assert pulled["reference"].endswith(f"@{digest}")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == pushed


def test_attach_then_discover_lists_each_referrer_through_the_tag_schema(oras, tmp_path, trusting):
    subject, _ = push_artifact(oras, tmp_path / "subject", "oras-signed")
    evidence = files(tmp_path / "evidence", **{"sig.json": b'{"signed": true}', "sbom.json": b'{"packages": []}'})
    attached = {
        kind: oras.json("attach", oras.ref(APP, "oras-signed"), name, "--artifact-type", kind,
                        cwd=tmp_path / "evidence")["digest"]
        for kind, name in ((SIGNATURE, "sig.json"), (SBOM, "sbom.json"))
    }

    found = oras.json("discover", oras.ref(APP, "oras-signed"))["manifests"]
    assert {m["artifactType"]: m["digest"] for m in found} == attached
    only = oras.json("discover", oras.ref(APP, "oras-signed"), "--artifact-type", SBOM)["manifests"]
    assert [m["digest"] for m in only] == [attached[SBOM]]
    # Each attached manifest names the subject, and the referrers index under the tag schema lists both.
    client = Client(oras.registry, APP, user="boss", actions="pull")
    for digest in attached.values():
        assert client.get_manifest(digest).json()["subject"]["digest"] == subject
    index = client.get_manifest(referrers_tag(subject))
    assert index.status_code == 200 and index.headers["Content-Type"] == OCI_INDEX
    assert {m["digest"] for m in index.json()["manifests"]} == set(attached.values())
    # The evidence pulls back as attached.
    pulled = oras.json("pull", f"{oras.registry.host}/{APP}@{attached[SIGNATURE]}", "-o", str(tmp_path / "sig"))
    assert pulled["reference"].endswith(attached[SIGNATURE])
    assert (tmp_path / "sig" / "sig.json").read_bytes() == evidence["sig.json"]


def test_cp_copies_an_artifact_and_its_referrers_to_another_package(oras, tmp_path, trusting):
    subject, pushed = push_artifact(oras, tmp_path / "subject", "oras-cp")
    files(tmp_path / "evidence", **{"sig.json": b'{"copied": true}'})
    signature = oras.json("attach", oras.ref(APP, "oras-cp"), "sig.json", "--artifact-type", SIGNATURE,
                          cwd=tmp_path / "evidence")["digest"]

    copied = oras.cp("-r", oras.ref(APP, "oras-cp"), oras.ref(OTHER, "copied"))
    assert copied.returncode == 0, copied.stderr
    assert tag_digest(oras.registry, OTHER, "copied") == subject
    found = oras.json("discover", oras.ref(OTHER, "copied"))["manifests"]
    assert [(m["artifactType"], m["digest"]) for m in found] == [(SIGNATURE, signature)]
    out = tmp_path / "pulled"
    assert oras.run("pull", oras.ref(OTHER, "copied"), "-o", str(out)).returncode == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == pushed


def test_a_missing_package_is_name_unknown_on_its_manifests_route(oras, trusting):
    # ORAS resolves the tag first, with a HEAD (no body to carry the words); the GET beside it says why.
    r = oras.run("discover", oras.ref("acme/no-such-package", "v1"))
    assert r.returncode != 0 and "acme/no-such-package:v1: not found" in r.stderr, r.stderr
    r = Client(oras.registry, "acme/no-such-package").get_manifest("v1")
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"], r.text
    assert "package acme/no-such-package does not exist" in r.text


def test_the_referrers_route_answers_404_without_name_unknown(oras, trusting):
    digest = digest_of(b"anything")
    for name in (APP, "acme/no-such-package"):
        for headers in ({}, {"Authorization": f"Bearer {Client(oras.registry, name).token()}"}):
            r = requests.get(f"{oras.registry.url}/v2/{name}/referrers/{digest}", headers=headers, timeout=30)
            assert r.status_code == 404 and error_codes(r) == ["UNSUPPORTED"], r.text
            assert "referrers tag schema" in r.text
