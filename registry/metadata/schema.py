"""The tables, the connection's settings, and the one way to write: `Transaction`."""
from __future__ import annotations

import sqlite3
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
CREATE TABLE IF NOT EXISTS workspace_settings (
    workspace TEXT PRIMARY KEY,
    immutable_tags TEXT NOT NULL,
    seeded_from TEXT NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT
);
"""


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit mode (transactions are explicit); WAL with synchronous=NORMAL makes every
    committed transaction survive a killed process."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)
    return db


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception; nests as a no-op.

    IMMEDIATE takes the write lock at BEGIN, not at the first write: what the transaction read
    first (a manifest's references, a collection's candidates) still holds when it writes.
    """

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


class Queries:
    """What every group of queries stands on: the connection and `transaction()`."""

    db: sqlite3.Connection

    def transaction(self) -> Transaction:
        """Group writes (and the reads they depend on) into one atomic step."""
        return Transaction(self.db)
