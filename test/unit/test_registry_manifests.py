"""Manifest validation: each media type, Content-Type against mediaType, and malformed bodies."""
from __future__ import annotations

import json

import pytest

from registry.errors import RegistryError, http_error
from registry.manifests import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    OCI_MANIFEST,
    parse_manifest,
)
from registry.storage_errors import ManifestInvalid

D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 10}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 20}
CHILD = {"mediaType": OCI_MANIFEST, "digest": D3, "size": 30, "platform": {"os": "linux", "architecture": "arm64"}}


def image(media_type: str | None = OCI_MANIFEST, **extra) -> dict:
    doc = {"schemaVersion": 2, "config": CONFIG, "layers": [LAYER], **extra}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def index(media_type: str | None = OCI_INDEX, **extra) -> dict:
    doc = {"schemaVersion": 2, "manifests": [CHILD], **extra}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def body(doc) -> bytes:
    return json.dumps(doc).encode()


def invalid(raw: bytes, content_type: str | None = None) -> RegistryError:
    """The refusal, as the HTTP answer it gets."""
    with pytest.raises(ManifestInvalid) as exc:
        parse_manifest(raw, content_type)
    return http_error(exc.value)


@pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
def test_image_manifests(media_type):
    parsed = parse_manifest(body(image(media_type)), media_type)
    assert parsed.media_type == media_type
    assert parsed.config.digest == D1 and parsed.config.size == 10
    assert [d.digest for d in parsed.layers] == [D2]
    assert [d.digest for d in parsed.blobs] == [D1, D2]
    assert parsed.manifests == []


@pytest.mark.parametrize("media_type", [DOCKER_LIST, OCI_INDEX])
def test_indexes(media_type):
    parsed = parse_manifest(body(index(media_type)), media_type)
    assert parsed.media_type == media_type
    assert parsed.blobs == []
    assert [(d.digest, d.size, d.platform) for d in parsed.manifests] == [(D3, 30, CHILD["platform"])]


def test_media_type_from_content_type_when_the_body_has_none():
    assert parse_manifest(body(image(None)), DOCKER_MANIFEST + "; charset=utf-8").media_type == DOCKER_MANIFEST


@pytest.mark.parametrize("doc, expected", [(image(None), OCI_MANIFEST), (index(None), OCI_INDEX)])
def test_media_type_from_the_shape_when_neither_says(doc, expected):
    assert parse_manifest(body(doc), None).media_type == expected
    assert parse_manifest(body(doc), "").media_type == expected


def test_content_type_must_match_media_type():
    err = invalid(body(image(OCI_MANIFEST)), DOCKER_MANIFEST)
    assert err.code == "MANIFEST_INVALID" and err.status == 400
    assert "does not match" in err.message and DOCKER_MANIFEST in err.message and OCI_MANIFEST in err.message


def test_image_body_sent_as_an_index_is_refused():
    err = invalid(body(image(None)), OCI_INDEX)
    assert err.code == "MANIFEST_INVALID" and "no manifests list" in err.message


@pytest.mark.parametrize("raw, content_type, fragment", [
    (b"{not json", None, "not valid JSON"),
    (b"\xff\xfe", None, "not valid JSON"),
    (b"", None, "not valid JSON"),
    (b"[]", None, "must be a JSON object"),
    (b'"text"', None, "must be a JSON object"),
    (body({**image(), "schemaVersion": 1}), None, "only schemaVersion 2"),
    (body({k: v for k, v in image().items() if k != "schemaVersion"}), None, "only schemaVersion 2"),
    (body(image("application/vnd.docker.distribution.manifest.v1+json")), None, "unsupported manifest media type"),
    (body(image(None)), "application/json", "unsupported manifest media type"),
    (body(image(None)), "text/plain", "unsupported manifest media type"),
    (body({**image(), "mediaType": 7}), None, "mediaType must be a string"),
    (body({k: v for k, v in image().items() if k != "config"}), None, "image manifest has no config"),
    (body({k: v for k, v in image().items() if k != "layers"}), None, "image manifest has no layers list"),
    (body({**image(), "layers": {"a": LAYER}}), None, "image manifest has no layers list"),
    (body({**image(), "config": "sha256:x"}), None, "config must be a descriptor object"),
    (body({**image(), "config": {**CONFIG, "mediaType": ""}}), None, "config.mediaType is missing"),
    (body({**image(), "config": {k: v for k, v in CONFIG.items() if k != "digest"}}), None, "config.digest is missing"),
    (body({**image(), "layers": [{**LAYER, "digest": "sha256:abc"}]}), None, "layers[0].digest: invalid sha256 digest"),
    (body({**image(), "layers": [{**LAYER, "digest": "md5:" + "a" * 32}]}), None, "unsupported digest algorithm"),
    (body({**image(), "layers": [LAYER, {**LAYER, "size": -1}]}), None,
     "layers[1].size must be a non-negative integer"),
    (body({**image(), "layers": [{**LAYER, "size": "20"}]}), None, "layers[0].size must be a non-negative integer"),
    (body({**image(), "layers": [{**LAYER, "size": True}]}), None, "layers[0].size must be a non-negative integer"),
    (body({k: v for k, v in index().items() if k != "manifests"}), None, "index has no manifests list"),
    (body({**index(), "manifests": [{**CHILD, "platform": "linux/amd64"}]}), None,
     "manifests[0].platform must be an object"),
    (body({**index(), "manifests": [{**CHILD, "digest": "sha256:../../x"}]}), None, "manifests[0].digest"),
])
def test_malformed_manifests_are_manifest_invalid(raw, content_type, fragment):
    err = invalid(raw, content_type)
    assert err.code == "MANIFEST_INVALID" and err.status == 400
    assert fragment in err.message


def test_larger_than_4_mib_is_refused_with_413():
    padding = "x" * (MAX_MANIFEST_BYTES + 1 - len(body(image())) - len(', "annotations": {"p": ""}'))
    raw = body(image(annotations={"p": padding}))
    assert len(raw) == MAX_MANIFEST_BYTES + 1
    err = invalid(raw, OCI_MANIFEST)
    assert err.code == "MANIFEST_INVALID" and err.status == 413 and "4194304" in err.message
    at_limit = body(image(annotations={"p": padding[:-1]}))
    assert len(at_limit) == MAX_MANIFEST_BYTES
    assert parse_manifest(at_limit, OCI_MANIFEST).media_type == OCI_MANIFEST


def media_type_of(body: bytes) -> str | None:
    """Media type recorded in stored bytes (already validated when stored)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc.get("mediaType") if isinstance(doc, dict) else None


def test_media_type_of_stored_bytes():
    assert media_type_of(body(image(DOCKER_MANIFEST))) == DOCKER_MANIFEST
    assert media_type_of(body(image(None))) is None
    assert media_type_of(b"not json") is None
    assert media_type_of(b"[1]") is None
