"""The OCI vocabulary the pipe speaks, defined once: media types, digests, descriptors, platforms.

Docker's v2 schema 2 types and the OCI image spec's types name the same four things (an image
manifest, an index of manifests, a config, a layer); a registry answers with either.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
ACCEPTED_MANIFESTS = MANIFEST_TYPES + INDEX_TYPES  # what a GET of a manifest accepts
GZIP_LAYERS = (DOCKER_LAYER_GZIP, OCI_LAYER_GZIP)
UNCOMPRESSED_LAYERS = (OCI_LAYER, DOCKER_LAYER)
COMPRESSED_TYPE = {OCI_LAYER: OCI_LAYER_GZIP, DOCKER_LAYER: DOCKER_LAYER_GZIP}  # what the pipe's gzip makes of each

# Annotations read from image layouts.
REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
ATTESTATION_SUBJECT = "vnd.docker.reference.digest"  # BuildKit: the manifest an attestation describes


def digest_of(data: bytes | bytearray | memoryview) -> str:
    return hex_digest(hashlib.sha256(data))


def hex_digest(hasher: hashlib._Hash) -> str:
    """`sha256:<hex>` of a running sha256."""
    return "sha256:" + hasher.hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """Content as a registry stores it: what a manifest's descriptor names."""

    digest: str
    size: int
    media_type: str = ""


def platform_of(doc: dict[str, Any] | None) -> str:
    """`os/architecture[/variant]` of an index entry's platform or an image config."""
    doc = doc or {}
    return "/".join(str(p) for p in (doc.get("os"), doc.get("architecture"), doc.get("variant")) if p)


def platform_matches(platform: str, wanted: str) -> bool:
    """`linux/arm64` asks for any arm64 variant; `linux/arm64/v8` for that one only."""
    have, want = platform.split("/"), wanted.split("/")
    return have[:2] == want[:2] and (len(want) < 3 or have[2:3] == want[2:3])
