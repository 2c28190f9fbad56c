"""What a collection may free, chooses and forgets (the rules are in `gc.py`), and the storage figures."""
from __future__ import annotations

import math
import time

from .blobs import BlobQueries
from .records import StorageFigures

# Each condition is written once; `m` is a manifest row, `b` a blob row.
TAGGED = "EXISTS (SELECT 1 FROM tags t WHERE t.package_id = m.package_id AND t.digest = m.digest)"
# Untagged manifests no index references, of workspace `?`: what the sweep deletes past the cutoff.
LOOSE_MANIFESTS = (
    "FROM manifests m JOIN packages p ON p.id = m.package_id WHERE p.workspace = ?"
    f" AND NOT {TAGGED}"
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.package_id = m.package_id"
    " AND r.kind = 'manifest' AND r.target = m.digest)"
)
# Blobs of workspace `?` that no manifest of the workspace references, and not already marked.
UNREFERENCED_BLOBS = (
    "FROM blobs b WHERE b.workspace = ? AND b.deleting = 0"
    " AND NOT EXISTS (SELECT 1 FROM manifest_refs r JOIN packages p ON p.id = r.package_id"
    " WHERE p.workspace = b.workspace AND r.kind = 'blob' AND r.target = b.digest)"
)
SWEEP_ROUNDS = 8  # an index of indexes is at most a few levels deep


class CollectionQueries(BlobQueries):
    def sweep_manifests(self, workspace: str, cutoff: float) -> int:
        """Delete untagged manifests no index references and older than the cutoff, to a fixpoint."""
        deleted = 0
        for _ in range(SWEEP_ROUNDS):
            with self.transaction():
                rows = self.db.execute(
                    f"SELECT m.package_id, m.digest {LOOSE_MANIFESTS} AND m.touched_at < ?", (workspace, cutoff)
                ).fetchall()
                for package_id, digest in rows:
                    self.db.execute(
                        "DELETE FROM manifest_refs WHERE package_id = ? AND manifest_digest = ?", (package_id, digest)
                    )
                    self.db.execute("DELETE FROM manifests WHERE package_id = ? AND digest = ?", (package_id, digest))
            deleted += len(rows)
            if not rows:
                break
        return deleted

    def mark_blobs(self, workspace: str, cutoff: float) -> tuple[list[tuple[str, int]], int]:
        """Choose and mark unreferenced blobs past the grace period; also count the deferred ones."""
        with self.transaction():
            marked = self.db.execute(
                f"SELECT b.digest, b.size {UNREFERENCED_BLOBS} AND b.touched_at < ?", (workspace, cutoff)
            ).fetchall()
            self.db.executemany(
                "UPDATE blobs SET deleting = 1 WHERE workspace = ? AND digest = ?", [(workspace, d) for d, _ in marked]
            )
            deferred = self.db.execute(
                f"SELECT COUNT(*) {UNREFERENCED_BLOBS} AND b.touched_at >= ?", (workspace, cutoff)
            ).fetchone()[0]
        return marked, deferred

    def still_marked(self, workspace: str, digests: list[str]) -> list[str]:
        """Those of `digests` still marked: a re-upload of the same content un-marks its row."""
        marks = ",".join("?" * len(digests))
        rows = self.db.execute(
            f"SELECT digest FROM blobs WHERE workspace = ? AND deleting = 1 AND digest IN ({marks})",
            (workspace, *digests),
        ).fetchall()
        return [r[0] for r in rows]

    def forget_blobs(self, workspace: str, digests: list[str]) -> None:
        with self.transaction():
            for digest in digests:
                self.forget_blob(workspace, digest)

    def known_digests(self, workspace: str) -> set[str]:
        """Every blob the workspace has a row for (marked or not): a file without one is an orphan."""
        return {r[0] for r in self.db.execute("SELECT digest FROM blobs WHERE workspace = ?", (workspace,))}

    def oldest_unreferenced(self, workspace: str) -> float | None:
        """When the oldest thing a later collection could free was last touched: an unreferenced
        blob, or an untagged manifest no index references (a deleted tag's manifest, whose blobs
        only become unreferenced once it is swept)."""
        blob = self.db.execute(f"SELECT MIN(b.touched_at) {UNREFERENCED_BLOBS}", (workspace,)).fetchone()[0]
        manifest = self.db.execute(f"SELECT MIN(m.touched_at) {LOOSE_MANIFESTS}", (workspace,)).fetchone()[0]
        return min((t for t in (blob, manifest) if t is not None), default=None)

    def reclaimable(self, workspace: str, cutoff: float) -> tuple[int, int]:
        """(bytes, blobs) a collection with this cutoff would free.

        A blob is kept while a manifest that the collection keeps references it: a tagged manifest,
        one touched since the cutoff, or one such a manifest (an index) references. So a deleted
        tag's blobs count as reclaimable at once, though their untagged manifest is still stored.
        """
        return self.db.execute(
            "WITH RECURSIVE live (package_id, digest) AS ("
            "   SELECT m.package_id, m.digest FROM manifests m JOIN packages p ON p.id = m.package_id"
            f"   WHERE p.workspace = ? AND (m.touched_at >= ? OR {TAGGED})"
            "   UNION"
            "   SELECT r.package_id, r.target FROM manifest_refs r"
            "   JOIN live l ON r.package_id = l.package_id AND r.manifest_digest = l.digest WHERE r.kind = 'manifest')"
            " SELECT COALESCE(SUM(b.size), 0), COUNT(*) FROM blobs b"
            " WHERE b.workspace = ? AND b.touched_at < ? AND NOT EXISTS ("
            "   SELECT 1 FROM manifest_refs r"
            "   JOIN live l ON r.package_id = l.package_id AND r.manifest_digest = l.digest"
            "   WHERE r.kind = 'blob' AND r.target = b.digest)",
            (workspace, cutoff, workspace, cutoff),
        ).fetchone()

    def storage_figures(self, workspace: str, grace_seconds: float) -> StorageFigures:
        """What the workspace stores, and what a collection would free (now, and once the grace period passes)."""
        blob_bytes, blobs = self.db.execute(
            "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM blobs WHERE workspace = ?", (workspace,)
        ).fetchone()
        eventually = self.reclaimable(workspace, math.inf)
        now = self.reclaimable(workspace, time.time() - grace_seconds)
        manifests, manifest_bytes = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM manifests m JOIN packages p ON p.id = m.package_id"
            " WHERE p.workspace = ?", (workspace,)
        ).fetchone()
        return StorageFigures(blob_bytes, blobs, manifests, manifest_bytes, eventually[0], eventually[1], now[0])
