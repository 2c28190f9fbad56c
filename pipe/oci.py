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

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_MAGIC_AT = 257  # "ustar" in a POSIX or GNU tar header
LABEL_BYTES = 512  # what content_problem needs to decide: one tar header

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


def is_tar_header(head: bytes) -> bool:
    """Whether 512 bytes are a tar header: POSIX/GNU (`ustar`), or pre-POSIX (v7) with a valid checksum."""
    if len(head) < LABEL_BYTES:
        return False
    if head[TAR_MAGIC_AT:TAR_MAGIC_AT + 5] == b"ustar":
        return True
    try:
        stored = int(head[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 256 + sum(head[156:512])


def content_problem(media_type: str, head: bytes) -> str | None:
    """Why a layer's first bytes (LABEL_BYTES, or all of a shorter blob) are not what its media type
    says, or None. Types the pipe does not know (artifacts, attestations) are not checked."""
    if media_type.endswith(("+gzip", ".tar.gzip")) or media_type == DOCKER_LAYER_GZIP:
        expected, ok = "gzip", head.startswith(GZIP_MAGIC)
    elif media_type.endswith("+zstd"):
        expected, ok = "zstd", head.startswith(ZSTD_MAGIC)
    elif media_type in UNCOMPRESSED_LAYERS:
        block = head[:LABEL_BYTES]
        # A tar starts with a header, or (an empty layer) with the zero blocks that end an archive.
        expected, ok = "tar", is_tar_header(block) or (len(block) > 0 and not any(block))
    else:
        return None
    if ok:
        return None
    if head.startswith(GZIP_MAGIC):
        found = "gzip"
    elif head.startswith(ZSTD_MAGIC):
        found = "zstd"
    elif is_tar_header(head[:LABEL_BYTES]):
        found = "an uncompressed tar"
    else:
        found = "neither gzip, zstd nor tar"
    return f"its media type {media_type} says {expected}, but its content is {found}"
