"""SOURCE_IMAGE: the pipe copies an image already in a registry, between the emulator and distribution 2.8
(htpasswd, anonymous, TLS), with no daemon reachable from the copy. What it wrote is read back with
skopeo (`inspect --raw`: the same bytes on both sides) and `docker pull`; what it sent is counted by a
loopback HTTP proxy in front of a registry. Every refusal ends in one line with nothing tagged.

One emulator and the distribution registries serve the whole module (starting them is the slow part);
each test copies into packages of its own, so one test's blobs never make another's copy a no-op.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import requests

from harness.accounts import TOKENS, default_config
from harness.ports import free_port
from harness.reference_registry import DistributionRegistry
from harness.registry_process import RegistryProcess
from test.fixtures.registries import REFERENCE_PASSWORD, REFERENCE_USER
from test.helpers import archives as fx
from test.helpers.certificates import make_ca_and_server_cert
from test.helpers.oci_client import Client, docker, docker_login, image_id, skopeo
from test.helpers.pipe_runner import (
    PipeRun,
    assert_no_secret,
    assert_one_line_failure,
    pipe_variables,
    read_output,
    run_pipe,
)
from test.helpers.starting import start_or_fail

MiB = 1024 * 1024
APP = "acme/my-container-app"
MESSAGE = "hello from a source registry"
NO_DAEMON = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # the copy must need no daemon
# Packages added to the module's emulator, of repository web-app like my-container-app and other-app (tool-image is
# of tools): one per copy, so that each starts cold.
PACKAGES = ("from-auth", "from-auth-multi", "from-anon", "from-anon-list", "from-tls", "picked", "dropped",
            "refused", "seeded-multi", "whole", "attested", "attested-arm")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
FOREIGN_URL = "https://example.invalid/layer.tar.gz"  # allowed by `plain`'s validation, never fetched
IN_TOTO = "application/vnd.in-toto+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- the module's registries and images --------------------------------------------------------------------

@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> RegistryProcess:
    config = default_config()
    config["workspaces"]["acme"]["packages"].update({name: "web-app" for name in PACKAGES})
    reg = start_or_fail("the registry", RegistryProcess(tmp_path_factory.mktemp("emulator") / "root", config).start)
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> DistributionRegistry:
    """distribution 2.8, no auth; it takes schema-1 manifests and foreign layers, for the refusals."""
    reg = DistributionRegistry(tmp_path_factory.mktemp("plain"), extra_config={
        "compatibility": {"schema1": {"enabled": True}},
        "validation": {"manifests": {"urls": {"allow": [r"^https://example\.invalid/"]}}},
    })
    start_or_fail("docker-registry", reg.start)
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[DistributionRegistry, Path, Path]:
    """distribution 2.8 over TLS with a throwaway CA: (registry, the CA file, a skopeo --cert-dir)."""
    base = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_ca_and_server_cert(base)
    cert_dir = base / "certs"
    cert_dir.mkdir()
    shutil.copy(ca, cert_dir / "ca.crt")
    reg = DistributionRegistry(base / "registry", tls=(ca, cert, key))
    start_or_fail("docker-registry over TLS", reg.start)
    yield reg, ca, cert_dir
    reg.stop()


@pytest.fixture(scope="module")
def image(docker_daemon, tmp_path_factory) -> str:
    """A runnable image: busybox, 3 MiB of random bytes (several 1 MiB chunks) and a small layer."""
    ref = fx.build_runnable_image("source-image:module", tmp_path_factory.mktemp("ctx"), [3 * MiB, 40_000], MESSAGE)
    yield ref
    fx.remove_images(ref)


@pytest.fixture(scope="module")
def layout(image, tmp_path_factory) -> fx.Archive:
    return fx.skopeo_oci_layout(image, tmp_path_factory.mktemp("layout") / "oci", ref_name="1.0")


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> fx.Archive:
    return fx.buildah_multiplatform(tmp_path_factory.mktemp("multi") / "oci", layer_size=64 * 1024, message=MESSAGE)


# -- moving images in and reading them back ---------------------------------------------------------------

def emulator_creds(user: str = "pipelines") -> str:
    return f"{user}:{TOKENS[user]}"


def seed(archive: fx.Archive, target: str, creds: str | None = None, cert_dir: Path | None = None) -> None:
    """skopeo copy --all of an OCI layout to docker://target, byte for byte."""
    tls = [f"--dest-cert-dir={cert_dir}"] if cert_dir else ["--dest-tls-verify=false"]
    auth = ["--dest-creds", creds] if creds else ["--dest-no-creds"]
    r = skopeo("copy", "-q", "--all", *tls, *auth, f"oci:{archive.path}:{archive.ref_names[0]}", f"docker://{target}")
    assert r.returncode == 0, r.stderr


def raw(target: str, creds: str | None = None, cert_dir: Path | None = None) -> bytes:
    """The manifest (or index) under docker://target as its registry stores it."""
    tls = [f"--cert-dir={cert_dir}"] if cert_dir else ["--tls-verify=false"]
    auth = ["--creds", creds] if creds else ["--no-creds"]
    r = skopeo("inspect", "--raw", *tls, *auth, f"docker://{target}")
    assert r.returncode == 0, r.stderr
    return r.stdout.encode()


def absent(emulator: RegistryProcess, package: str, tag: str) -> bool:
    r = requests.get(f"{emulator.url}/v2/acme/{package}/manifests/{tag}", timeout=30,
                     headers={"Authorization": f"Bearer {emulator.token('boss', f'repository:acme/{package}:pull')}"})
    return r.status_code == 404


def copy(host: str, source: str, package: str, tags: str, out: Path | None = None, **overrides: str) -> PipeRun:
    variables = pipe_variables(host, package, SOURCE_IMAGE=source, TAGS=tags, **NO_DAEMON, **overrides)
    if out is not None:
        variables["BITBUCKET_PIPE_SHARED_STORAGE_DIR"] = str(out)
    return run_pipe(variables, timeout=120)


def image_size(archive: fx.Archive) -> int:
    """Every blob an image's manifests name (layers once each, configs), as stored."""
    blobs = {}
    for stored in archive.images:
        blobs.update(zip(stored.layer_digests, stored.layer_sizes, strict=True))
        blobs[stored.config_digest] = len(fx._layout_blob(archive.path, stored.config_digest))
    return sum(blobs.values())


def layer_count(archive: fx.Archive) -> int:
    return len({digest for stored in archive.images for digest in stored.layer_digests})


def assert_copied(run: PipeRun, out: Path, source: str, digest: str) -> dict:
    assert run.returncode == 0, str(run)
    assert run.last_line.startswith(f"✔ Copied {source} to ") or f"Copied {source} to " in run.last_line, str(run)
    output = read_output(out)
    assert output["source"] == "registry" and output["source_image"] == source, output
    assert output["digest"] == digest, output
    return output


# -- 1. the same package: tags only ---------------------------------------------------------------------------

class TestPromotion:
    def test_new_tags_write_manifests_only(self, emulator, layout, http_proxy_factory, docker_config, docker_refs,
                                           tmp_path):
        seed(layout, f"{emulator.host}/{APP}:1.0", emulator_creds())
        proxy = http_proxy_factory(emulator.url)
        blobs = len(layout.layer_digests) + 1
        for source, tags in ((":1.0", "production 1.4.0"), (f"{proxy.host}/{APP}:1.0", "staging")):
            proxy.reset_log()
            out = tmp_path / tags.split()[0]
            run = copy(proxy.host, source, "my-container-app", tags, out)
            output = assert_copied(run, out, source, layout.top_digest)
            assert (output["pushed_bytes"], output["layers_uploaded"], output["layers_mounted"]) == (0, 0, 0), output
            assert "0 copied" in run.last_line, run.last_line
            assert proxy.count("GET", r"/blobs/") == 0, [r for r in proxy.requests() if "/blobs/" in r.path]
            for method in ("POST", "PATCH", "PUT"):
                assert proxy.count(method, r"/blobs/") == 0, f"{method} on a blob in a promotion"
            heads = {r.path.rsplit("/", 1)[-1] for r in proxy.requests("HEAD", r"/blobs/")}
            assert heads == {*layout.layer_digests, layout.config_digest}, heads
            assert proxy.count("HEAD", r"/blobs/") == blobs, "each blob confirmed once"
            assert proxy.count("PUT", r"/manifests/") == len(tags.split())
            for tag in tags.split():
                assert sha256(raw(f"{emulator.host}/{APP}:{tag}", emulator_creds("reader"))) == layout.top_digest
            assert_no_secret(run, "pipelines", TOKENS["pipelines"])
            assert "" not in output["platforms"], "a platform not read is left out, not named ''"
        docker_login(emulator, "reader")
        pulled = []
        for tag in ("1.0", "production"):
            remote = f"{emulator.host}/{APP}:{tag}"
            docker_refs.append(remote)
            r = docker("pull", remote)
            assert r.returncode == 0, r.stderr
            pulled.append(image_id(remote))
        assert pulled[0] == pulled[1], "the new tag is the very same image"
        r = docker("run", "--rm", "--network", "none", f"{emulator.host}/{APP}:production", timeout=120)
        assert r.stdout.strip() == MESSAGE, (r.stdout, r.stderr)

    def test_a_blob_the_registry_lost_is_never_tagged_over(self, emulator, layout, http_proxy_factory):
        """The registry answers HEAD and GET of one layer with 404 (as if it lost the blob): no tag is written."""
        seed(layout, f"{emulator.host}/{APP}:lost-src", emulator_creds())
        proxy = http_proxy_factory(emulator.url)
        lost = layout.layer_digests[-1]
        for method in ("HEAD", "GET"):
            proxy.fail(method, rf"/blobs/{lost}$", 404, times=20,
                       body=b'{"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}')
        run = copy(proxy.host, ":lost-src", "my-container-app", "lost")
        assert_one_line_failure(run, "has no layer 3 of 3", lost[:19], "incomplete", "nothing was tagged")
        assert proxy.count("PUT", r"/manifests/") == 0, "no tag over a missing blob"
        assert absent(emulator, "my-container-app", "lost")


# -- 2. another package of the workspace: mounts ---------------------------------------------------------------

class TestAnotherPackage:
    def test_blobs_are_mounted_and_nothing_is_sent(self, emulator, layout, tmp_path):
        seed(layout, f"{emulator.host}/{APP}:2.0", emulator_creds())
        out = tmp_path / "out"
        source = f"{emulator.host}/{APP}:2.0"
        run = copy(emulator.host, source, "other-app", "from-app", out)
        output = assert_copied(run, out, source, layout.top_digest)
        assert output["pushed_bytes"] == 0 and output["layers_uploaded"] == 0, output
        assert output["layers_mounted"] == len(layout.layer_digests), output
        assert f"{len(layout.layer_digests)} mounted" in run.last_line, run.last_line
        assert sha256(raw(f"{emulator.host}/acme/other-app:from-app", emulator_creds("reader"))) == layout.top_digest

    def test_credentials_that_cannot_read_the_source_stream_or_fail(self, emulator, multi, tmp_path):
        """tool-image belongs to repository tools: web-app's pipeline credentials cannot read it."""
        seed(multi, f"{emulator.host}/acme/tool-image:multi", emulator_creds())
        user, token = emulator.pipeline_credentials("web-app")
        source = f"{emulator.host}/acme/tool-image:multi"
        as_web_app = {"BITBUCKET_PACKAGES_USERNAME": user, "BITBUCKET_PACKAGES_TOKEN": token}

        refused = copy(emulator.host, source, "other-app", "tools-refused", **as_web_app)
        line = assert_one_line_failure(refused, emulator.host, "SOURCE_USERNAME", "acme/tool-image")
        assert "BITBUCKET_PACKAGES" not in line, line
        assert absent(emulator, "other-app", "tools-refused")

        out = tmp_path / "out"
        run = copy(emulator.host, source, "other-app", "tools", out, SOURCE_USERNAME="boss",
                   SOURCE_PASSWORD=TOKENS["boss"], **as_web_app)
        output = assert_copied(run, out, source, multi.top_digest)
        assert output["layers_mounted"] == 0, output
        assert output["layers_uploaded"] == layer_count(multi) and output["pushed_bytes"] > 0, output
        assert f"{layer_count(multi)} copied" in run.last_line and "0 mounted" in run.last_line, run.last_line
        assert sorted(output["platforms"]) == ["linux/amd64", "linux/arm64"], output
        assert sha256(raw(f"{emulator.host}/acme/other-app:tools", emulator_creds("reader"))) == multi.top_digest
        assert_no_secret(run, "boss", TOKENS["boss"])


# -- 3. another registry: a streamed copy ----------------------------------------------------------------------

class TestOtherRegistries:
    def test_from_distribution_with_htpasswd(self, reference_registry_auth, emulator, layout, multi,
                                             http_proxy_factory, tmp_path):
        ref = reference_registry_auth
        login = {"SOURCE_USERNAME": REFERENCE_USER, "SOURCE_PASSWORD": REFERENCE_PASSWORD}
        ref_creds = f"{REFERENCE_USER}:{REFERENCE_PASSWORD}"
        for archive, path, package in ((layout, "acme/app:1.0", "from-auth"),
                                       (multi, "acme/multi:1", "from-auth-multi")):
            seed(archive, f"{ref.host}/{path}", ref_creds)
            out = tmp_path / package
            source = f"{ref.host}/{path}"
            run = copy(emulator.host, source, package, "copied", out, DEBUG="true", **login)
            output = assert_copied(run, out, source, archive.top_digest)
            assert output["layers_uploaded"] == layer_count(archive) and output["layers_mounted"] == 0, output
            assert output["pushed_bytes"] == image_size(archive), "every layer and config, each once"
            assert raw(f"{emulator.host}/acme/{package}:copied", emulator_creds("reader")) == \
                raw(f"{ref.host}/{path}", ref_creds), "the same bytes on both sides"
            assert_no_secret(run, REFERENCE_USER, REFERENCE_PASSWORD)
            assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        # A re-run finds everything there: no layer is read from the source, none is sent.
        proxy = http_proxy_factory(ref.url)
        out = tmp_path / "again"
        source = f"{proxy.host}/acme/app:1.0"
        again = copy(emulator.host, source, "from-auth", "again", out, **login)
        output = assert_copied(again, out, source, layout.top_digest)
        assert (output["pushed_bytes"], output["layers_uploaded"]) == (0, 0), output
        assert output["layers_skipped"] == len(layout.layer_digests), output
        for digest in layout.layer_digests:
            assert proxy.count("GET", rf"/blobs/{digest}") == 0, f"{digest} read again"

    def test_to_distribution(self, emulator, plain, layout, multi, tmp_path):
        seed(layout, f"{emulator.host}/{APP}:3.0", emulator_creds())
        seed(multi, f"{emulator.host}/acme/seeded-multi:1", emulator_creds())
        login = {"SOURCE_USERNAME": "reader", "SOURCE_PASSWORD": TOKENS["reader"]}
        for archive, path, package in ((layout, f"{APP}:3.0", "mirror"),
                                       (multi, "acme/seeded-multi:1", "mirror-multi")):
            out = tmp_path / package
            source = f"{emulator.host}/{path}"
            run = copy(plain.host, source, package, "copied", out, **login)
            output = assert_copied(run, out, source, archive.top_digest)
            assert output["layers_uploaded"] == layer_count(archive), output
            assert raw(f"{plain.host}/acme/{package}:copied") == raw(source, emulator_creds("reader"))
            assert_no_secret(run, "reader", TOKENS["reader"])
        copied = skopeo("copy", "-q", "--all", "--src-tls-verify=false", f"docker://{plain.host}/acme/mirror-multi:copied",
                        f"oci:{tmp_path / 'back'}:1")
        assert copied.returncode == 0, copied.stderr

    def test_from_an_anonymous_source(self, plain, emulator, layout, multi, tmp_path):
        seed(layout, f"{plain.host}/acme/app:1.0")
        out = tmp_path / "out"
        source = f"{plain.host}/acme/app:1.0"
        run = copy(emulator.host, source, "from-anon", "copied", out)
        assert_copied(run, out, source, layout.top_digest)
        assert "anonymously" in run.stderr, run.stderr
        assert sha256(raw(f"{emulator.host}/acme/from-anon:copied", emulator_creds("reader"))) == layout.top_digest
        # A Docker manifest list (skopeo converts the OCI index) travels as well, byte for byte.
        r = skopeo("copy", "-q", "--all", "--format", "v2s2", "--dest-tls-verify=false",
                   f"oci:{multi.path}:{multi.ref_names[0]}", f"docker://{plain.host}/acme/list:1")
        assert r.returncode == 0, r.stderr
        listed = raw(f"{plain.host}/acme/list:1")
        assert json.loads(listed)["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
        out = tmp_path / "list"
        source = f"{plain.host}/acme/list:1"
        run = copy(emulator.host, source, "from-anon-list", "copied", out)
        output = assert_copied(run, out, source, sha256(listed))
        assert sorted(output["platforms"]) == ["linux/amd64", "linux/arm64"], output
        assert raw(f"{emulator.host}/acme/from-anon-list:copied", emulator_creds("reader")) == listed

    def test_platforms_picks_from_a_source_index(self, plain, emulator, multi, tmp_path):
        seed(multi, f"{plain.host}/acme/multi:1")
        out = tmp_path / "out"
        run = copy(emulator.host, f"{plain.host}/acme/multi:1", "picked", "arm", out, PLATFORMS="linux/arm64")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        arm = multi.image("linux/arm64")
        assert output["platforms"] == ["linux/arm64"] and output["digest"] != multi.top_digest, output
        assert output["manifests"] == [{"platform": "linux/arm64", "digest": arm.manifest_digest}], output
        assert "Left out by PLATFORMS: linux/amd64" in run.stderr and "digest" in run.stderr, run.stderr
        index = json.loads(raw(f"{emulator.host}/acme/picked:arm", emulator_creds("reader")))
        assert [m["digest"] for m in index["manifests"]] == [arm.manifest_digest], index
        assert output["layers_uploaded"] == len(arm.layer_digests), "the left-out platform's layers stay behind"

    def test_from_distribution_over_tls(self, tls, emulator, layout, tmp_path):
        reg, ca, cert_dir = tls
        seed(layout, f"{reg.host}/acme/app:1.0", cert_dir=cert_dir)
        source = f"{reg.host}/acme/app:1.0"
        untrusted = copy(emulator.host, source, "from-tls", "untrusted")
        assert_one_line_failure(untrusted, reg.host, "SOURCE_CA_FILE", "certificate")
        assert absent(emulator, "from-tls", "untrusted")
        out = tmp_path / "out"
        run = copy(emulator.host, source, "from-tls", "copied", out, SOURCE_CA_FILE=str(ca))
        assert_copied(run, out, source, layout.top_digest)
        assert raw(f"{emulator.host}/acme/from-tls:copied", emulator_creds("reader")) == raw(source, cert_dir=cert_dir)


def attestation(subject: str) -> tuple[list[bytes], bytes]:
    """(blobs, manifest) of an attestation manifest as BuildKit writes one: an OCI manifest whose one layer is
    an in-toto statement about `subject`."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://spdx.dev/Document",
                            "subject": [{"name": "pkg", "digest": {"sha256": subject.removeprefix("sha256:")}}],
                            "predicate": {"spdxVersion": "SPDX-2.3"}}).encode()
    config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256(config)},
                           "layers": [{"mediaType": IN_TOTO, "size": len(statement), "digest": sha256(statement),
                                       "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}]},
                          indent=2).encode()
    return [config, statement], manifest


@pytest.fixture(scope="module")
def attested(plain, multi) -> dict[str, str]:
    """`multi` in `plain` as BuildKit pushes it with provenance: the index also lists one attestation manifest
    per platform (platform unknown/unknown, annotated with the manifest it describes). Maps each platform to
    its attestation's digest; "index" to the index's."""
    seed(multi, f"{plain.host}/acme/attested:base")
    index = json.loads(fx._layout_blob(multi.path, multi.top_digest))
    digests = {}
    for image in multi.images:
        blobs, manifest = attestation(image.manifest_digest)
        digests[image.platform] = put_by_hand(plain, "acme/attested", sha256(manifest), blobs, manifest)
        index["manifests"].append({
            "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.digest": image.manifest_digest,
                            "vnd.docker.reference.type": "attestation-manifest"}})
    body = json.dumps(index, indent=2).encode()
    digests["index"] = put_by_hand(plain, "acme/attested", "1", [], body)
    return digests


class TestAttestations:
    def test_attestations_travel_with_the_whole_index(self, plain, emulator, multi, attested, tmp_path):
        out = tmp_path / "out"
        source = f"{plain.host}/acme/attested:1"
        run = copy(emulator.host, source, "attested", "1", out)
        output = assert_copied(run, out, source, attested["index"])
        assert sorted(output["platforms"]) == ["linux/amd64", "linux/arm64"], "attestations are no platform"
        assert raw(f"{emulator.host}/acme/attested:1", emulator_creds("reader")) == raw(source)
        for platform in ("linux/amd64", "linux/arm64"):
            digest = attested[platform]
            copied = raw(f"{emulator.host}/acme/attested@{digest}", emulator_creds("reader"))
            assert sha256(copied) == digest, platform
            statement = json.loads(copied)["layers"][0]
            r = Client(emulator, "acme/attested", user="reader", actions="pull").get_blob(statement["digest"])
            assert r.status_code == 200 and sha256(r.content) == statement["digest"], r.status_code
            subject = json.loads(r.content)["subject"][0]["digest"]["sha256"]
            assert "sha256:" + subject == multi.image(platform).manifest_digest

    def test_platforms_keeps_the_attestation_of_each_platform_kept(self, plain, emulator, multi, attested, tmp_path):
        out = tmp_path / "out"
        run = copy(emulator.host, f"{plain.host}/acme/attested:1", "attested-arm", "arm", out,
                   PLATFORMS="linux/arm64")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        arm = multi.image("linux/arm64")
        assert output["platforms"] == ["linux/arm64"] and output["digest"] != attested["index"], output
        index = json.loads(raw(f"{emulator.host}/acme/attested-arm:arm", emulator_creds("reader")))
        assert [m["digest"] for m in index["manifests"]] == [arm.manifest_digest, attested["linux/arm64"]], index
        assert index["manifests"][1]["annotations"]["vnd.docker.reference.digest"] == arm.manifest_digest
        r = Client(emulator, "acme/attested-arm", user="reader", actions="pull").get_manifest(attested["linux/amd64"])
        assert r.status_code == 404, "the left-out platform's attestation stays behind"


# -- 4. connections dropped mid-blob ----------------------------------------------------------------------------

class TestDroppedConnections:
    def test_both_sides_resume_where_they_were(self, plain, emulator, layout, http_proxy_factory, tmp_path):
        seed(layout, f"{plain.host}/acme/big:1.0")
        big = max(zip(layout.images[0].layer_sizes, layout.layer_digests, strict=True))[1]
        src, dst = http_proxy_factory(plain.url), http_proxy_factory(emulator.url)
        src.cut("GET", rf"/blobs/{big}$", after_bytes=1536 * 1024)
        dst.drop("PATCH", r"/blobs/uploads/", after_bytes=512 * 1024, skip=1)
        out = tmp_path / "out"
        source = f"{src.host}/acme/big:1.0"
        run = copy(dst.host, source, "dropped", "resumed", out, CHUNK_SIZE_MB="1")
        assert_copied(run, out, source, layout.top_digest)
        assert [r.fault for r in src.requests() if r.fault] == ["cut"], src.requests()
        assert [r.fault for r in dst.requests() if r.fault] == ["drop"], dst.requests()
        assert src.count("GET", rf"/blobs/{big}$") == 2, "the source read goes on with a Range request"
        size = image_size(layout)
        read, sent = src.bytes_out("GET", r"/blobs/"), dst.bytes_in(None, r"/blobs/uploads/")
        assert size <= read <= size + MiB, (read, size)
        assert size - len(fx._layout_blob(layout.path, layout.config_digest)) <= sent <= size + MiB, (sent, size)
        back = skopeo("copy", "-q", "--src-tls-verify=false", "--src-creds", emulator_creds("reader"),
                      f"docker://{emulator.host}/acme/dropped:resumed", f"oci:{tmp_path / 'back'}:1")
        assert back.returncode == 0, back.stderr


    def test_a_registry_that_takes_no_patch_gets_each_blob_whole(self, plain, emulator, layout, http_proxy_factory,
                                                                 tmp_path):
        seed(layout, f"{plain.host}/acme/whole:1.0")
        dst = http_proxy_factory(emulator.url)
        dst.fail("PATCH", r"/blobs/uploads/", 405, times=100,
                 body=b'{"errors":[{"code":"UNSUPPORTED","message":"chunked uploads are not supported"}]}')
        out = tmp_path / "out"
        source = f"{plain.host}/acme/whole:1.0"
        run = copy(dst.host, source, "whole", "1.0", out, CHUNK_SIZE_MB="1")
        assert_copied(run, out, source, layout.top_digest)
        assert "refused a chunked upload" in run.stderr, str(run)
        layers = len(layout.layer_digests)
        # Refused once per blob copied at once at most, then every blob goes in one PUT.
        assert 1 <= dst.count("PATCH", r"/blobs/uploads/") <= 3, dst.requests("PATCH")
        assert dst.count("PUT", r"/blobs/uploads/", status=201) == layers + 1  # and the config
        assert dst.bytes_in("PUT", r"/blobs/uploads/") == image_size(layout)

# -- 5. refusals ------------------------------------------------------------------------------------------------

def layer_tar() -> bytes:
    """A plain tar of one small random file: what an uncompressed layer holds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = os.urandom(4096)
        info = tarfile.TarInfo("data.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def handmade(layers: list[tuple[bytes, dict]], diff_ids: list[str], oci: bool) -> tuple[bytes, bytes]:
    """(config, manifest) of an image whose layer descriptors are given (blob, extra fields): the tests
    label them as they please."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
                "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": len(config),
                           "digest": sha256(config)},
                "layers": [{"size": len(blob), "digest": sha256(blob), **fields} for blob, fields in layers]}
    return config, json.dumps(manifest, indent=2).encode()


def put_by_hand(reg: DistributionRegistry, repository: str, tag: str, blobs: list[bytes], manifest: bytes) -> str:
    """Blobs (POST + PUT) and the manifest over plain HTTP, as any client can; returns the manifest digest."""
    for blob in blobs:
        r = requests.post(f"{reg.url}/v2/{repository}/blobs/uploads/", timeout=30)
        assert r.status_code == 202, r.text
        location = requests.compat.urljoin(reg.url, r.headers["Location"])
        r = requests.put(location, params={"digest": sha256(blob)}, data=blob, timeout=30)
        assert r.status_code == 201, r.text
    r = requests.put(f"{reg.url}/v2/{repository}/manifests/{tag}", data=manifest, timeout=30,
                     headers={"Content-Type": json.loads(manifest)["mediaType"]})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def write_layout(directory: Path, blobs: list[bytes], manifest: bytes) -> Path:
    """The same image as an OCI layout directory (oci-layout, index.json, blobs/sha256/)."""
    (directory / "blobs" / "sha256").mkdir(parents=True)
    for blob in [*blobs, manifest]:
        (directory / "blobs" / "sha256" / sha256(blob).removeprefix("sha256:")).write_bytes(blob)
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "1"}}]}))
    return directory


@pytest.fixture(scope="module")
def refused_sources(plain, layout, multi, tmp_path_factory) -> dict[str, str]:
    """What the refusals copy from `plain`; the mislabeled image also as an OCI layout (IMAGE_ARCHIVE)."""
    seed(layout, f"{plain.host}/acme/app:1.0")
    seed(multi, f"{plain.host}/acme/multi:1")
    tar = layer_tar()
    config, manifest = handmade([(tar, {"mediaType": OCI_LAYER_GZIP})], [sha256(tar)], oci=True)
    put_by_hand(plain, "acme/mislabeled", "1", [config, tar], manifest)
    mislabeled = write_layout(tmp_path_factory.mktemp("mislabeled") / "oci", [config, tar], manifest)
    shipped, foreign = gzip.compress(layer_tar(), mtime=0), gzip.compress(layer_tar(), mtime=0)
    config, manifest = handmade([(shipped, {"mediaType": DOCKER_LAYER_GZIP}),
                                 (foreign, {"mediaType": DOCKER_FOREIGN, "urls": [FOREIGN_URL]})],
                                [sha256(gzip.decompress(shipped)), sha256(gzip.decompress(foreign))], oci=False)
    put_by_hand(plain, "acme/foreign", "1", [config, shipped, foreign], manifest)
    # skopeo writes (and signs) a schema 1 manifest; `plain` takes it with compatibility.schema1 enabled.
    r = skopeo("copy", "-q", "--format", "v2s1", "--dest-tls-verify=false", f"oci:{layout.path}:1.0",
               f"docker://{plain.host}/acme/schema1:1")
    assert r.returncode == 0, r.stderr
    return {"mislabeled layout": str(mislabeled), "mislabeled digest": sha256(tar)}


WRONG_PASSWORD = "wrong-pass-5e7b"


class TestRefusals:
    @pytest.mark.parametrize("case", ["missing tag", "missing platform", "wrong password", "unreachable",
                                      "with IMAGE_ARCHIVE", "mislabeled layer", "mislabeled archive",
                                      "foreign layer", "schema 1"])
    def test_refused_in_one_line_and_nothing_tagged(self, case, plain, reference_registry_auth, emulator, layout,
                                                     refused_sources, tmp_path):
        closed = f"127.0.0.1:{free_port()}"
        digest = refused_sources["mislabeled digest"]
        source, words, extra = {
            "missing tag": (f"{plain.host}/acme/app:nope", ["acme/app:nope", plain.host, "not found"], {}),
            "missing platform": (f"{plain.host}/acme/multi:1", ["linux/s390x", "linux/amd64", "linux/arm64"],
                                 {"PLATFORMS": "linux/s390x"}),
            "wrong password": (f"{reference_registry_auth.host}/acme/app:1.0",
                               [reference_registry_auth.host, f"SOURCE_USERNAME={REFERENCE_USER}"],
                               {"SOURCE_USERNAME": REFERENCE_USER, "SOURCE_PASSWORD": WRONG_PASSWORD}),
            "unreachable": (f"{closed}/acme/app:1.0", [closed, "unreachable"], {}),
            "with IMAGE_ARCHIVE": (f"{plain.host}/acme/app:1.0", ["SOURCE_IMAGE and IMAGE_ARCHIVE"],
                                   {"IMAGE_ARCHIVE": str(layout.path)}),
            "mislabeled layer": (f"{plain.host}/acme/mislabeled:1", ["layer 1 of 1", digest[:19], "tar+gzip",
                                                                     "uncompressed tar", "nothing was tagged"], {}),
            "mislabeled archive": (None, ["layer 1 of 1", digest[:19], "tar+gzip", "uncompressed tar"],
                                   {"IMAGE_ARCHIVE": refused_sources["mislabeled layout"]}),
            "foreign layer": (f"{plain.host}/acme/foreign:1", ["layer 2 of 2", "foreign", FOREIGN_URL], {}),
            "schema 1": (f"{plain.host}/acme/schema1:1", ["schema 1", "push it again"], {}),
        }[case]
        tag = case.replace(" ", "-").lower()
        variables = pipe_variables(emulator.host, "refused", TAGS=tag, **NO_DAEMON, **extra)
        if source is not None:
            variables["SOURCE_IMAGE"] = source
        run = run_pipe(variables, timeout=120)
        if case == "with IMAGE_ARCHIVE":  # a variables problem: the list of them, one per line
            assert run.returncode != 0 and "Traceback" not in run.output, str(run)
            assert all(word in run.stdout for word in words), str(run)
            line = run.stdout
        else:
            line = assert_one_line_failure(run, *words)
        assert "BITBUCKET_PACKAGES" not in line, "a source's failure is not worded as the destination's"
        assert absent(emulator, "refused", tag)
        assert_no_secret(run, REFERENCE_USER, WRONG_PASSWORD)
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_the_source_password_is_never_printed_with_debug(self, reference_registry_auth, emulator, tmp_path):
        """DEBUG=true logs every request and a traceback: the source's password (right or wrong) is in none."""
        source = f"{reference_registry_auth.host}/acme/debug:1.0"
        for password in (WRONG_PASSWORD, REFERENCE_PASSWORD):
            run = copy(emulator.host, source, "refused", "debug", DEBUG="true", SOURCE_USERNAME=REFERENCE_USER,
                       SOURCE_PASSWORD=password)
            assert run.returncode != 0 and "DEBUG" in run.stderr, str(run)
            assert reference_registry_auth.host in run.last_line, run.last_line
            assert_no_secret(run, REFERENCE_USER, password)
        assert absent(emulator, "refused", "debug")
