"""A big workspace for the UI phase, seeded straight through the registry's metadata layer.

`registry.metadata` in one transaction, with a real blob file for each config and layer, so 1,000 images
and 10,000 tags are built in seconds rather than through 10,000 pushes; the registry is then started on
that root as a real process.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.accounts import TOKENS
from registry.blobfiles import BlobFiles
from registry.manifests import DOCKER_MANIFEST
from registry.metadata import Metadata

WORKSPACE = "acme"
REPOSITORIES = {f"repo-{i}": f"P{i % 3}" for i in range(10)}
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG = "application/vnd.docker.container.image.v1+json"


def config() -> dict:
    """The seeded workspace: ten repositories in three projects, boss admin of every one."""
    return {
        "workspaces": {WORKSPACE: {
            "repositories": {repo: {"project": key} for repo, key in REPOSITORIES.items()},
            "members": {"boss": {"token": TOKENS["boss"], "roles": {repo: "admin" for repo in REPOSITORIES}}},
        }},
        "gc": {"grace_seconds": 900},
    }


def _blob(files: BlobFiles, meta: Metadata, package, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = files.blob_path(WORKSPACE, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    meta.add_blob(package, digest, len(data))
    return digest, len(data)


def seed(root: Path, images: int, tags_per_image: int) -> None:
    """`images` packages, each with one layer and `tags_per_image` tags on distinct manifests."""
    root.mkdir(parents=True, exist_ok=True)
    files, meta = BlobFiles(root), Metadata(root / "metadata.db")
    repos = list(REPOSITORIES)
    try:
        with meta.transaction():  # one transaction for the whole seed
            for i in range(images):
                package = meta.create_package(WORKSPACE, f"img-{i:04d}", repos[i % len(repos)])
                layer = _blob(files, meta, package, f"layer of image {i}".encode() * 64)
                for t in range(tags_per_image):
                    cfg = _blob(files, meta, package, json.dumps(
                        {"os": "linux", "architecture": "amd64", "created": "2026-11-25T00:00:00Z",
                         "config": {"Entrypoint": ["/app"]}, "tag": t, "image": i}).encode())
                    body = json.dumps({
                        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                        "config": {"mediaType": CONFIG, "digest": cfg[0], "size": cfg[1]},
                        "layers": [{"mediaType": LAYER, "digest": layer[0], "size": layer[1]}],
                    }).encode()
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    missing, _ = meta.put_manifest(package, digest, DOCKER_MANIFEST, body, [cfg, layer], [], f"v{t}")
                    assert not missing, missing
    finally:
        meta.close()
