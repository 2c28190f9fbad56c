"""The two registries the bench measures, as it starts them: the embedded one (harness/registry_process.py, with the
bench's config) and distribution 2.8 (harness/reference_registry.py, no auth, quiet logs); where the blob phases
address each; and the purge of measured blobs from a registry's root."""
from __future__ import annotations

import shutil
from pathlib import Path

from harness.accounts import TOKENS
from harness.reference_registry import DistributionRegistry
from harness.registry_process import RegistryProcess

from .blobs import Target

WORKSPACE = "acme"
BLOB_PACKAGE = "bench-blobs"
SMALL_PACKAGE = "bench-small"


def bench_config() -> dict:
    """Production limits (32 GiB layers, 7 minutes), a long grace so no collection runs mid-benchmark."""
    return {
        "workspaces": {WORKSPACE: {
            "repositories": {"web-app": {"project": "WEB"}},
            "packages": {BLOB_PACKAGE: "web-app", SMALL_PACKAGE: "web-app"},
            "members": {"pipelines": {"token": TOKENS["pipelines"], "roles": {"web-app": "write"}},
                        "boss": {"token": TOKENS["boss"], "roles": {"web-app": "admin"}}},
        }},
        "limits": {"max_layer_bytes": 32 * 1024**3, "upload_timeout_seconds": 420},
        "gc": {"grace_seconds": 900},
        "auth": {"token_ttl_seconds": 3600},
    }


class EmbeddedRegistry(RegistryProcess):
    label = "embedded"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir / "root", bench_config())

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def target(self, package: str, user: str = "pipelines") -> Target:
        repository = f"{WORKSPACE}/{package}"
        token = self.token(user, f"repository:{repository}:pull,push")
        return Target(self.label, "127.0.0.1", self.port, repository, f"Bearer {token}")


class ReferenceRegistry(DistributionRegistry):
    label = "reference"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, quiet=True)

    def target(self, package: str) -> Target:
        return Target(self.label, "127.0.0.1", self.port, f"{WORKSPACE}/{package}")


def purge_blobs(root: Path, digests: list[str]) -> int:
    """Delete the stored content of each digest under `root` (embedded: `blobs/<ws>/sha256/<xx>/<hex>`,
    distribution: `.../blobs/sha256/<xx>/<hex>/data`); return how many entries were removed. A run then leaves
    no tens of GiB of dirty pages to the disk, and disk use stays bounded; the metadata, which no later
    measurement reads, still lists the blobs."""
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
