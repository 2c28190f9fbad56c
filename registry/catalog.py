"""Read-side queries for the management API: images, tags, sizes and storage figures.

Functions take the Metadata object and run on its thread (via `Store.db`).
"""
from __future__ import annotations

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


def storage(meta: Metadata, workspace: str, grace_seconds: float) -> dict:
    """What the workspace stores, and what a collection would free (now, and once the grace period passes)."""
    stored, count = meta.db.execute(
        "SELECT COALESCE(SUM(size), 0), COUNT(*) FROM blobs WHERE workspace = ?", (workspace,)
    ).fetchone()
    unreferenced = meta.db.execute(
        "SELECT COALESCE(SUM(b.size), 0), COUNT(*), COALESCE(SUM(CASE WHEN b.touched_at < ? THEN b.size ELSE 0 END), 0)"
        " FROM blobs b WHERE b.workspace = ? AND NOT EXISTS ("
        "   SELECT 1 FROM manifest_refs r JOIN packages p ON p.id = r.package_id"
        "   WHERE p.workspace = b.workspace AND r.kind = 'blob' AND r.target = b.digest)",
        (time.time() - grace_seconds, workspace),
    ).fetchone()
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
        "reclaimable_bytes": unreferenced[0],
        "reclaimable_blobs": unreferenced[1],
        "reclaimable_now_bytes": unreferenced[2],
        "grace_seconds": grace_seconds,
    }
