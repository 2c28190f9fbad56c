"""The OCI model (pipe/oci/): manifests and indexes parsed once from their bytes, which they keep; what is
wrong with bad input named; a manifest or index the pipe changes written with every other field in its
place; and the source contract's LayerEntry, built complete and hashing what it reads."""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from pipe.engine.publish import rebuilt_index, rebuilt_manifest
from pipe.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    FOREIGN_LAYERS,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    BadDescriptor,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    NoConfig,
    NotAnObject,
    NotJSON,
    Platform,
    Schema1,
    docker_manifest,
    is_distributable,
    is_image,
    is_index,
    parse,
    stated_media_type,
)
from pipe.sources.image import LayerEntry

REPO = Path(__file__).resolve().parents[2]


def sha(n: int) -> str:
    return "sha256:" + f"{n:x}" * 64


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


MANIFEST = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(1), "size": 12},
    "layers": [{"mediaType": OCI_LAYER, "digest": sha(2), "size": 100, "annotations": {"note": "é"}},
               {"mediaType": OCI_LAYER_GZIP, "digest": sha(3), "size": 50}],
    "annotations": {"org.opencontainers.image.created": "2026-01-01"},
}
INDEX = {
    "schemaVersion": 2,
    "manifests": [{"digest": sha(5), "size": 300, "mediaType": OCI_MANIFEST,
                   "platform": {"architecture": "amd64", "os": "linux"}},
                  {"mediaType": OCI_MANIFEST, "digest": sha(6), "size": 301,
                   "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
                   "annotations": {"org.opencontainers.image.ref.name": "arm"}}],
    "annotations": {"created": "now"},
}


def test_a_manifest_keeps_its_bytes_and_reads_its_config_and_layers():
    body = json.dumps(MANIFEST, separators=(",", ":")).encode()  # a layout nobody rewrites
    manifest = Manifest.parse(body)
    assert manifest.body == body and manifest.digest == sha256(body)
    assert manifest.descriptor == Descriptor(sha256(body), len(body), OCI_MANIFEST)
    assert manifest.config.digest == sha(1) and manifest.config.size == 12
    assert [(layer.digest, layer.size, layer.media_type) for layer in manifest.layers] == \
        [(sha(2), 100, OCI_LAYER), (sha(3), 50, OCI_LAYER_GZIP)]
    assert manifest.layers[0].annotations == {"note": "é"}


def test_the_media_type_is_what_the_registry_says_else_what_the_manifest_says_else_oci():
    body = json.dumps(MANIFEST).encode()
    assert Manifest.parse(body, DOCKER_MANIFEST).media_type == DOCKER_MANIFEST
    assert Manifest.parse(body).media_type == OCI_MANIFEST
    unsaid = json.dumps({k: v for k, v in MANIFEST.items() if k != "mediaType"}).encode()
    assert Manifest.parse(unsaid).media_type == OCI_MANIFEST
    assert Index.parse(json.dumps(INDEX).encode()).media_type == OCI_INDEX
    assert Index.parse(json.dumps(INDEX).encode(), DOCKER_MANIFEST_LIST).media_type == DOCKER_MANIFEST_LIST
    assert stated_media_type(body) == OCI_MANIFEST and stated_media_type(unsaid) == ""
    assert stated_media_type(b"not json") == "" and stated_media_type(b"[]") == ""


def test_parse_tells_an_index_from_a_manifest_by_its_media_type_else_by_its_content():
    index, manifest = json.dumps(INDEX).encode(), json.dumps(MANIFEST).encode()
    assert isinstance(parse(index), Index) and isinstance(parse(index, OCI_INDEX), Index)
    assert isinstance(parse(index, "application/json"), Index)  # a registry that says only JSON
    assert isinstance(parse(manifest), Manifest) and isinstance(parse(manifest, DOCKER_MANIFEST), Manifest)
    with pytest.raises(NoConfig, match="names no config"):
        parse(index, OCI_MANIFEST)  # said to be a manifest: it must be one
    found = parse(index)
    assert isinstance(found, Index)
    assert [str(c.platform) for c in found.manifests] == ["linux/amd64", "linux/arm64/v8"]
    assert found.manifests[1].platform == Platform("linux", "arm64", "v8")
    assert found.manifests[1].annotations == {"org.opencontainers.image.ref.name": "arm"}


@pytest.mark.parametrize(("body", "error", "words"), [
    (b"{not json", NotJSON, "is not JSON"),
    (b"[1, 2]", NotAnObject, "is not a manifest or an index"),
    (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), Schema1, "schema 1"),
    (json.dumps({"schemaVersion": 2, "layers": []}).encode(), NoConfig, "names no config"),
    (json.dumps({**MANIFEST, "config": {"digest": sha(1)}}).encode(), BadDescriptor, "without a digest and size"),
    (json.dumps({**MANIFEST, "layers": [{"digest": sha(2), "size": "100"}]}).encode(), BadDescriptor,
     "without a digest and size"),
    (json.dumps({**MANIFEST, "layers": {"digest": sha(2)}}).encode(), BadDescriptor, "layers that are not a list"),
    (json.dumps({**MANIFEST, "layers": [{"digest": sha(2), "size": 1, "annotations": ["x"]}]}).encode(),
     BadDescriptor, "annotations or URLs are malformed"),
])
def test_bad_input_is_refused_naming_what_is_wrong(body, error, words):
    with pytest.raises(error, match=words):
        Manifest.parse(body)


def test_a_bad_index_entry_is_named():
    body = json.dumps({"manifests": [{"digest": sha(5), "size": 1, "platform": "linux/amd64"}]}).encode()
    with pytest.raises(BadDescriptor, match="platform is not an object.*linux/amd64"):
        Index.parse(body)
    with pytest.raises(BadDescriptor, match="without a digest and size: 'oops'"):
        Index.parse(json.dumps({"manifests": ["oops"]}).encode())


def test_a_rebuilt_manifest_changes_its_compressed_layers_only_keeping_every_other_field_in_place():
    manifest = Manifest.parse(json.dumps(MANIFEST).encode(), OCI_MANIFEST)
    rebuilt = rebuilt_manifest(manifest, {sha(2): Descriptor(sha(9), 42)})
    expected = json.loads(json.dumps(MANIFEST))
    expected["layers"][0].update(mediaType=OCI_LAYER_GZIP, digest=sha(9), size=42)  # in place: the key order stays
    assert rebuilt.body == json.dumps(expected, indent=2).encode()
    assert rebuilt.descriptor == Descriptor(sha256(rebuilt.body), len(rebuilt.body), OCI_MANIFEST)
    assert list(json.loads(rebuilt.body)["layers"][0]) == ["mediaType", "digest", "size", "annotations"]


def test_a_rebuilt_index_names_the_rebuilt_manifests_keeping_the_rest():
    index = Index.parse(json.dumps(INDEX, indent=4).encode(), OCI_INDEX)
    rebuilt = rebuilt_index(index, {sha(6): Descriptor(sha(7), 777, OCI_MANIFEST)})
    expected = json.loads(json.dumps(INDEX))
    expected["manifests"][1].update(digest=sha(7), size=777)
    assert rebuilt.body == json.dumps(expected, indent=2).encode()  # nothing added: no mediaType stated
    assert rebuilt.media_type == OCI_INDEX and rebuilt.digest == sha256(rebuilt.body)


def test_an_index_left_with_some_entries_states_its_media_type_and_keeps_each_entry_as_it_was():
    index = Index.parse(json.dumps(INDEX).encode())
    kept = index.rebuilt(index.manifests[1:], DOCKER_MANIFEST_LIST)
    expected = {**json.loads(json.dumps(INDEX)), "mediaType": DOCKER_MANIFEST_LIST}
    expected["manifests"] = expected["manifests"][1:]
    assert kept.body == json.dumps(expected, indent=2).encode() and kept.media_type == DOCKER_MANIFEST_LIST
    # An OCI layout's index.json is no blob: an index of its entries alone.
    new = Index.new(index.manifests[:1])
    assert new.body == json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                   "manifests": INDEX["manifests"][:1]}, indent=2).encode()
    made = Index.new([Descriptor(sha(8), 5, OCI_MANIFEST)])
    assert json.loads(made.body)["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": sha(8), "size": 5}]


def test_a_descriptor_rewritten_keeps_what_it_says_beside_the_blob():
    entry = Index.parse(json.dumps(INDEX).encode()).manifests[1]
    moved = entry.rewritten(sha(9), 9)
    assert moved.raw is not None and list(moved.raw) == list(entry.raw or {})
    assert moved.raw["annotations"] == {"org.opencontainers.image.ref.name": "arm"} and moved.platform == entry.platform
    assert moved == Descriptor(sha(9), 9, OCI_MANIFEST), "descriptors are equal when they name the same blob"
    assert entry.raw is not None and entry.raw["digest"] == sha(6), "the original is not changed"


def test_the_manifest_the_engine_writes_is_laid_out_as_docker_push_writes_it():
    body = docker_manifest(Descriptor(sha(1), 5), [Descriptor(sha(2), 6)])
    assert body == json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                               "config": {"mediaType": DOCKER_CONFIG, "size": 5, "digest": sha(1)},
                               "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": 6, "digest": sha(2)}]},
                              indent=3).encode()
    assert isinstance(parse(body, DOCKER_MANIFEST), Manifest)


def test_an_image_config_names_its_platform_and_diff_ids():
    config = ImageConfig.parse(json.dumps({"architecture": "arm64", "os": "linux", "variant": "v8",
                                           "rootfs": {"type": "layers", "diff_ids": [sha(1), sha(2)]}}).encode())
    assert str(config.platform) == "linux/arm64/v8" and config.diff_ids == (sha(1), sha(2))
    assert ImageConfig.parse(b'{"os": "linux"}').diff_ids is None
    assert ImageConfig.parse(b'{"rootfs": {"diff_ids": "sha256:x"}}').diff_ids is None, "a string is no list"
    with pytest.raises(NotAnObject, match="is not an image config"):
        ImageConfig.parse(b'"linux"')
    with pytest.raises(NotJSON):
        ImageConfig.parse(b"")


def test_what_each_media_type_is():
    assert is_index(OCI_INDEX) and is_index(DOCKER_MANIFEST_LIST) and not is_index(OCI_MANIFEST)
    assert is_image(OCI_MANIFEST) and is_image(DOCKER_MANIFEST) and not is_image(OCI_INDEX)
    assert is_distributable(OCI_LAYER_GZIP) and is_distributable(DOCKER_LAYER)
    assert not any(is_distributable(t) for t in FOREIGN_LAYERS)


def test_a_layer_entry_is_built_complete_and_hashes_what_it_reads():
    data = iter([b"abc", b"def", b""])
    entry = LayerEntry("k", 6, frozenset({"d1", "d2"}), "layer 1 of 2", lambda n: next(data))
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.read = lambda n: b""  # type: ignore[method-assign]
    assert entry.read(3) + entry.read(3) == b"abcdef" and not entry.unhashed
    assert entry.hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()
    entry.checked("d2")
    assert entry.diff_id == entry.result_key == "d2"
    certain = LayerEntry.certain("k", 3, frozenset({"d1"}), "layer 1 of 1", lambda n: b"xyz", frozenset({0}))
    assert certain.unhashed and certain.read(3) == b"xyz"
    assert certain.hasher.hexdigest() == hashlib.sha256(b"").hexdigest(), "a certain layer is not hashed again"
    stored = LayerEntry("s", 3, frozenset({sha(3)}), "layer", lambda n: b"", stored=Descriptor(sha(3), 3))
    stored.skip()
    assert stored.unhashed and stored.result_key == sha(3)


def test_the_registry_blobs_do_not_import_the_registry_source():
    tree = ast.parse((REPO / "pipe" / "sources" / "registry_blobs.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "registry" not in imported and ".registry" not in imported and imported >= {"image"}
