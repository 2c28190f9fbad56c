"""The OCI vocabulary the pipe speaks, defined once: media types, what each kind is, digests.

Docker's v2 schema 2 types and the OCI image spec's types name the same four things (an image
manifest, an index of manifests, a config, a layer); a registry answers with either.
"""
from __future__ import annotations

import hashlib

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")
# Layers a registry does not serve (Windows base layers, licensed content): their manifest names URLs.
FOREIGN_LAYERS = ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd")

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


def is_index(media_type: str) -> bool:
    """An index of manifests (an OCI index, a Docker manifest list)."""
    return media_type in INDEX_TYPES


def is_image(media_type: str) -> bool:
    """A single image's manifest (OCI or Docker v2 schema 2)."""
    return media_type in MANIFEST_TYPES


def is_distributable(media_type: str) -> bool:
    """A layer a registry serves: not a foreign (non-distributable) one, which its manifest names by URL."""
    return media_type not in FOREIGN_LAYERS


def digest_of(data: bytes | bytearray | memoryview) -> str:
    return hex_digest(hashlib.sha256(data))


def hex_digest(hasher: hashlib._Hash) -> str:
    """`sha256:<hex>` of a running sha256."""
    return "sha256:" + hasher.hexdigest()
