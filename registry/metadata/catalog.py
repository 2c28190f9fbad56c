"""Read-side queries for listings: a package's figures, tags and manifests with their sizes."""
from __future__ import annotations

from .records import ManifestEntry, Package, PackageContents, PackageFigures, TagEntry
from .schema import Queries

BATCH = 500  # ids per IN (...) list, well under SQLite's limit on bound parameters
INDEX_DEPTH = 4  # an index of indexes is at most a few levels deep


class CatalogQueries(Queries):
    def package_figures(self, packages: list[Package]) -> dict[int, PackageFigures]:
        """Figures of many packages in three queries per batch (a page of a long list stays fast)."""
        tags: dict[int, tuple[int, float]] = {}
        blob_bytes: dict[int, int] = {}
        body_bytes: dict[int, int] = {}
        for i in range(0, len(packages), BATCH):
            ids = [p.id for p in packages[i:i + BATCH]]
            marks = ",".join("?" * len(ids))
            for pid, count, updated in self.db.execute(
                f"SELECT package_id, COUNT(*), MAX(updated_at) FROM tags WHERE package_id IN ({marks})"
                " GROUP BY package_id", ids
            ):
                tags[pid] = (count, updated)
            blob_bytes.update(self.db.execute(
                "SELECT package_id, SUM(size) FROM (SELECT DISTINCT package_id, target, size FROM manifest_refs"
                f" WHERE kind = 'blob' AND package_id IN ({marks})) GROUP BY package_id", ids
            ).fetchall())
            body_bytes.update(self.db.execute(
                f"SELECT package_id, SUM(length(body)) FROM manifests WHERE package_id IN ({marks})"
                " GROUP BY package_id", ids
            ).fetchall())
        figures = {}
        for p in packages:
            count, updated = tags.get(p.id, (0, None))
            figures[p.id] = PackageFigures(count, updated, blob_bytes.get(p.id, 0) + body_bytes.get(p.id, 0))
        return figures

    def manifest_size(self, package: Package, digest: str, _depth: int = 0) -> int:
        """Bytes a manifest brings: its body, its blobs, and for an index its manifests' sizes."""
        row = self.db.execute(
            "SELECT length(body) FROM manifests WHERE package_id = ? AND digest = ?", (package.id, digest)
        ).fetchone()
        if row is None:
            return 0
        total = row[0]
        refs = self.db.execute(
            "SELECT kind, target, size FROM manifest_refs WHERE package_id = ? AND manifest_digest = ?",
            (package.id, digest),
        ).fetchall()
        for kind, target, size in refs:
            if kind == "blob":
                total += size
            elif _depth < INDEX_DEPTH:
                total += self.manifest_size(package, target, _depth + 1)
        return total

    def package_contents(self, package: Package) -> PackageContents:
        tags = self.db.execute(
            "SELECT tag, digest, updated_at FROM tags WHERE package_id = ? ORDER BY tag", (package.id,)
        ).fetchall()
        manifests = self.db.execute(
            "SELECT digest, media_type, created_at FROM manifests WHERE package_id = ? ORDER BY created_at",
            (package.id,),
        ).fetchall()
        return PackageContents(
            self.package_figures([package])[package.id],
            [TagEntry(tag, digest, self.manifest_size(package, digest), ts) for tag, digest, ts in tags],
            [ManifestEntry(d, mt, self.manifest_size(package, d), ts) for d, mt, ts in manifests],
        )
