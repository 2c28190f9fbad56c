"""IMAGE_ARCHIVE: the pipe pushes archives made by real tools (docker save, skopeo, buildah) with no
Docker daemon reachable from the push, to the embedded registry and to distribution 2.8; what it
pushed is read back with skopeo (`inspect --raw`, `copy --all`) and with `docker pull` + `docker run`.
Bad archives end in one line with nothing left under a tag.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.accounts import TOKENS
from test.helpers import archives as fx
from test.helpers.oci_client import Client, docker, docker_login, image_id, skopeo, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, assert_one_line_failure, pipe_variables, read_output, run_pipe
from test.helpers.tcp_proxy import TcpProxy

APP = "acme/my-container-app"
MiB = 1024 * 1024
MESSAGE = "hello from an archive"
# The push itself must need no daemon: DOCKER_HOST points nowhere.
NO_DAEMON = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.fixture(scope="module")
def image(docker_daemon, tmp_path_factory) -> str:
    """One runnable image (busybox echo + two random layers) that every archive of the module is made from."""
    fx.require_busybox()
    ref = fx.build_runnable_image("my-container-app:archive-module", tmp_path_factory.mktemp("ctx"), [300_000, 40_000],
                                  MESSAGE)
    yield ref
    fx.remove_images(ref)


@pytest.fixture(scope="module")
def made(image, tmp_path_factory) -> dict[str, fx.Archive]:
    """The image in each kind of archive, made once by the real tools."""
    root = tmp_path_factory.mktemp("archives")
    return {
        "docker-save": fx.docker_save(image, root / "save.tar"),
        "docker-save-gzip": fx.docker_save(image, root / "save.tar.gz", gzip=True),
        "skopeo-docker-archive": fx.skopeo_docker_archive(image, root / "skopeo-docker.tar"),
        "oci-layout": fx.skopeo_oci_layout(image, root / "layout", ref_name="1.0"),
        "oci-archive": fx.skopeo_oci_archive(image, root / "oci.tar", ref_name="1.0"),
    }


@pytest.fixture(scope="module")
def multiplatform(image, tmp_path_factory) -> dict[str, fx.Archive]:
    root = tmp_path_factory.mktemp("multi")
    return {
        "oci-layout": fx.buildah_multiplatform(root / "layout", "oci-layout", message=MESSAGE),
        "oci-archive": fx.buildah_multiplatform(root / "oci.tar", "oci-archive", message=MESSAGE),
    }


def push(host: str, archive: Path, out: Path | None = None, image: str = "my-container-app",
         **overrides: str) -> object:
    variables = pipe_variables(host, image, IMAGE_ARCHIVE=str(archive), **NO_DAEMON, **overrides)
    if out is not None:
        variables["BITBUCKET_PIPE_SHARED_STORAGE_DIR"] = str(out)
    return run_pipe(variables)


def raw_manifest(host: str, reference: str,
                 creds: tuple[str, ...] = ("--creds", f"reader:{TOKENS['reader']}")) -> bytes:
    r = skopeo("inspect", "--raw", "--tls-verify=false", *creds, f"docker://{host}/{reference}")
    assert r.returncode == 0, r.stderr
    return r.stdout.encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pull_and_run(remote: str, refs: list[str]) -> None:
    refs.append(remote)
    pulled = docker("pull", remote)
    assert pulled.returncode == 0, pulled.stderr
    ran = docker("run", "--rm", "--network", "none", remote, timeout=120)
    assert ran.returncode == 0 and ran.stdout.strip() == MESSAGE, (ran.stdout, ran.stderr)


def tags_of(registry, package: str = "my-container-app") -> list[str]:
    r = registry.api("GET", f"/workspaces/acme/packages/{package}")
    assert r.status_code == 200, r.text
    return sorted(t["name"] for t in r.json()["tags"])


class TestEachKind:
    @pytest.mark.parametrize("kind", ["docker-save", "docker-save-gzip", "skopeo-docker-archive", "oci-layout",
                                      "oci-archive"])
    def test_pushed_without_a_daemon_and_read_back(self, kind, made, image, registry, docker_config, docker_refs,
                                                   tmp_path):
        archive = made[kind]
        out = tmp_path / "out"
        run = push(registry.host, archive.path, out, TAGS="1.0 latest")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert output["source"] == ("oci-layout" if kind == "oci-layout" else "oci-archive" if kind == "oci-archive"
                                    else "docker-archive")
        assert output["platforms"] == ["linux/amd64"] and output["index_digest"] is None
        assert output["layers_uploaded"] == len(archive.images[0].diff_ids), output
        raw = raw_manifest(registry.host, f"{APP}:latest")
        assert sha256(raw) == output["digest"]
        doc = json.loads(raw)
        if kind.startswith("oci"):
            assert output["digest"] == archive.top_digest, "a layout's manifest goes up byte for byte"
            assert [layer["digest"] for layer in doc["layers"]] == list(archive.layer_digests)
        else:
            # From a docker-archive the pipe writes what `docker push` writes: the config is the image ID.
            assert doc["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
            assert doc["config"]["digest"] == image_id(image)
        reader = Client(registry, APP, user="reader", actions="pull")
        assert verify_tagged_image(reader, "1.0") == len(doc["layers"]) + 1
        docker_login(registry, "reader")
        remote = f"{registry.host}/{APP}:1.0"
        pull_and_run(remote, docker_refs)
        if not kind.startswith("oci"):
            assert image_id(remote) == image_id(image), "docker pull gives back the very image that was saved"
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_docker_archive_pushes_the_same_manifest_as_the_daemon_engine(self, made, image, registry):
        from_archive = push(registry.host, made["docker-save"].path, TAGS="archive")
        assert from_archive.returncode == 0, str(from_archive)
        from_daemon = run_pipe(pipe_variables(registry.host, image, IMAGE_NAME=image, TAGS="daemon"))
        assert from_daemon.returncode == 0, str(from_daemon)
        assert raw_manifest(registry.host, f"{APP}:archive") == raw_manifest(registry.host, f"{APP}:daemon")


    def test_zstd_layers_go_up_as_they_are(self, image, registry, tmp_path):
        layout = tmp_path / "zstd"
        copied = skopeo("copy", "-q", "--dest-compress-format", "zstd", f"docker-daemon:{image}", f"oci:{layout}:z")
        assert copied.returncode == 0, copied.stderr
        archive = fx.read_oci(layout)
        assert all("zstd" in t for t in archive.images[0].layer_media_types), archive.images[0].layer_media_types
        run = push(registry.host, layout, TAGS="zstd")
        assert run.returncode == 0, str(run)
        raw = raw_manifest(registry.host, f"{APP}:zstd")
        assert sha256(raw) == archive.top_digest and "as stored" in run.stderr
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "zstd") == 4


class TestReferenceRegistry:
    @pytest.mark.parametrize("kind", ["docker-save", "oci-archive"])
    def test_distribution_takes_the_archive(self, kind, made, reference_registry, docker_refs):
        archive = made[kind]
        run = push(reference_registry.host, archive.path, TAGS=kind)
        assert run.returncode == 0, str(run)
        raw = raw_manifest(reference_registry.host, f"{APP}:{kind}", creds=())
        if kind == "oci-archive":
            assert sha256(raw) == archive.top_digest
        pull_and_run(f"{reference_registry.host}/{APP}:{kind}", docker_refs)

    def test_a_multi_platform_index_to_distribution(self, multiplatform, reference_registry, tmp_path):
        archive = multiplatform["oci-archive"]
        run = push(reference_registry.host, archive.path, TAGS="multi")
        assert run.returncode == 0, str(run)
        assert sha256(raw_manifest(reference_registry.host, f"{APP}:multi", creds=())) == archive.top_digest
        copied = skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{reference_registry.host}/{APP}:multi",
                        f"oci:{tmp_path / 'back'}:multi", timeout=180)
        assert copied.returncode == 0, copied.stderr


class TestMultiPlatform:
    def test_index_pushed_whole_keeps_its_digest(self, multiplatform, registry, docker_config, docker_refs, tmp_path):
        archive = multiplatform["oci-layout"]
        out = tmp_path / "out"
        run = push(registry.host, archive.path, out, TAGS="multi")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert output["digest"] == output["index_digest"] == archive.top_digest
        assert sorted(output["platforms"]) == ["linux/amd64", "linux/arm64"]
        by_platform = {m["platform"]: m["digest"] for m in output["manifests"]}
        assert by_platform == {image.platform: image.manifest_digest for image in archive.images}
        assert "Index " in run.stderr and "linux/arm64" in run.stderr, str(run)
        index = json.loads(raw_manifest(registry.host, f"{APP}:multi"))
        assert len(index["manifests"]) == 2
        copied = skopeo("copy", "--all", "--src-tls-verify=false", "--src-creds", f"reader:{TOKENS['reader']}",
                        f"docker://{registry.host}/{APP}:multi", f"oci:{tmp_path / 'back'}:multi", timeout=180)
        assert copied.returncode == 0, copied.stderr
        docker_login(registry, "reader")
        pull_and_run(f"{registry.host}/{APP}:multi", docker_refs)  # docker picks linux/amd64 from the index

    def test_platforms_restricts_what_is_pushed(self, multiplatform, registry, tmp_path):
        archive = multiplatform["oci-archive"]
        out = tmp_path / "out"
        run = push(registry.host, archive.path, out, TAGS="arm", PLATFORMS="linux/arm64")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert output["platforms"] == ["linux/arm64"] and output["digest"] != archive.top_digest
        index = json.loads(raw_manifest(registry.host, f"{APP}:arm"))
        assert [m["platform"]["architecture"] for m in index["manifests"]] == ["arm64"]
        assert [m["digest"] for m in index["manifests"]] == [archive.image("linux/arm64").manifest_digest]
        assert "Left out by PLATFORMS: linux/amd64" in run.stderr
        wrong = push(registry.host, archive.path, TAGS="none", PLATFORMS="linux/s390x")
        assert_one_line_failure(wrong, "PLATFORMS", "linux/amd64", "linux/arm64")
        assert tags_of(registry) == ["arm"]

    def test_an_index_assembled_from_two_images(self, image, registry, tmp_path):
        first = fx.skopeo_oci_layout(image, tmp_path / "a")
        second = fx.skopeo_oci_layout(image, tmp_path / "b")
        archive = fx.two_platform_index(first, second, tmp_path / "index")
        run = push(registry.host, archive.path, TAGS="two")
        assert run.returncode == 0, str(run)
        assert sha256(raw_manifest(registry.host, f"{APP}:two")) == archive.top_digest
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"),
                                   archive.image("linux/arm64").manifest_digest) >= 2


class TestChoosingAndReusing:
    def test_an_archive_of_several_images_is_picked_by_image_name(self, image, runnable_image_factory, registry,
                                                                  tmp_path):
        other = runnable_image_factory(name="my-container-app")
        archive = fx.docker_save_several([image, other], tmp_path / "both.tar")
        run = push(registry.host, archive.path, image=other, TAGS="picked")
        assert run.returncode == 0, str(run)
        assert json.loads(raw_manifest(registry.host, f"{APP}:picked"))["config"]["digest"] == image_id(other)
        none = push(registry.host, archive.path, image="my-container-app:nope")
        line = assert_one_line_failure(none, "holds 2 images", "none is named", image, other)
        assert "IMAGE_NAME" in line

    def test_a_layout_of_several_images_is_picked_by_its_ref_name(self, image, runnable_image_factory, registry,
                                                                  tmp_path):
        other = runnable_image_factory()
        archive = fx.skopeo_oci_layout_several({"1.0": image, "2.0": other}, tmp_path / "layout")
        run = push(registry.host, archive.path, image="my-container-app:2.0")
        assert run.returncode == 0, str(run)
        assert sha256(raw_manifest(registry.host, f"{APP}:2.0")) == archive.top_digests[archive.ref_names.index("2.0")]

    def test_repush_reads_nothing_and_a_new_top_layer_travels_alone(self, made, registry, image, tmp_path):
        layout = made["oci-layout"]
        assert push(registry.host, layout.path, TAGS="latest").returncode == 0
        out = tmp_path / "again"
        again = push(registry.host, layout.path, out, TAGS="latest")
        assert again.returncode == 0, str(again)
        assert "no layer was read" in again.stderr and read_output(out)["pushed_bytes"] == 0, str(again)
        top = fx.build_runnable_image("my-container-app:archive-top", tmp_path / "ctx", [30_000], MESSAGE)
        try:
            saved = fx.docker_save(top, tmp_path / "top.tar")
            assert push(registry.host, saved.path, TAGS="base").returncode == 0
            layered = fx.skopeo_oci_layout(top, tmp_path / "top-layout")
        finally:
            fx.remove_images(top)
        # Its busybox layer is the module image's too: the registry has it from the first push.
        out = tmp_path / "top"
        run = push(registry.host, layered.path, out, TAGS="top")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert output["layers_skipped"] >= 1 and output["layers_uploaded"] == len(layered.layer_digests) - 1, output


@pytest.fixture(scope="module")
def big_layout(docker_daemon, tmp_path_factory) -> fx.Archive:
    """An OCI layout with one 20 MiB layer of random bytes (gzip cannot shrink it): chunks to cut."""
    ref = fx.build_runnable_image("my-container-app:archive-big", tmp_path_factory.mktemp("ctx"), [20 * MiB],
                                  MESSAGE)
    try:
        return fx.skopeo_oci_layout(ref, tmp_path_factory.mktemp("big") / "layout")
    finally:
        fx.remove_images(ref)


class TestTransfer:
    """The engine's transfer holds for archives too: resumed chunks, re-sent blobs, mounts."""

    def test_a_connection_dropped_mid_blob_resumes(self, big_layout, registry, tmp_path):
        out = tmp_path / "out"
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, reset_after_bytes=6 * MiB,
                      max_resets=1) as proxy:
            run = push(proxy.host, big_layout.path, out, TAGS="resumed", CHUNK_SIZE_MB="4")
        assert run.returncode == 0, str(run)
        assert proxy.stats.resets == 1 and "Resuming the upload at byte" in run.stderr, str(run)
        output = read_output(out)
        assert proxy.stats.bytes_from_client < output["pushed_bytes"] + 4 * MiB, (proxy.stats, output)
        assert output["digest"] == big_layout.top_digest
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"),
                                   "resumed") == len(big_layout.layer_digests) + 1

    def test_a_forgotten_upload_is_read_from_the_layout_again(self, big_layout, reference_registry,
                                                              http_proxy_factory):
        proxy = http_proxy_factory(reference_registry.url)
        proxy.drop("PATCH", r"/blobs/uploads/", after_bytes=MiB)
        run = push(proxy.host, big_layout.path, TAGS="again", CHUNK_SIZE_MB="4")
        assert run.returncode == 0, str(run)
        assert "dropped the upload" in run.stderr and "Reading the image again for 1 layer" in run.stderr, str(run)
        assert sha256(raw_manifest(reference_registry.host, f"{APP}:again", creds=())) == big_layout.top_digest

    def test_cache_from_another_package_mounts_the_blobs(self, made, registry, tmp_path):
        layout = made["oci-archive"]
        assert push(registry.host, layout.path, image="other-app", TAGS="base").returncode == 0
        out = tmp_path / "out"
        run = push(registry.host, layout.path, out, TAGS="1.0", CACHE_FROM="other-app:base")
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["layers_mounted"], output["layers_uploaded"]) == (len(layout.layer_digests), 0), output
        assert output["digest"] == layout.top_digest


class TestBadInput:
    @pytest.mark.parametrize("case, words", [
        ("truncated tar", ("truncated or damaged",)),
        ("truncated gzip", ("truncated or damaged",)),
        ("missing blob", ("lacks", "incomplete")),
        ("corrupt blob", ("does not match its digest",)),
        ("short blob", ("bytes, but its manifest names",)),
        ("climbing member", ("climbs out of the archive",)),
        ("absolute member", ("absolute name",)),
        ("random bytes", ("is not an image archive",)),
        ("text file", ("is not an image archive",)),
        ("oversized layer", ("over the registry's limit of 32 GiB", "nothing was uploaded")),
    ])
    def test_each_fails_in_one_line_and_leaves_no_tag(self, case, words, made, registry, tmp_path):
        layout, save = made["oci-layout"], made["docker-save"]
        bad = tmp_path / "bad"
        path = {
            "truncated tar": lambda: fx.truncated_archive(made["oci-archive"].path, bad),
            "truncated gzip": lambda: fx.truncated_archive(made["docker-save-gzip"].path, bad),
            "missing blob": lambda: fx.layout_without_blob(layout, bad),
            "corrupt blob": lambda: fx.layout_with_corrupt_blob(layout, bad),
            "short blob": lambda: fx.layout_with_truncated_blob(layout, bad),
            "climbing member": lambda: fx.tar_with_member(save.path, bad, "../evil"),
            "absolute member": lambda: fx.tar_with_member(save.path, bad, "/evil"),
            "random bytes": lambda: fx.not_an_archive(bad, "random"),
            "text file": lambda: fx.not_an_archive(bad, "text"),
            "oversized layer": lambda: fx.layout_with_oversized_layer(layout, bad),
        }[case]()
        run = push(registry.host, path, TAGS="bad")
        assert_one_line_failure(run, *words)
        assert tags_of(registry) == []
        if case == "oversized layer":
            assert registry.api("GET", "/workspaces/acme/storage").json()["blobs"] == 0, "refused before any upload"
