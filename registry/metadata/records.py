"""What the queries answer: plain frozen records, never a database row or cursor."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Package:
    id: int
    workspace: str
    name: str
    repository: str
    created_at: float


@dataclass(frozen=True)
class BlobRecord:
    digest: str
    size: int


@dataclass(frozen=True)
class ManifestRecord:
    digest: str
    media_type: str
    body: bytes
    created_at: float


@dataclass(frozen=True)
class PackageFigures:
    tags: int
    updated_at: float | None  # the newest tag's
    size: int  # each blob the package's manifests reference once, plus the manifests' bodies


@dataclass(frozen=True)
class TagEntry:
    name: str
    digest: str
    size: int  # what the tagged manifest brings (see `CatalogQueries.manifest_size`)
    updated_at: float


@dataclass(frozen=True)
class ManifestEntry:
    digest: str
    media_type: str
    size: int
    created_at: float


@dataclass(frozen=True)
class PackageContents:
    """A package's figures, tags (by name) and manifests (oldest first), read in one go."""

    figures: PackageFigures
    tags: list[TagEntry]
    manifests: list[ManifestEntry]


@dataclass(frozen=True)
class StorageFigures:
    blob_bytes: int
    blobs: int
    manifests: int
    manifest_bytes: int
    reclaimable_bytes: int  # what a collection frees once everything unreferenced is past its grace period
    reclaimable_blobs: int
    reclaimable_now_bytes: int  # what a collection would free now
