"""Blob records: one per file of a workspace's blob store, and the packages that may see each."""
from __future__ import annotations

import time

from .records import BlobRecord, Package
from .schema import Queries


class BlobQueries(Queries):
    def blob(self, package: Package, digest: str, touch: bool = False) -> BlobRecord | None:
        """The blob as seen from a package: in the workspace, linked to the package, not being deleted."""
        row = self.db.execute(
            "SELECT b.size FROM blobs b JOIN package_blobs pb ON pb.digest = b.digest"
            " WHERE b.workspace = ? AND b.digest = ? AND pb.package_id = ? AND b.deleting = 0",
            (package.workspace, digest, package.id),
        ).fetchone()
        if row is None:
            return None
        if touch:
            self.touch_blob(package.workspace, digest)
        return BlobRecord(digest, row[0])

    def workspace_blob(self, workspace: str, digest: str) -> BlobRecord | None:
        row = self.db.execute(
            "SELECT size FROM blobs WHERE workspace = ? AND digest = ? AND deleting = 0", (workspace, digest)
        ).fetchone()
        return BlobRecord(digest, row[0]) if row else None

    def touch_blob(self, workspace: str, digest: str, at: float | None = None) -> None:
        """Restart the blob's grace period (a HEAD, a mount, a manifest referencing it)."""
        with self.transaction():
            self.db.execute(
                "UPDATE blobs SET touched_at = ? WHERE workspace = ? AND digest = ?",
                (time.time() if at is None else at, workspace, digest),
            )

    def _link(self, package: Package, digest: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO package_blobs (package_id, digest) VALUES (?, ?)", (package.id, digest))

    def add_blob(self, package: Package, digest: str, size: int) -> None:
        """Record a verified blob and link it to the package.

        A blob a collection has marked for deletion is taken back: the caller holds the
        workspace lock and has just put the file in place, so the collection skips it.
        """
        now = time.time()
        with self.transaction():
            row = self.db.execute(
                "SELECT deleting FROM blobs WHERE workspace = ? AND digest = ?", (package.workspace, digest)
            ).fetchone()
            if row:
                self.db.execute(
                    "UPDATE blobs SET touched_at = ?, deleting = 0 WHERE workspace = ? AND digest = ?",
                    (now, package.workspace, digest),
                )
            else:
                self.db.execute(
                    "INSERT INTO blobs (workspace, digest, size, created_at, touched_at) VALUES (?, ?, ?, ?, ?)",
                    (package.workspace, digest, size, now, now),
                )
            self._link(package, digest)

    def mount_blob(self, package: Package, digest: str) -> BlobRecord | None:
        """Link a blob the workspace already stores to another package of it (a cross-repository mount)."""
        with self.transaction():
            record = self.workspace_blob(package.workspace, digest)
            if record is None:
                return None
            self.touch_blob(package.workspace, digest)
            self._link(package, digest)
        return record

    def interrupted_deletions(self) -> list[tuple[str, str]]:
        """Blobs a collection had marked when the process died: their deletion is finished at start."""
        return self.db.execute("SELECT workspace, digest FROM blobs WHERE deleting = 1").fetchall()

    def forget_blob(self, workspace: str, digest: str) -> None:
        """Drop the blob's record and links (its file is already gone)."""
        with self.transaction():
            self.db.execute("DELETE FROM blobs WHERE workspace = ? AND digest = ?", (workspace, digest))
            self.db.execute(
                "DELETE FROM package_blobs WHERE digest = ?"
                " AND package_id IN (SELECT id FROM packages WHERE workspace = ?)",
                (digest, workspace),
            )
