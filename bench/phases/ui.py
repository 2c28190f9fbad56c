"""The `ui` phase (BENCHMARKS.md, "The packages page"): the packages page of a workspace of 1,000 images and 10,000
tags, seeded straight through `registry.metadata` (seconds, not 10,000 pushes), beside the JSON API's listing."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import requests

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess
from harness.ui_client import UiClient
from pipe.oci import DOCKER_MANIFEST, Descriptor, docker_manifest
from registry.blobfiles import BlobFiles
from registry.metadata import Metadata

from ..phase import Context, Phase
from ..registries import WORKSPACE
from ..stats import ratio, rotate, summary

TARGET_MS = 200
REPOSITORIES = {f"repo-{i}": f"P{i % 3}" for i in range(10)}


def seeded_config() -> dict:
    """Ten repositories in three projects, boss admin of every one."""
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
        with meta.transaction():
            for i in range(images):
                package = meta.create_package(WORKSPACE, f"img-{i:04d}", repos[i % len(repos)])
                layer = _blob(files, meta, package, f"layer of image {i}".encode() * 64)
                for t in range(tags_per_image):
                    cfg = _blob(files, meta, package, json.dumps(
                        {"os": "linux", "architecture": "amd64", "created": "2026-11-25T00:00:00Z",
                         "config": {"Entrypoint": ["/app"]}, "tag": t, "image": i}).encode())
                    body = docker_manifest(Descriptor(*cfg), [Descriptor(*layer)])
                    digest = "sha256:" + hashlib.sha256(body).hexdigest()
                    missing, _ = meta.put_manifest(package, digest, DOCKER_MANIFEST, body, [cfg, layer], [], f"v{t}")
                    assert not missing, missing
    finally:
        meta.close()


def _timed(http: requests.Session, url: str, params: dict) -> float:
    started = time.perf_counter()
    r = http.get(url, params=params, timeout=30)
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds * 1000


class UiPhase(Phase):
    name = "ui"

    def run(self, ctx: Context) -> dict:
        return measure_pages(ctx.workdir / "ui", quick=ctx.quick)


def measure_pages(workdir: Path, quick: bool = False) -> dict:
    images, tags, reps = (100, 10, 5) if quick else (1000, 10, 30)
    t0 = time.monotonic()
    process = RegistryProcess(workdir / "root", seeded_config())  # writes the config; started after seeding
    seed(process.root, images, tags)
    seed_s = time.monotonic() - t0
    process.start()
    try:
        ui, api = UiClient(process.url), requests.Session()
        assert ui.login("boss").status_code == 200
        api.auth = ("boss", TOKENS["boss"])
        page, listing = f"{process.url}/ui/{WORKSPACE}/packages", f"{process.url}/api/workspaces/{WORKSPACE}/packages"
        pages = {"page": (ui.http, page, {}), "page_filtered": (ui.http, page, {"q": "img-09"}),
                 "page_last": (ui.http, page, {"page": "20"}), "api": (api, listing, {})}
        listed = api.get(listing, timeout=30).json()["packages"]
        assert len(listed) == images and sum(p["tags"] for p in listed) == images * tags
        first = ui.get(f"/ui/{WORKSPACE}/packages").text
        assert f"{images} images" in first and "img-0049" in first
        for args in pages.values():
            _timed(*args)  # warm-up (templates compiled, pages cached by SQLite)
        times: dict[str, list[float]] = {name: [] for name in pages}
        for rep in range(reps):
            for name in rotate(list(pages), rep):
                times[name].append(_timed(*pages[name]))
    finally:
        process.stop()
    out = {name: summary(values) for name, values in times.items()}
    return {"images": images, "tags": images * tags, "reps": reps, "seed_seconds": round(seed_s, 1),
            "seeded_through": "registry.metadata (one transaction) with real blob files",
            "ms": out, "page_over_api": ratio(out["page"], out["api"]), "target_ms": TARGET_MS}
