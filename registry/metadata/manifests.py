"""Manifests, the references each one makes, and the tags that point at them."""
from __future__ import annotations

import time

from ..immutable_tags import TagDeleteRefused, TagOverwriteRefused
from .blobs import BlobQueries
from .records import ManifestRecord, Package
from .settings import SettingsQueries


class ManifestQueries(BlobQueries, SettingsQueries):
    def manifest(self, package: Package, digest: str) -> ManifestRecord | None:
        row = self.db.execute(
            "SELECT digest, media_type, body, created_at FROM manifests WHERE package_id = ? AND digest = ?",
            (package.id, digest),
        ).fetchone()
        return ManifestRecord(row[0], row[1], bytes(row[2]), row[3]) if row else None

    def tag_digest(self, package: Package, tag: str) -> str | None:
        row = self.db.execute("SELECT digest FROM tags WHERE package_id = ? AND tag = ?", (package.id, tag)).fetchone()
        return row[0] if row else None

    def wrong_sizes(self, package: Package, blobs: list[tuple[str, int]], children: list[tuple[str, int]]) -> list[str]:
        """References the package has whose declared size is not the content's (a digest's size never changes)."""
        wrong = []
        for digest, size in blobs:
            record = self.blob(package, digest)
            if record is not None and record.size != size:
                wrong.append(f"{digest} has {record.size} bytes, not {size}")
        for digest, size in children:
            child = self.manifest(package, digest)
            if child is not None and len(child.body) != size:
                wrong.append(f"{digest} has {len(child.body)} bytes, not {size}")
        return wrong

    def put_manifest(
        self,
        package: Package,
        digest: str,
        media_type: str,
        body: bytes,
        blobs: list[tuple[str, int]],
        children: list[tuple[str, int]],
        tag: str | None,
    ) -> tuple[list[str], str | None]:
        """Store a manifest whose references exist; return (missing references, digest the tag left).

        References are checked in the same transaction that stores the manifest, so a
        collection cannot delete a referenced blob between the check and the write. So is the
        tag: an immutable tag that holds another digest raises TagOverwriteRefused before anything is
        written (of two pushes to a new immutable tag, the second sees the first's digest), and
        one that holds this digest is left as it is.
        """
        now = time.time()
        with self.transaction():
            missing = [d for d, _ in blobs if self.blob(package, d) is None]
            missing += [d for d, _ in children if self.manifest(package, d) is None]
            if missing:
                return missing, None
            previous = self.tag_digest(package, tag) if tag is not None else None
            protection = self.immutable_tags(package.workspace).protection(tag) if previous is not None else None
            if protection is not None and previous != digest:
                raise TagOverwriteRefused(package.workspace, package.name, tag, previous, protection)
            self.db.execute(
                "INSERT INTO manifests (package_id, digest, media_type, body, created_at, touched_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (package_id, digest) DO UPDATE SET touched_at = excluded.touched_at",
                (package.id, digest, media_type, body, now, now),
            )
            refs = [("blob", d, s) for d, s in blobs] + [("manifest", d, s) for d, s in children]
            self.db.executemany(
                "INSERT OR IGNORE INTO manifest_refs (package_id, manifest_digest, kind, target, size)"
                " VALUES (?, ?, ?, ?, ?)",
                [(package.id, digest, kind, target, size) for kind, target, size in refs],
            )
            for d, _ in blobs:
                self.touch_blob(package.workspace, d, at=now)
            if tag is not None and protection is None:
                self.db.execute(
                    "INSERT INTO tags (package_id, tag, digest, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT"
                    " (package_id, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
                    (package.id, tag, digest, now),
                )
        return [], previous if previous != digest else None

    def delete_tag(self, package: Package, tag: str, workspace_admin: bool) -> bool:
        """False when there is no such tag; TagDeleteRefused for an immutable one unless by a workspace admin."""
        with self.transaction():
            held = self.tag_digest(package, tag)
            protection = self.immutable_tags(package.workspace).protection(tag) if held else None
            if protection is not None and not workspace_admin:
                raise TagDeleteRefused(package.workspace, package.name, tag, held, protection)
            return self.db.execute("DELETE FROM tags WHERE package_id = ? AND tag = ?", (package.id, tag)).rowcount > 0
