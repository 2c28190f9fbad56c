"""The archive makers of test/helpers/archives.py make what they claim, checked with the tools themselves."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import secrets
import subprocess
import tarfile
from pathlib import Path

import pytest

from test.helpers.archives import (
    OCI_INDEX,
    OCI_MANIFEST,
    OVERSIZED_LAYER,
    buildah_multiplatform,
    docker_save,
    docker_save_several,
    layout_with_corrupt_blob,
    layout_with_oversized_layer,
    layout_with_truncated_blob,
    layout_without_blob,
    not_an_archive,
    read_archive,
    remove_images,
    run_image,
    skopeo_accepts,
    skopeo_docker_archive,
    skopeo_oci_archive,
    skopeo_oci_layout,
    skopeo_oci_layout_several,
    tar_with_member,
    truncated_archive,
    two_platform_index,
)

GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, timeout=120)


def raw_digest(source: str) -> str:
    r = skopeo("inspect", "--raw", source)
    assert r.returncode == 0, r.stderr.decode()
    return "sha256:" + hashlib.sha256(r.stdout).hexdigest()


def docker_inspect(ref: str) -> dict:
    r = subprocess.run(["docker", "image", "inspect", ref], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(r.stdout)[0]


def tar_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path, "r:*") as tar:
        return {m.name: m for m in tar.getmembers()}


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def loaded_refs():
    """Refs loaded back into the daemon by a test; removed after it."""
    refs: list[str] = []
    yield refs
    remove_images(*refs)


def load_and_run(source: str, loaded_refs: list[str]) -> str:
    """skopeo copy SOURCE docker-daemon:new-ref (the host's platform of an index), then docker run it."""
    ref = f"archive-back:t{secrets.token_hex(5)}"
    loaded_refs.append(ref)
    r = skopeo("copy", "-q", source, f"docker-daemon:{ref}")
    assert r.returncode == 0, r.stderr.decode()
    return run_image(ref)


def test_runnable_image_echoes_its_message_and_shares_the_busybox_layer(runnable_image_factory):
    ref = runnable_image_factory([1000, 2000], message="it runs")
    assert run_image(ref) == "it runs"
    info = docker_inspect(ref)
    assert len(info["RootFS"]["Layers"]) == 3  # busybox + one per size
    assert info["Config"]["Cmd"] == ["/bin/busybox", "echo", "it runs"]
    other = docker_inspect(runnable_image_factory([1000, 2000]))
    assert other["RootFS"]["Layers"][0] == info["RootFS"]["Layers"][0]  # busybox: the same layer everywhere
    assert set(other["RootFS"]["Layers"][1:]).isdisjoint(info["RootFS"]["Layers"][1:])  # random: unique


def test_docker_save_plain_and_gzip(runnable_image_factory, tmp_path):
    ref = runnable_image_factory()
    info = docker_inspect(ref)
    plain = docker_save(ref, tmp_path / "image.tar")
    assert (plain.kind, plain.top_digest, plain.ref_names) == ("docker-archive", None, (ref,))
    assert plain.platforms == (f"{info['Os']}/{info['Architecture']}",)
    assert plain.config_digest == info["Id"]
    assert plain.diff_ids == tuple(info["RootFS"]["Layers"]) == plain.layer_digests  # stored uncompressed
    members = tar_members(plain.path)
    manifest = json.loads(tarfile.open(plain.path).extractfile("manifest.json").read())
    assert {"manifest.json", "repositories", info["Id"].split(":")[1] + ".json"} <= set(members)
    assert all(name.endswith("/layer.tar") and members[name].isfile() for name in manifest[0]["Layers"])

    packed = docker_save(ref, tmp_path / "image.tar.gz", gzip=True)
    assert packed.path.read_bytes()[:2] == b"\x1f\x8b" and packed.kind == "docker-archive-gzip"
    assert packed.images == plain.images
    assert not (tmp_path / "image.tar.gz.plain").exists()
    loaded = subprocess.run(["docker", "load", "-i", str(packed.path)], capture_output=True, text=True, timeout=120)
    assert f"Loaded image: {ref}" in loaded.stdout, loaded.stderr


def test_skopeo_oci_layout_gzips_layers_and_loads_back_into_docker(runnable_image_factory, tmp_path, loaded_refs):
    ref = runnable_image_factory([100_000], message="from the layout")
    info = docker_inspect(ref)
    layout = skopeo_oci_layout(ref, tmp_path / "oci")
    index = json.loads((layout.path / "index.json").read_text())
    assert [(e["mediaType"], e["digest"], e["annotations"]) for e in index["manifests"]] == \
        [(OCI_MANIFEST, layout.top_digest, {"org.opencontainers.image.ref.name": "latest"})]
    assert raw_digest(f"oci:{layout.path}:latest") == layout.top_digest
    assert json.loads((layout.path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    for blob in (layout.path / "blobs" / "sha256").iterdir():
        assert sha256_file(blob) == "sha256:" + blob.name
    assert set(layout.images[0].layer_media_types) == {GZIP_LAYER}
    for digest, diff_id in zip(layout.layer_digests, layout.diff_ids, strict=True):
        data = (layout.path / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest() == diff_id
    assert layout.diff_ids == tuple(info["RootFS"]["Layers"])
    assert layout.config_digest != info["Id"]  # skopeo rewrites the docker config as an OCI config
    assert load_and_run(f"oci:{layout.path}:latest", loaded_refs) == "from the layout"


def test_skopeo_oci_archive_is_the_layout_in_a_tar(runnable_image_factory, tmp_path):
    ref = runnable_image_factory()
    archive = skopeo_oci_archive(ref, tmp_path / "image.oci.tar", ref_name="v1")
    assert (archive.kind, archive.ref_names, archive.top_media_type) == ("oci-archive", ("v1",), OCI_MANIFEST)
    blobs = {d.split(":")[1] for d in (archive.top_digest, archive.config_digest, *archive.layer_digests)}
    assert set(tar_members(archive.path)) == \
        {"oci-layout", "index.json", "blobs", "blobs/sha256"} | {f"blobs/sha256/{b}" for b in blobs}
    assert raw_digest(f"oci-archive:{archive.path}:v1") == archive.top_digest
    # skopeo's gzip is deterministic: the same image gives the same manifest digest in a layout
    assert skopeo_oci_layout(ref, tmp_path / "oci").top_digest == archive.top_digest


def test_skopeo_docker_archive_names_layers_by_diff_id(runnable_image_factory, tmp_path, loaded_refs):
    ref = runnable_image_factory(message="from skopeo's docker-archive")
    info = docker_inspect(ref)
    archive = skopeo_docker_archive(ref, tmp_path / "image.tar")
    assert archive.ref_names == (f"docker.io/library/{ref}",)  # skopeo writes the normalized name
    assert archive.config_digest == info["Id"]  # the daemon's config bytes, kept
    assert archive.layer_digests == archive.diff_ids == tuple(info["RootFS"]["Layers"])
    members = tar_members(archive.path)
    for diff_id in archive.diff_ids:
        assert members[diff_id.split(":")[1] + ".tar"].isfile()
    links = [m for m in members.values() if m.issym()]
    assert len(links) == len(archive.diff_ids)  # legacy <v1-id>/layer.tar -> ../<diff-id>.tar
    assert all(m.name.endswith("/layer.tar") and m.linkname.startswith("../") for m in links)
    remove_images(ref)
    loaded = subprocess.run(["docker", "load", "-i", str(archive.path)], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    loaded_refs.append(ref)
    assert run_image(ref) == "from skopeo's docker-archive"


def test_several_images_in_one_layout_and_one_docker_archive(runnable_image_factory, tmp_path):
    a, b = runnable_image_factory(message="a"), runnable_image_factory(message="b")
    layout = skopeo_oci_layout_several({"first": a, "second": b}, tmp_path / "oci")
    assert layout.ref_names == ("first", "second") and len(set(layout.top_digests)) == 2
    for name, digest in zip(layout.ref_names, layout.top_digests, strict=True):
        assert raw_digest(f"oci:{layout.path}:{name}") == digest
    assert layout.images[0].layer_digests[0] == layout.images[1].layer_digests[0]  # busybox, stored once
    assert len(list((layout.path / "blobs" / "sha256").iterdir())) == 2 * 2 + 3

    saved = docker_save_several([a, b], tmp_path / "two.tar")
    assert sorted(saved.ref_names) == sorted([a, b]) and len(saved.images) == 2  # docker save's order, not ours
    assert {i.ref_name: i.config_digest for i in saved.images} == {r: docker_inspect(r)["Id"] for r in (a, b)}
    assert sum(name.endswith("/layer.tar") for name in tar_members(saved.path)) == 3


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_buildah_pushes_a_two_platform_index(archive_tools, kind, tmp_path, loaded_refs):
    dest = tmp_path / ("multi" if kind == "oci-layout" else "multi.tar")
    archive = buildah_multiplatform(dest, kind, ref_name="multi", message="buildah amd64", scratch=tmp_path)
    assert (archive.kind, archive.top_media_type, archive.ref_names) == (kind, OCI_INDEX, ("multi",))
    assert archive.platforms == ("linux/amd64", "linux/arm64")
    digest, copy = skopeo_accepts(archive, tmp_path)
    assert digest == archive.top_digest
    assert read_archive(copy).top_digest == archive.top_digest  # copied whole, byte for byte
    amd64, arm64 = archive.image("linux/amd64"), archive.image("linux/arm64")
    assert amd64.layer_digests[0] == arm64.layer_digests[0]  # the busybox layer, shared
    assert set(amd64.layer_digests[1:]).isdisjoint(arm64.layer_digests[1:])
    assert set(amd64.layer_media_types) == {GZIP_LAYER}
    transport = "oci" if kind == "oci-layout" else "oci-archive"
    config = skopeo("inspect", "--config", "--override-arch", "arm64", f"{transport}:{dest}:multi")
    assert json.loads(config.stdout)["architecture"] == "arm64", config.stderr.decode()
    assert load_and_run(f"{transport}:{dest}:multi", loaded_refs) == "buildah amd64"


def test_two_platform_index_assembled_from_two_layouts(runnable_image_factory, tmp_path, loaded_refs):
    amd = skopeo_oci_layout(runnable_image_factory(message="amd64 here"), tmp_path / "amd")
    other = skopeo_oci_layout(runnable_image_factory(message="other"), tmp_path / "other")
    index = two_platform_index(amd, other, tmp_path / "index", ref_name="both")
    assert (index.top_media_type, index.ref_names) == (OCI_INDEX, ("both",))
    assert index.platforms == ("linux/amd64", "linux/arm64")
    digest, _ = skopeo_accepts(index, tmp_path)
    assert digest == index.top_digest
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{index.path}:both").stdout)
    assert [m["platform"] for m in raw["manifests"]] == [{"architecture": "amd64", "os": "linux"},
                                                         {"architecture": "arm64", "os": "linux"}]
    assert raw["manifests"][0]["digest"] == amd.top_digest  # kept byte for byte
    assert raw["manifests"][1]["digest"] != other.top_digest  # config rewritten: new config, new manifest
    assert index.image("linux/arm64").layer_digests == other.layer_digests
    config = skopeo("inspect", "--config", "--override-arch", "arm64", f"oci:{index.path}:both")
    assert json.loads(config.stdout)["architecture"] == "arm64"
    assert load_and_run(f"oci:{index.path}:both", loaded_refs) == "amd64 here"


@pytest.fixture
def small_layout(runnable_image_factory, tmp_path):
    return skopeo_oci_layout(runnable_image_factory([50_000]), tmp_path / "good")


def test_truncated_archives(runnable_image_factory, tmp_path):
    ref = runnable_image_factory([200_000])
    for archive in (docker_save(ref, tmp_path / "d.tar"), skopeo_oci_archive(ref, tmp_path / "o.tar")):
        cut = truncated_archive(archive.path, tmp_path / f"cut-{archive.path.name}")
        assert 0 < cut.stat().st_size < archive.path.stat().st_size
        with pytest.raises(tarfile.ReadError):
            with tarfile.open(cut) as tar:
                for member in tar:
                    if member.isfile():
                        tar.extractfile(member).read()
    gz = truncated_archive(docker_save(ref, tmp_path / "g.tar.gz", gzip=True).path, tmp_path / "cut.tar.gz")
    with pytest.raises(EOFError), gzip.open(gz) as f:
        while f.read(1 << 20):
            pass


def test_layouts_with_a_missing_corrupt_or_short_blob(small_layout, tmp_path):
    layer = small_layout.layer_digests[-1]
    original = small_layout.path / "blobs" / "sha256" / layer.split(":")[1]
    missing = layout_without_blob(small_layout, tmp_path / "missing")
    corrupt = layout_with_corrupt_blob(small_layout, tmp_path / "corrupt")
    short = layout_with_truncated_blob(small_layout, tmp_path / "short")
    assert not (missing / "blobs" / "sha256" / original.name).exists()
    bad = corrupt / "blobs" / "sha256" / original.name
    assert bad.stat().st_size == original.stat().st_size and sha256_file(bad) != layer
    assert (short / "blobs" / "sha256" / original.name).stat().st_size == original.stat().st_size // 2
    for path in (missing, corrupt, short):
        assert raw_digest(f"oci:{path}:latest") == small_layout.top_digest  # the manifest is fine
        r = skopeo("copy", "-q", f"oci:{path}:latest", f"oci:{tmp_path / ('copy-' + path.name)}:x")
        assert r.returncode != 0, path  # skopeo refuses each
    assert sha256_file(original) == layer  # the good layout is untouched


def test_tars_with_escaping_member_names_and_files_that_are_no_archive(runnable_image_factory, tmp_path):
    source = docker_save(runnable_image_factory(), tmp_path / "good.tar").path
    for name in ("../evil", "/evil"):
        evil = tar_with_member(source, tmp_path / f"evil{len(name)}.tar", name)
        names = list(tar_members(evil))
        assert names[0] == name and set(names[1:]) == set(tar_members(source))
    link = tar_with_member(source, tmp_path / "link.tar", "evil-link", linkname="/etc/passwd")
    assert tar_members(link)["evil-link"].linkname == "/etc/passwd"
    for kind in ("random", "text"):
        path = not_an_archive(tmp_path / f"{kind}.tar", kind)
        assert path.stat().st_size > 0 and not tarfile.is_tarfile(path)


def test_layout_with_a_sparse_oversized_layer(small_layout, tmp_path):
    path = layout_with_oversized_layer(small_layout, tmp_path / "huge")
    huge = read_archive(path)
    assert huge.images[0].layer_sizes[:-1] == small_layout.images[0].layer_sizes
    assert huge.images[0].layer_sizes[-1] == OVERSIZED_LAYER
    blob = path / "blobs" / "sha256" / huge.layer_digests[-1].split(":")[1]
    assert blob.stat().st_size == OVERSIZED_LAYER and os.stat(blob).st_blocks * 512 < 1 << 20  # sparse
    assert raw_digest(f"oci:{path}:latest") == huge.top_digest  # skopeo reads the layout (never copy it)
    inspected = json.loads(skopeo("inspect", f"oci:{path}:latest").stdout)
    assert inspected["Layers"][-1] == huge.layer_digests[-1]
