"""Pure parsing and validation of manifests: which media type, which blobs and manifests they reference."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .names import NameError_, parse_digest
from .storage_errors import ManifestInvalid, ManifestTooLarge, MediaTypeMismatch

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
IMAGE_TYPES = {DOCKER_MANIFEST, OCI_MANIFEST}
INDEX_TYPES = {DOCKER_LIST, OCI_INDEX}
SUPPORTED = IMAGE_TYPES | INDEX_TYPES
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None


@dataclass(frozen=True)
class ParsedManifest:
    media_type: str
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    manifests: list[Descriptor] = field(default_factory=list)

    @property
    def blobs(self) -> list[Descriptor]:
        return ([self.config] if self.config else []) + self.layers


def _descriptor(raw: object, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is missing")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is missing")
    try:
        parse_digest(digest)
    except NameError_ as exc:
        raise ManifestInvalid(f"{where}.digest: {exc}") from None
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}.platform must be an object")
    return Descriptor(media_type, digest, size, platform)


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest body; the media type comes from the body, else from the one given with it
    (`content_type`).

    When both are present they must agree, as registries that store exact bytes require.
    """
    if len(body) > MAX_MANIFEST_BYTES:
        raise ManifestTooLarge(MAX_MANIFEST_BYTES)
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("only schemaVersion 2 manifests are supported (Docker schema 2 or OCI)")
    declared = doc.get("mediaType")
    given = (content_type or "").split(";")[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if declared and given and given != declared:
        raise MediaTypeMismatch(given, declared)
    media_type = declared or given
    if media_type is None:
        # OCI allows mediaType to be omitted; the shape tells which kind it is.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in SUPPORTED:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")
    if media_type in IMAGE_TYPES:
        if "config" not in doc:
            raise ManifestInvalid("image manifest has no config")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("image manifest has no layers list")
        return ParsedManifest(
            media_type,
            config=_descriptor(doc["config"], "config"),
            layers=[_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)],
        )
    children = doc.get("manifests")
    if not isinstance(children, list):
        raise ManifestInvalid("index has no manifests list")
    parsed = [_descriptor(m, f"manifests[{i}]") for i, m in enumerate(children)]
    return ParsedManifest(media_type, manifests=parsed)

