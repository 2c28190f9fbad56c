"""Packages: created from the config or the management API, deleted with everything they hold."""
from __future__ import annotations

import time

from ..immutable_tags import ImageHoldsImmutableTags
from .records import Package
from .settings import SettingsQueries

PACKAGE = "SELECT id, workspace, name, repository, created_at FROM packages"


class PackageQueries(SettingsQueries):
    def seed_packages(self, workspace: str, packages: dict[str, str]) -> None:
        """Create the config's packages once; one deleted later stays deleted across restarts."""
        now = time.time()
        with self.transaction():
            for name, repository in packages.items():
                self.db.execute(
                    "INSERT OR IGNORE INTO packages (workspace, name, repository, created_at) VALUES (?, ?, ?, ?)",
                    (workspace, name, repository, now),
                )

    def package(self, workspace: str, name: str) -> Package | None:
        row = self.db.execute(
            f"{PACKAGE} WHERE workspace = ? AND name = ? AND deleted_at IS NULL", (workspace, name)
        ).fetchone()
        return Package(*row) if row else None

    def packages(self, workspace: str) -> list[Package]:
        rows = self.db.execute(
            f"{PACKAGE} WHERE workspace = ? AND deleted_at IS NULL ORDER BY name", (workspace,)
        ).fetchall()
        return [Package(*r) for r in rows]

    def create_package(self, workspace: str, name: str, repository: str) -> Package | None:
        """None when a live package of that name exists already; a deleted one comes back empty."""
        now = time.time()
        with self.transaction():
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

    def delete_package(self, package: Package, workspace_admin: bool) -> int:
        """Remove the image with all its tags and manifests; the blobs wait for a collection.
        ImageHoldsImmutableTags when immutable tags would go, unless by a workspace admin."""
        with self.transaction():
            if not workspace_admin:
                settings = self.immutable_tags(package.workspace)
                tags = [r[0] for r in self.db.execute(
                    "SELECT tag FROM tags WHERE package_id = ? ORDER BY tag", (package.id,))]
                held = [t for t in tags if settings.protection(t) is not None]
                if held:
                    raise ImageHoldsImmutableTags(package.workspace, package.name, held)
            tags = self.db.execute("DELETE FROM tags WHERE package_id = ?", (package.id,)).rowcount
            self.db.execute("DELETE FROM manifest_refs WHERE package_id = ?", (package.id,))
            self.db.execute("DELETE FROM manifests WHERE package_id = ?", (package.id,))
            self.db.execute("DELETE FROM package_blobs WHERE package_id = ?", (package.id,))
            self.db.execute("UPDATE packages SET deleted_at = ? WHERE id = ?", (time.time(), package.id))
        return tags
