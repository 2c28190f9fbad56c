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


def package_summaries(meta: Metadata, packages: list[Package], projects: dict[str, str]) -> list[dict]:
    """Summaries of many packages in three queries (a page of a long list stays fast).

    `size` counts each blob the package's manifests reference once, plus the manifests' bodies.
    """
    tags: dict[int, tuple[int, float]] = {}
    blob_bytes: dict[int, int] = {}
    body_bytes: dict[int, int] = {}
    for i in range(0, len(packages), 500):
        ids = [p.id for p in packages[i:i + 500]]
        marks = ",".join("?" * len(ids))
        for pid, count, updated in meta.db.execute(
            f"SELECT package_id, COUNT(*), MAX(updated_at) FROM tags WHERE package_id IN ({marks}) GROUP BY package_id", ids
        ):
            tags[pid] = (count, updated)
        blob_bytes.update(meta.db.execute(
            f"SELECT package_id, SUM(size) FROM (SELECT DISTINCT package_id, target, size FROM manifest_refs"
            f" WHERE kind = 'blob' AND package_id IN ({marks})) GROUP BY package_id", ids
        ).fetchall())
        body_bytes.update(meta.db.execute(
            f"SELECT package_id, SUM(length(body)) FROM manifests WHERE package_id IN ({marks}) GROUP BY package_id", ids
        ).fetchall())
    out = []
    for p in packages:
        count, updated = tags.get(p.id, (0, None))
        out.append({
            "name": p.name,
            "workspace": p.workspace,
            "repository": p.repository,
            "project": projects.get(p.repository),
            "reference": f"crg.apkg.io/{p.workspace}/{p.name}",
            "tags": count,
            "size": blob_bytes.get(p.id, 0) + body_bytes.get(p.id, 0),
            "created_at": _iso(p.created_at),
            "updated_at": _iso(updated),
        })
    return out


def package_summary(meta: Metadata, package: Package, project: str | None) -> dict:
    return package_summaries(meta, [package], {package.repository: project} if project else {})[0]


def package_details(meta: Metadata, package: Package, project: str | None) -> dict:
    tags = meta.tags(package)
    manifests = meta.db.execute(
        "SELECT digest, media_type, created_at FROM manifests WHERE package_id = ? ORDER BY created_at", (package.id,)
    ).fetchall()
    by_digest: dict[str, list[str]] = {}
    for tag, digest, _ in tags:
        by_digest.setdefault(digest, []).append(tag)
    return {
        **package_summary(meta, package, project),
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
