"""The `ui` phase: the packages page of a big workspace (1,000 images, 10,000 tags) beside the JSON API's
listing of it.

The workspace is seeded straight through the registry's metadata layer (bench/registries/seed.py); the
registry is then started on that root as a real process and both are fetched over HTTP on loopback with
keep-alive, interleaved. The figure is the client's wall time per request (an upper bound of the time at
the server). The reference is `GET /api/workspaces/{ws}/packages` of the same workspace, which summarises
all 1,000 images; the page summarises one page of 50 and renders it.
"""
from __future__ import annotations

import time
from pathlib import Path

import requests

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess
from harness.ui_client import UiClient

from ..phase import Context, Phase
from ..registries import seed as seeded
from ..registries.seed import WORKSPACE
from ..stats import alternate, ratio, summary

TARGET_MS = 200


class UiPhase(Phase):
    name = "ui"

    def run(self, ctx: Context) -> dict:
        return measure_pages(ctx.workdir / "ui", quick=ctx.quick)


def _timed(http: requests.Session, url: str, **kwargs) -> float:
    started = time.perf_counter()
    r = http.get(url, timeout=30, **kwargs)
    seconds = time.perf_counter() - started
    r.raise_for_status()
    return seconds * 1000


def measure_pages(workdir: Path, quick: bool = False) -> dict:
    images, tags, reps = (100, 10, 5) if quick else (1000, 10, 30)
    t0 = time.monotonic()
    process = RegistryProcess(workdir / "root", seeded.config())  # writes the config; started after seeding
    seeded.seed(process.root, images, tags)
    seed_s = time.monotonic() - t0
    process.start()
    try:
        ui = UiClient(process.url)
        assert ui.login("boss").status_code == 200
        api = requests.Session()
        api.auth = ("boss", TOKENS["boss"])
        pages = {
            "page": (ui.http, f"{process.url}/ui/{WORKSPACE}/packages", {}),
            "page_filtered": (ui.http, f"{process.url}/ui/{WORKSPACE}/packages", {"params": {"q": "img-09"}}),
            "page_last": (ui.http, f"{process.url}/ui/{WORKSPACE}/packages", {"params": {"page": "20"}}),
            "api": (api, f"{process.url}/api/workspaces/{WORKSPACE}/packages", {}),
        }
        listed = api.get(pages["api"][1], timeout=30).json()["packages"]
        assert len(listed) == images and sum(p["tags"] for p in listed) == images * tags
        first = ui.get(f"/ui/{WORKSPACE}/packages").text
        assert f"{images} images" in first and "img-0049" in first
        times: dict[str, list[float]] = {name: [] for name in pages}
        for http, url, kwargs in pages.values():
            _timed(http, url, **kwargs)  # warm-up (templates compiled, pages cached by SQLite)
        for rep in range(reps):
            for name in alternate(list(pages), rep):
                http, url, kwargs = pages[name]
                times[name].append(_timed(http, url, **kwargs))
    finally:
        process.stop()
    out = {name: summary(values) for name, values in times.items()}
    return {
        "images": images, "tags": images * tags, "reps": reps, "seed_seconds": round(seed_s, 1),
        "seeded_through": "registry.metadata (one transaction) with real blob files",
        "ms": out, "page_over_api": ratio(out["page"], out["api"]), "target_ms": TARGET_MS,
    }
