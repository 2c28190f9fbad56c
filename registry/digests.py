"""Content digests: sha256, the one algorithm this registry stores, written `sha256:<hex>`."""
from __future__ import annotations

import hashlib

ALGORITHM = "sha256"


def new_hasher() -> hashlib._Hash:
    return hashlib.sha256()


def digest_from_hex(hex_: str) -> str:
    return f"{ALGORITHM}:{hex_}"


def digest_of(data: bytes) -> str:
    return digest_from_hex(hashlib.sha256(data).hexdigest())
