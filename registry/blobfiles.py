"""Blob and upload files on disk: content-addressed, one blob store per workspace.

Paths are built only from validated workspace slugs, sha256 hex digests and upload ids,
so nothing a client sends can point outside the root.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .digests import ALGORITHM, digest_from_hex
from .names import SHA256_HEX_RE, is_slug, is_upload_id


class BlobFiles:
    def __init__(self, root: Path) -> None:
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def blob_path(self, workspace: str, digest: str) -> Path:
        algorithm, _, hex_ = digest.partition(":")
        if not is_slug(workspace) or algorithm != ALGORITHM or not SHA256_HEX_RE.match(hex_):
            raise ValueError(f"refusing to build a path from {workspace!r} and {digest!r}")
        return self.blobs / workspace / ALGORITHM / hex_[:2] / hex_

    def upload_path(self, upload_id: str) -> Path:
        if not is_upload_id(upload_id):
            raise ValueError(f"refusing to build a path from upload id {upload_id!r}")
        return self.uploads / upload_id

    def commit(self, upload_id: str, workspace: str, digest: str) -> None:
        """Move a verified upload into place; a blob already stored keeps its file."""
        src, dst = self.upload_path(upload_id), self.blob_path(workspace, digest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            src.unlink(missing_ok=True)
        else:
            os.replace(src, dst)

    def discard_upload(self, upload_id: str) -> None:
        self.upload_path(upload_id).unlink(missing_ok=True)

    def remove_blob(self, workspace: str, digest: str) -> None:
        self.blob_path(workspace, digest).unlink(missing_ok=True)

    def purge_uploads(self) -> int:
        """Upload sessions live in memory, so after a restart their files are garbage."""
        count = 0
        for entry in self.uploads.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            count += 1
        return count

    def stored_files(self, workspace: str) -> list[str]:
        """Digests of the blob files present for a workspace (to find orphans left by a crash)."""
        base = self.blobs / workspace / ALGORITHM
        if not base.is_dir():
            return []
        return [digest_from_hex(p.name) for p in base.glob("*/*") if SHA256_HEX_RE.match(p.name)]
