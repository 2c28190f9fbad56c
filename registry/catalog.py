"""Read-side queries for the management API: images, tags, sizes and storage figures.

Functions take the Metadata object and run on its thread (via `Store.db`).
"""
from __future__ import annotations

import math
import time

from .metadata import Metadata, Package


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


def manifest_size(meta: Metadata, package: Package, digest: str, _depth: int = 0) -> int:
    """Bytes a manifest brings: its body, its blobs, and for an index its manifests' sizes."""
    row = meta.db.execute(
        "SELECT length(body) FROM manifests WHERE package_id = ? AND digest = ?", (package.id, digest)
    ).fetchone()
    if row is None:
        return 0
    total = row[0]
    for kind, target, size in meta.manifest_refs(package, digest):
        if kind == "blob":
            total += size
        elif _depth < 4:
            total += manifest_size(meta, package, target, _depth + 1)
    return total


def package_summary(meta: Metadata, package: Package, project: str | None) -> dict:
    tags = meta.tags(package)
    updated = max((t[2] for t in tags), default=None)
    return {
        "name": package.name,
        "workspace": package.workspace,
        "repository": package.repository,
        "project": project,
        "reference": f"crg.apkg.io/{package.workspace}/{package.name}",
        "tags": len(tags),
        "created_at": _iso(package.created_at),
        "updated_at": _iso(updated),
    }


def package_details(meta: Metadata, package: Package, project: str | None) -> dict:
    tags = meta.tags(package)
    manifests = meta.db.execute(
        "SELECT digest, media_type, created_at FROM manifests WHERE package_id = ? ORDER BY created_at", (package.id,)
    ).fetchall()
    by_digest: dict[str, list[str]] = {}
    for tag, digest, _ in tags:
        by_digest.setdefault(digest, []).append(tag)
    blob_sizes = dict(meta.db.execute(
        "SELECT r.target, r.size FROM manifest_refs r WHERE r.package_id = ? AND r.kind = 'blob'", (package.id,)
    ).fetchall())
    body_bytes = meta.db.execute(
        "SELECT COALESCE(SUM(length(body)), 0) FROM manifests WHERE package_id = ?", (package.id,)
    ).fetchone()[0]
    return {
        **package_summary(meta, package, project),
        "size": sum(blob_sizes.values()) + body_bytes,
        "tags": [
            {"name": tag, "digest": digest, "size": manifest_size(meta, package, digest), "updated_at": _iso(ts)}
            for tag, digest, ts in tags
        ],
        "manifests": [
            {"digest": d, "media_type": mt, "size": manifest_size(meta, package, d),
             "tags": by_digest.get(d, []), "created_at": _iso(ts)}
            for d, mt, ts in manifests
        ],
    }


def reclaimable(meta: Metadata, workspace: str, cutoff: float) -> tuple[int, int]:
    """(bytes, blobs) a collection with this cutoff would free.

    A blob is kept while a manifest that the collection keeps references it: a tagged manifest,
    one touched since the cutoff, or one such a manifest (an index) references. So a deleted
    tag's blobs count as reclaimable at once, though their untagged manifest is still stored.
    """
    return meta.db.execute(
        "WITH RECURSIVE live (package_id, digest) AS ("
        "   SELECT m.package_id, m.digest FROM manifests m JOIN packages p ON p.id = m.package_id"
        "   WHERE p.workspace = ? AND (m.touched_at >= ? OR EXISTS ("
        "     SELECT 1 FROM tags t WHERE t.package_id = m.package_id AND t.digest = m.digest))"
        "   UNION"
        "   SELECT r.package_id, r.target FROM manifest_refs r"
        "   JOIN live l ON r.package_id = l.package_id AND r.manifest_digest = l.digest WHERE r.kind = 'manifest')"
        " SELECT COALESCE(SUM(b.size), 0), COUNT(*) FROM blobs b"
        " WHERE b.workspace = ? AND b.touched_at < ? AND NOT EXISTS ("
        "   SELECT 1 FROM manifest_refs r JOIN live l ON r.package_id = l.package_id AND r.manifest_digest = l.digest"
        "   WHERE r.kind = 'blob' AND r.target = b.digest)",
        (workspace, cutoff, workspace, cutoff),
    ).fetchone()


def storage(meta: Metadata, workspace: str, grace_seconds: float) -> dict:
    """What the workspace stores, and what a collection would free (now, and once the grace period passes)."""
    stored, count = meta.db.execute(
        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM blobs WHERE workspace = ?", (workspace,)
    ).fetchone()
    eventually = reclaimable(meta, workspace, math.inf)
    now = reclaimable(meta, workspace, time.time() - grace_seconds)
    manifests, manifest_bytes = meta.db.execute(
        "SELECT COUNT(*), COALESCE(SUM(length(body)), 0) FROM manifests m JOIN packages p ON p.id = m.package_id"
        " WHERE p.workspace = ?", (workspace,)
    ).fetchone()
    return {
        "workspace": workspace,
        "stored_bytes": stored + manifest_bytes,
        "blob_bytes": stored,
        "blobs": count,
        "manifests": manifests,
        "reclaimable_bytes": eventually[0],
        "reclaimable_blobs": eventually[1],
        "reclaimable_now_bytes": now[0],
        "grace_seconds": grace_seconds,
    }
