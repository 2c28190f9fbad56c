"""The registry's metadata in SQLite: every SQL statement of the emulator lives in this package.

What the registry keeps under its root, and how the rows here and the files there belong together:

    <root>/
      metadata.db (+ -wal, -shm)      this package: the rows below, in WAL mode
      blobs/<workspace>/sha256/<hex[:2]>/<hex>
                                      one file per blob (blobfiles.py), shared by the workspace's packages;
                                      a file counts only once a `blobs` row names it
      uploads/<upload id>             an upload's bytes while they arrive (uploads.py); moved into blobs/
                                      after the digest is verified, purged at start (sessions live in memory)
      token.key, ui-session.key       signing keys of bearer tokens (auth.py) and page sessions (ui/session.py)
      pipeline-credentials/<username>.json
                                      minted pipeline credentials (pipeline_credentials.py)

    packages (id, workspace, name, repository, created_at, deleted_at)
      │   one row per (workspace, name); deleting sets deleted_at and removes what hangs below
      ├── package_blobs (package_id, digest)        which of the workspace's blobs the package may see:
      │                                             uploaded there, or mounted from another package
      ├── manifests (package_id, digest, media_type, body, created_at, touched_at)
      │     └── manifest_refs (package_id, manifest_digest, kind 'blob' | 'manifest', target, size)
      │                                             a manifest's config and layers, or an index's children
      └── tags (package_id, tag, digest, updated_at)
    workspace_settings (workspace, immutable_tags, seeded_from, updated_at, updated_by)
          the Container settings (immutable tags, JSON): seeded from the config (`seeded_from` is what the
          config said then), changed through the API or pages; the put of a tag reads them in its transaction
    blobs (workspace, digest, size, created_at, touched_at, deleting)
          one row per file under blobs/<workspace>/; `touched_at` starts the grace period again
          (written, mounted, confirmed by a HEAD, referenced by a new manifest); `deleting` marks
          a collection's choice until the file is gone (see gc.py)

Every method runs on the store's one metadata thread (store.py), so calls are serialised and the
connection is never shared. Writes go through `transaction()`; WAL with synchronous=NORMAL makes
every committed transaction survive a killed process. A blob file becomes visible only through a
row committed here after its digest was verified.
"""
from __future__ import annotations

from pathlib import Path

from .catalog import CatalogQueries
from .collection import CollectionQueries
from .manifests import ManifestQueries
from .packages import PackageQueries
from .records import (
    BlobRecord,
    ManifestEntry,
    ManifestRecord,
    Package,
    PackageContents,
    PackageFigures,
    StorageFigures,
    TagEntry,
)
from .schema import Transaction, connect
from .settings import SettingsQueries

__all__ = [
    "BlobRecord", "ManifestEntry", "ManifestRecord", "Metadata", "Package", "PackageContents", "PackageFigures",
    "StorageFigures", "TagEntry", "Transaction",
]


class Metadata(PackageQueries, ManifestQueries, CatalogQueries, CollectionQueries, SettingsQueries):
    """The queries of every concern over one connection."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)

    def close(self) -> None:
        self.db.close()
