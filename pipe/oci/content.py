"""What a layer's first bytes say it is: gzip, zstd or a tar, checked against its media type."""
from __future__ import annotations

from .media import DOCKER_LAYER_GZIP, UNCOMPRESSED_LAYERS

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_MAGIC_AT = 257  # "ustar" in a POSIX or GNU tar header
LABEL_BYTES = 512  # what content_problem needs to decide: one tar header


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
