"""A workspace's Container settings (immutable tags): seeded from the config, changed through the API or pages."""
from __future__ import annotations

import time

from ..immutable_tags import NONE, ImmutableTags, from_json
from .schema import Queries


class SettingsQueries(Queries):
    def seed_settings(self, workspace: str, config_json: str) -> bool:
        """Take the config's settings when the workspace has none yet, or when the config's differ from
        those it gave last time (the file was edited since: the newer deliberate change). Otherwise the
        stored settings, perhaps changed through the API, stay. Returns whether the config's were taken."""
        with self.transaction():
            row = self.db.execute(
                "SELECT seeded_from FROM workspace_settings WHERE workspace = ?", (workspace,)
            ).fetchone()
            if row is not None and row[0] == config_json:
                return False
            self.db.execute(
                "INSERT INTO workspace_settings (workspace, immutable_tags, seeded_from, updated_at, updated_by)"
                " VALUES (?, ?, ?, ?, NULL) ON CONFLICT (workspace) DO UPDATE SET"
                " immutable_tags = excluded.immutable_tags, seeded_from = excluded.seeded_from,"
                " updated_at = excluded.updated_at, updated_by = NULL",
                (workspace, config_json, config_json, time.time()),
            )
            return True

    def immutable_tags(self, workspace: str) -> ImmutableTags:
        row = self.db.execute(
            "SELECT immutable_tags FROM workspace_settings WHERE workspace = ?", (workspace,)
        ).fetchone()
        return from_json(row[0]) if row else NONE

    def set_immutable_tags(self, workspace: str, settings: ImmutableTags, username: str) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE workspace_settings SET immutable_tags = ?, updated_at = ?, updated_by = ? WHERE workspace = ?",
                (settings.to_json(), time.time(), username, workspace),
            )
