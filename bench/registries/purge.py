"""Remove measured blobs from a registry's root once measured, so a run leaves no tens of GiB of
dirty pages to the disk: the next measurement starts clean, and disk use stays bounded.

Both registries keep a blob in a file or directory named by its hex digest (embedded:
`blobs/<ws>/sha256/<xx>/<hex>`, distribution: `.../blobs/sha256/<xx>/<hex>/data`); the
registries' metadata still lists the blob, which no later measurement reads.
"""
from __future__ import annotations

import shutil
from pathlib import Path


def purge_blobs(root: Path, digests: list[str]) -> int:
    """Delete the stored content of each digest under `root`; return how many entries were removed."""
    wanted = {d.partition(":")[2] for d in digests}
    removed = 0
    for path in list(root.rglob("*")):
        if path.name in wanted and path.exists():
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    return removed
