"""Metadata in SQLite: packages, manifests, tags, references, blob records, upload sessions.

Every method runs on one dedicated thread (see `store.py`), so calls are serialised and the
connection is never shared between threads. WAL with synchronous=NORMAL makes every committed
transaction survive a killed process; the blob files themselves are content-addressed and only
become visible through a row committed here after their digest was verified.
"""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS packages (
    id INTEGER PRIMARY KEY,
    workspace TEXT NOT NULL,
    name TEXT NOT NULL,
    repository TEXT NOT NULL,
    created_at REAL NOT NULL,
    deleted_at REAL,
    UNIQUE (workspace, name)
);
CREATE TABLE IF NOT EXISTS blobs (
    workspace TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    touched_at REAL NOT NULL,
    deleting INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace, digest)
);
CREATE TABLE IF NOT EXISTS package_blobs (
    package_id INTEGER NOT NULL REFERENCES packages(id),
    digest TEXT NOT NULL,
    PRIMARY KEY (package_id, digest)
);
CREATE TABLE IF NOT EXISTS manifests (
    package_id INTEGER NOT NULL REFERENCES packages(id),
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    touched_at REAL NOT NULL,
    PRIMARY KEY (package_id, digest)
);
CREATE TABLE IF NOT EXISTS manifest_refs (
    package_id INTEGER NOT NULL,
    manifest_digest TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    target TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (package_id, manifest_digest, kind, target)
);
CREATE INDEX IF NOT EXISTS manifest_refs_target ON manifest_refs (kind, target);
CREATE TABLE IF NOT EXISTS tags (
    package_id INTEGER NOT NULL REFERENCES packages(id),
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (package_id, tag)
);
"""


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


class Metadata:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- transactions -------------------------------------------------------------------
    def _write(self):
        return _Transaction(self.db)

    # -- packages -----------------------------------------------------------------------
    def seed_packages(self, workspace: str, packages: dict[str, str]) -> None:
        """Create the config's packages once; one deleted later stays deleted across restarts."""
        now = time.time()
        with self._write():
            for name, repository in packages.items():
                self.db.execute(
                    "INSERT OR IGNORE INTO packages (workspace, name, repository, created_at) VALUES (?, ?, ?, ?)",
                    (workspace, name, repository, now),
                )

    def package(self, workspace: str, name: str) -> Package | None:
        row = self.db.execute(
            "SELECT id, workspace, name, repository, created_at FROM packages"
            " WHERE workspace = ? AND name = ? AND deleted_at IS NULL",
            (workspace, name),
        ).fetchone()
        return Package(*row) if row else None

    def packages(self, workspace: str) -> list[Package]:
        rows = self.db.execute(
            "SELECT id, workspace, name, repository, created_at FROM packages"
            " WHERE workspace = ? AND deleted_at IS NULL ORDER BY name",
            (workspace,),
        ).fetchall()
        return [Package(*r) for r in rows]

    def create_package(self, workspace: str, name: str, repository: str) -> Package | None:
        """None when a live package of that name exists already."""
        now = time.time()
        with self._write():
            row = self.db.execute(
                "SELECT id, deleted_at FROM packages WHERE workspace = ? AND name = ?", (workspace, name)
            ).fetchone()
            if row and row[1] is None:
                return None
            if row:
                self.db.execute(
                    "UPDATE packages SET repository = ?, created_at = ?, deleted_at = NULL WHERE id = ?",
                    (repository, now, row[0]),
                )
            else:
                self.db.execute(
                    "INSERT INTO packages (workspace, name, repository, created_at) VALUES (?, ?, ?, ?)",
                    (workspace, name, repository, now),
                )
        return self.package(workspace, name)

    def delete_package(self, package: Package) -> int:
        """Remove the image with all its tags and manifests; the blobs wait for a collection."""
        with self._write():
            tags = self.db.execute("DELETE FROM tags WHERE package_id = ?", (package.id,)).rowcount
            self.db.execute("DELETE FROM manifest_refs WHERE package_id = ?", (package.id,))
            self.db.execute("DELETE FROM manifests WHERE package_id = ?", (package.id,))
            self.db.execute("DELETE FROM package_blobs WHERE package_id = ?", (package.id,))
            self.db.execute("UPDATE packages SET deleted_at = ? WHERE id = ?", (time.time(), package.id))
        return tags

    # -- blobs --------------------------------------------------------------------------
    def blob(self, package: Package, digest: str, touch: bool = False) -> BlobRecord | None:
        """The blob as seen from a package: present in the workspace and linked to the package."""
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

    def touch_blob(self, workspace: str, digest: str) -> None:
        with self._write():
            self.db.execute(
                "UPDATE blobs SET touched_at = ? WHERE workspace = ? AND digest = ?", (time.time(), workspace, digest)
            )

    def add_blob(self, package: Package, digest: str, size: int) -> None:
        """Record a verified blob and link it to the package.

        A blob a collection has marked for deletion is taken back: the caller holds the
        workspace lock and has just put the file in place, so the collection skips it.
        """
        now = time.time()
        with self._write():
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
            self.db.execute(
                "INSERT OR IGNORE INTO package_blobs (package_id, digest) VALUES (?, ?)", (package.id, digest)
            )

    def mount_blob(self, package: Package, digest: str) -> BlobRecord | None:
        """Link a blob the workspace already stores to another package of it (a cross-repository mount)."""
        with self._write():
            rec = self.workspace_blob(package.workspace, digest)
            if rec is None:
                return None
            self.db.execute(
                "UPDATE blobs SET touched_at = ? WHERE workspace = ? AND digest = ?",
                (time.time(), package.workspace, digest),
            )
            self.db.execute(
                "INSERT OR IGNORE INTO package_blobs (package_id, digest) VALUES (?, ?)", (package.id, digest)
            )
        return rec

    def interrupted_deletions(self) -> list[tuple[str, str]]:
        """Blobs a collection had marked when the process died: their deletion is finished at start."""
        return self.db.execute("SELECT workspace, digest FROM blobs WHERE deleting = 1").fetchall()

    def forget_blob(self, workspace: str, digest: str) -> None:
        with self._write():
            self.db.execute("DELETE FROM blobs WHERE workspace = ? AND digest = ?", (workspace, digest))
            self.db.execute(
                "DELETE FROM package_blobs WHERE digest = ? AND package_id IN (SELECT id FROM packages WHERE workspace = ?)",
                (digest, workspace),
            )

    # -- manifests and tags -------------------------------------------------------------
    def manifest(self, package: Package, digest: str) -> ManifestRecord | None:
        row = self.db.execute(
            "SELECT digest, media_type, body, created_at FROM manifests WHERE package_id = ? AND digest = ?",
            (package.id, digest),
        ).fetchone()
        return ManifestRecord(row[0], row[1], bytes(row[2]), row[3]) if row else None

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

    def tag_digest(self, package: Package, tag: str) -> str | None:
        row = self.db.execute(
            "SELECT digest FROM tags WHERE package_id = ? AND tag = ?", (package.id, tag)
        ).fetchone()
        return row[0] if row else None

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
        collection cannot delete a referenced blob between the check and the write.
        """
        now = time.time()
        with self._write():
            missing = [d for d, _ in blobs if self.db.execute(
                "SELECT 1 FROM blobs b JOIN package_blobs pb ON pb.digest = b.digest"
                " WHERE b.workspace = ? AND b.digest = ? AND pb.package_id = ? AND b.deleting = 0",
                (package.workspace, d, package.id)).fetchone() is None]
            missing += [d for d, _ in children if self.db.execute(
                "SELECT 1 FROM manifests WHERE package_id = ? AND digest = ?", (package.id, d)).fetchone() is None]
            if missing:
                return missing, None
            self.db.execute(
                "INSERT INTO manifests (package_id, digest, media_type, body, created_at, touched_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (package_id, digest) DO UPDATE SET touched_at = excluded.touched_at",
                (package.id, digest, media_type, body, now, now),
            )
            refs = [("blob", d, s) for d, s in blobs] + [("manifest", d, s) for d, s in children]
            self.db.executemany(
                "INSERT OR IGNORE INTO manifest_refs (package_id, manifest_digest, kind, target, size) VALUES (?, ?, ?, ?, ?)",
                [(package.id, digest, kind, target, size) for kind, target, size in refs],
            )
            for d, _ in blobs:
                self.db.execute("UPDATE blobs SET touched_at = ? WHERE workspace = ? AND digest = ?", (now, package.workspace, d))
            previous = None
            if tag is not None:
                previous = self.tag_digest(package, tag)
                self.db.execute(
                    "INSERT INTO tags (package_id, tag, digest, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (package_id, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
                    (package.id, tag, digest, now),
                )
        return [], previous if previous != digest else None

    def delete_tag(self, package: Package, tag: str) -> bool:
        with self._write():
            return self.db.execute(
                "DELETE FROM tags WHERE package_id = ? AND tag = ?", (package.id, tag)
            ).rowcount > 0

    def tags(self, package: Package) -> list[tuple[str, str, float]]:
        return self.db.execute(
            "SELECT tag, digest, updated_at FROM tags WHERE package_id = ? ORDER BY tag", (package.id,)
        ).fetchall()

    def manifest_refs(self, package: Package, digest: str) -> list[tuple[str, str, int]]:
        return self.db.execute(
            "SELECT kind, target, size FROM manifest_refs WHERE package_id = ? AND manifest_digest = ?",
            (package.id, digest),
        ).fetchall()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; nests as a no-op."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        if not self.db.in_transaction:
            self.db.execute("BEGIN IMMEDIATE")
            self.outer = True

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
