"""Reading image archives without a daemon (pipe/sources/archive_*.py, layout_push's pure parts) and the
IMAGE_ARCHIVE / PLATFORMS variables, on small layouts and tars written here. The same code against
archives made by docker, skopeo and buildah is in test/integration/test_archive_push.py."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from pipe.engine.publish import rebuilt_index, rebuilt_manifest
from pipe.errors import PipeFailure
from pipe.oci import OCI_INDEX, OCI_MANIFEST, Descriptor, platform_matches
from pipe.references import ImageName
from pipe.sources.archive import ArchiveSource, check_blobs
from pipe.sources.archive_files import open_files, safe_name
from pipe.sources.archive_images import name_matches, read_archive
from pipe.sources.archive_layers import DockerArchiveLayers, LayoutLayers
from pipe.variables import InvalidVariables, parse_settings

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
RAW = "application/vnd.oci.image.layer.v1.tar"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("file")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


class Layout:
    """A small OCI layout in a directory: add blobs, images and indexes; `write` index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict] = []

    def blob(self, data: bytes, media_type: str) -> dict:
        d = digest(data)
        (self.root / "blobs" / "sha256" / d[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": d, "size": len(data)}

    def image(self, arch: str = "amd64", raw: bool = False, layers: int = 2) -> dict:
        tars = [layer_tar(f"{arch} layer {i}".encode() * 100) for i in range(layers)]
        config = json.dumps({"architecture": arch, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in tars]}}).encode()
        descriptors = [self.blob(t, RAW) if raw else self.blob(gzip.compress(t, mtime=0), GZ) for t in tars]
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": self.blob(config, "application/vnd.oci.image.config.v1+json"), "layers": descriptors}
        found = self.blob(json.dumps(manifest).encode(), OCI_MANIFEST)
        return {**found, "platform": {"os": "linux", "architecture": arch}}

    def index(self, children: list[dict]) -> dict:
        return self.blob(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode(),
                         OCI_INDEX)

    def add(self, descriptor: dict, name: str | None = None) -> None:
        entry = {k: v for k, v in descriptor.items() if k != "platform"}
        if name:
            entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.entries.append(entry)

    def write(self) -> Path:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.entries}))
        return self.root


def read(path: Path, name: str = "app", tag: str = "latest", platforms: tuple[str, ...] = ()):
    return read_archive(open_files(path, path.name), path.name, name, tag, f"{name}:{tag}", platforms)


def tar_of(directory: Path, out: Path, compress: bool = False) -> Path:
    with tarfile.open(out, "w:gz" if compress else "w") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return out


# -- names, platforms ---------------------------------------------------------------------------
def test_member_names_that_climb_out_are_refused():
    assert safe_name("./blobs//sha256/x", "t") == "blobs/sha256/x"
    for bad in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(PipeFailure, match="not a safe image archive"):
            safe_name(bad, "the archive t")


def test_names_match_tags_refs_and_full_references():
    assert name_matches(("1.0",), "app", "1.0", "app:1.0")
    assert name_matches(("docker.io/library/app:1.0",), "app", "1.0", "app:1.0")
    assert name_matches(("localhost/app:1.0",), "app", "1.0", "app:1.0")
    assert not name_matches(("other:1.0",), "app", "1.0", "app:1.0")
    assert not name_matches(("myapp:1.0",), "app", "1.0", "app:1.0")


def test_platforms_match_with_and_without_variant():
    assert platform_matches("linux/arm64/v8", "linux/arm64")
    assert platform_matches("linux/arm64/v8", "linux/arm64/v8")
    assert not platform_matches("linux/arm/v7", "linux/arm/v6")
    assert not platform_matches("linux/amd64", "linux/arm64")


# -- the kinds of archive -----------------------------------------------------------------------
def test_layout_directory_tar_and_gzip_tar_read_alike(tmp_path):
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image(), "latest")
    root = layout.write()
    plain, packed = tar_of(root, tmp_path / "oci.tar"), tar_of(root, tmp_path / "oci.tgz", compress=True)
    found = [read(p) for p in (root, plain, packed)]
    assert [a.kind for a in found] == ["oci-layout", "oci-archive", "oci-archive"]
    assert len({a.layout.top.digest for a in found}) == 1
    for archive in found:
        entries = list(LayoutLayers(archive.files, archive.layout).layers())
        assert len(entries) == 2 and all(e.stored is not None for e in entries)


def test_layout_blobs_stream_hashes_what_it_reads(tmp_path):
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image(raw=True), "latest")
    archive = read(layout.write())
    for entry in LayoutLayers(archive.files, archive.layout).layers():
        while entry.read(7):
            pass
    blob = archive.layout.manifests[0].layers[0].blob
    assert entry.diff_id == archive.layout.manifests[0].layers[-1].blob.digest and blob.media_type == RAW


def test_several_images_are_picked_by_name_or_listed(tmp_path):
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image("amd64"), "1.0")
    layout.add(layout.image("arm64"), "2.0")
    root = layout.write()
    assert read(root, tag="2.0").layout.platforms == ["linux/arm64"]
    with pytest.raises(PipeFailure) as caught:
        read(root, tag="3.0")
    assert "holds 2 images and none is named app:3.0" in str(caught.value)
    assert "1.0 [" in str(caught.value) and "2.0 [" in str(caught.value)


def test_an_index_of_json_entries_without_names_is_the_multi_platform_image(tmp_path):
    layout = Layout(tmp_path / "dir")
    for arch in ("amd64", "arm64"):
        layout.entries.append(layout.image(arch))
    archive = read(layout.write())
    assert archive.layout.is_index and archive.layout.platforms == ["linux/amd64", "linux/arm64"]


def test_platforms_restrict_an_index_and_change_its_digest(tmp_path):
    layout = Layout(tmp_path / "dir")
    index = layout.index([layout.image("amd64"), layout.image("arm64")])
    layout.add(index, "latest")
    root = layout.write()
    whole = read(root)
    assert whole.layout.top.digest == index["digest"], "an index pushed whole keeps its digest"
    only = read(root, platforms=("linux/arm64",))
    assert only.layout.platforms == ["linux/arm64"] and only.layout.left_out == ["linux/amd64"]
    assert only.layout.top.digest != index["digest"]
    assert [m["platform"]["architecture"] for m in json.loads(only.layout.top.body)["manifests"]] == ["arm64"]
    with pytest.raises(PipeFailure, match="built for linux/amd64, linux/arm64"):
        read(root, platforms=("linux/s390x",))


def test_docker_archive_from_manifest_json(tmp_path):
    tars = [layer_tar(b"one" * 50), layer_tar(b"two" * 50)]
    config = json.dumps({"os": "linux", "architecture": "amd64",
                         "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in tars]}}).encode()
    members = {f"{digest(config)[7:]}.json": config, "a/layer.tar": tars[0], "b/layer.tar": tars[1],
               "manifest.json": json.dumps([{"Config": f"{digest(config)[7:]}.json", "RepoTags": ["app:1"],
                                             "Layers": ["b/layer.tar", "a/layer.tar"][::-1]}]).encode()}
    path = tmp_path / "save.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = read(path, tag="1")
    assert archive.kind == "docker-archive" and archive.docker.image.image_id == digest(config)
    entries = []
    for entry in DockerArchiveLayers(archive.files, archive.docker).layers():
        if entry.key == "a/layer.tar":
            entry.skip()
        else:
            while entry.read(5):
                pass
        entries.append(entry)
    assert [e.diff_id for e in entries] == [digest(t) for t in tars]
    with pytest.raises(PipeFailure, match="PLATFORMS is set"):
        read(path, platforms=("linux/amd64",))


@pytest.mark.parametrize("raw, kind", [(True, "docker-archive"), (False, "oci-archive")])
def test_a_save_with_both_manifest_json_and_index_json(tmp_path, raw, kind):
    # docker >= 25 writes both; with uncompressed layers it is read like docker save (as docker push
    # would push it), with compressed ones (the containerd store) as the OCI layout it also is.
    layout = Layout(tmp_path / "dir")
    image = layout.image(raw=raw)
    layout.add(image, "latest")
    root = layout.write()
    manifest = json.loads((root / "blobs" / "sha256" / image["digest"][7:]).read_bytes())
    (root / "manifest.json").write_text(json.dumps([{
        "Config": "blobs/sha256/" + manifest["config"]["digest"][7:], "RepoTags": ["app:latest"],
        "Layers": ["blobs/sha256/" + layer["digest"][7:] for layer in manifest["layers"]]}]))
    archive = read(tar_of(root, tmp_path / "save.tar"))
    assert archive.kind == kind
    if raw:
        assert archive.docker.image.diff_ids == tuple(layer["digest"] for layer in manifest["layers"])


# -- bad input ----------------------------------------------------------------------------------
def test_not_an_archive_truncated_and_evil_tars(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00\x01 not a tar" * 100)
    with pytest.raises(PipeFailure, match="is not an image archive"):
        open_files(junk, "junk")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipeFailure, match="not an OCI image layout"):
        open_files(tmp_path / "empty", "empty")
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image(layers=1), "latest")
    whole = tar_of(layout.write(), tmp_path / "oci.tar").read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(PipeFailure, match="truncated or damaged"):
        read(cut)
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(PipeFailure, match="climbs out of the archive"):
        open_files(evil, "evil.tar")


def test_blobs_missing_resized_or_over_the_limit_are_refused_before_upload(tmp_path):
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image(), "latest")
    archive = read(layout.write())
    check_blobs(archive.files, archive.layout, 1 << 30)
    with pytest.raises(PipeFailure, match="over the registry's limit"):
        check_blobs(archive.files, archive.layout, 10)
    first = archive.layout.manifests[0].layers[0].path
    (archive.files.root / first).write_bytes(b"short")
    with pytest.raises(PipeFailure, match="holds 5 bytes, but its manifest names"):
        check_blobs(archive.files, archive.layout, 1 << 30)
    (archive.files.root / first).unlink()
    with pytest.raises(PipeFailure, match="lacks layer 1 of 2"):
        check_blobs(archive.files, archive.layout, 1 << 30)


def test_a_damaged_manifest_is_refused(tmp_path):
    layout = Layout(tmp_path / "dir")
    image = layout.image()
    layout.add(image, "latest")
    root = layout.write()
    path = root / "blobs" / "sha256" / image["digest"][7:]
    path.write_bytes(path.read_bytes().replace(b"\"schemaVersion\": 2", b"\"schemaVersion\": 3"))
    with pytest.raises(PipeFailure, match="does not match its digest"):
        read(root)


# -- rebuilt manifests --------------------------------------------------------------------------
def test_uncompressed_layers_get_compressed_descriptors(tmp_path):
    layout = Layout(tmp_path / "dir")
    index = layout.index([layout.image("amd64", raw=True)])
    layout.add(index, "latest")
    archive = read(layout.write())
    manifest = archive.layout.manifests[0]
    compressed = {layer.blob.digest: Descriptor("sha256:" + "c" * 64, 10) for layer in manifest.layers}
    rebuilt = rebuilt_manifest(manifest.manifest, compressed)
    new, body = rebuilt.descriptor, rebuilt.body
    doc = json.loads(body)
    assert [layer["mediaType"] for layer in doc["layers"]] == [GZ, GZ]
    assert new.digest == digest(body) != manifest.descriptor.digest
    index = rebuilt_index(archive.layout.top, {manifest.descriptor.digest: new})
    top, top_body = index.descriptor, index.body
    assert top.media_type == OCI_INDEX
    assert json.loads(top_body)["manifests"][0]["digest"] == new.digest and top.digest == digest(top_body)


# -- variables ----------------------------------------------------------------------------------
BASE = {"IMAGE_NAME": "app:1", "WORKSPACE": "acme", "BITBUCKET_PACKAGES_USERNAME": "u",
        "BITBUCKET_PACKAGES_TOKEN": "t"}


def test_image_archive_is_relative_to_the_clone_directory(tmp_path):
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "image.tar").write_bytes(b"x")
    settings = parse_settings({**BASE, "IMAGE_ARCHIVE": "build/image.tar", "BITBUCKET_CLONE_DIR": str(tmp_path),
                               "PLATFORMS": "linux/amd64, linux/arm64/v8"})
    assert settings.archive == str(tmp_path / "build" / "image.tar")
    assert settings.platforms == ("linux/amd64", "linux/arm64/v8")


def test_image_archive_problems_are_named_together(tmp_path):
    with pytest.raises(InvalidVariables) as caught:
        parse_settings({**BASE, "IMAGE_ARCHIVE": "nope.tar", "BITBUCKET_CLONE_DIR": str(tmp_path),
                        "PUSH_ENGINE": "docker", "PLATFORMS": "amd64"})
    text = " | ".join(caught.value.problems)
    assert "IMAGE_ARCHIVE 'nope.tar' does not exist" in text
    assert "remove PUSH_ENGINE=docker" in text
    assert "PLATFORMS entry 'amd64' is not os/architecture" in text
    # An image in the daemon may hold several platforms (the containerd store): the native engine keeps
    # some of them, the daemon's push cannot.
    assert parse_settings({**BASE, "PLATFORMS": "linux/amd64"}).platforms == ("linux/amd64",)
    with pytest.raises(InvalidVariables, match="the daemon's push .PUSH_ENGINE=docker. sends every platform"):
        parse_settings({**BASE, "PLATFORMS": "linux/amd64", "PUSH_ENGINE": "docker"})


def test_a_layout_without_its_oci_layout_file_is_pushed_with_a_warning_naming_it(tmp_path):
    layout = Layout(tmp_path / "dir")
    layout.add(layout.image(), "latest")
    root = layout.write()
    assert ArchiveSource(str(root), "dir", ImageName("app", "latest"), ()).image().warnings == []
    (root / "oci-layout").unlink()
    warnings = ArchiveSource(str(root), "dir", ImageName("app", "latest"), ()).image().warnings
    assert len(warnings) == 1 and "has no oci-layout file" in warnings[0]
