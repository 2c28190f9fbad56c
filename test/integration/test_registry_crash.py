"""SIGKILL the registry in the middle of work, restart it on the same root: nothing acknowledged
is lost, nothing partial is visible, and the interrupted work succeeds when retried."""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from pathlib import Path

import requests

from test.helpers.oci_client import DOCKER_MANIFEST, Client, digest_of, image_manifest, verify_tagged_image

REPO = "acme/my-container-app"


def blob_files(root: Path, workspace: str = "acme") -> set[str]:
    base = root / "blobs" / workspace / "sha256"
    return {f"sha256:{p.name}" for p in base.glob("*/*")} if base.exists() else set()


def upload_files(root: Path) -> list[Path]:
    return list((root / "uploads").iterdir())


def test_sigkill_mid_blob_upload_loses_nothing_and_shows_nothing(registry):
    client = Client(registry, REPO)
    client.push_image("kept", [os.urandom(200_000), os.urandom(50_000)])

    big = os.urandom(16 * 1024 * 1024)
    location = client.start_upload()
    halfway = threading.Event()
    outcome: list[object] = []

    def body():
        for i in range(0, len(big), 1024 * 1024):
            if i >= len(big) // 2:
                halfway.set()
                time.sleep(0.2)
            yield big[i:i + 1024 * 1024]

    def send():
        try:
            outcome.append(client.request("PATCH", location, data=body()))
        except requests.RequestException as exc:
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert halfway.wait(30), "the upload never got halfway"
    registry.stop(signal.SIGKILL)
    sender.join(30)
    assert outcome and isinstance(outcome[0], requests.RequestException), outcome

    registry.start()
    assert upload_files(registry.root) == []  # the partial upload is gone from disk
    client = Client(registry, REPO)
    assert client.head_blob(digest_of(big)).status_code == 404
    assert verify_tagged_image(client, "kept") == 3
    # The interrupted upload succeeds when retried from the start.
    assert client.push_blob(big) == digest_of(big)
    assert client.get_blob(digest_of(big)).content == big


def test_sigkill_during_manifest_puts_keeps_every_acknowledged_manifest(registry):
    rng = random.Random(7)
    acknowledged: dict[str, bytes] = {}
    attempted: dict[str, bytes] = {}
    for round_ in range(8):
        client = Client(registry, REPO)
        for i in range(3):
            body = image_manifest(client, [os.urandom(4096)])
            tag = f"r{round_}-{i}"
            attempted[tag] = body

        results: dict[str, int] = {}

        def put_all(client: Client, prefix: str, results: dict[str, int]) -> None:
            for tag in [t for t in attempted if t.startswith(prefix)]:
                try:
                    results[tag] = client.put_manifest(tag, attempted[tag], DOCKER_MANIFEST).status_code
                except requests.RequestException:
                    return

        putter = threading.Thread(target=put_all, args=(client, f"r{round_}-", results))
        putter.start()
        time.sleep(rng.uniform(0.0, 0.03))
        registry.stop(signal.SIGKILL)
        putter.join(30)
        acknowledged.update({t: attempted[t] for t, status in results.items() if status == 201})
        registry.start()

    client = Client(registry, REPO)
    for tag, body in attempted.items():
        r = client.get_manifest(tag)
        if tag in acknowledged:
            assert r.status_code == 200, (tag, r.status_code)
        if r.status_code == 200:  # present means whole: the exact bytes, and every blob intact
            assert r.content == body
            verify_tagged_image(client, tag)
        else:
            assert r.status_code == 404
    assert acknowledged, "no PUT was acknowledged before a kill; the test proved nothing"


def test_sigkill_during_collection_keeps_referenced_blobs(registry):
    client = Client(registry, REPO)
    shared = os.urandom(100_000)
    client.push_image("kept", [shared, os.urandom(10_000)])
    for _ in range(300):  # unreferenced blobs for the collection to delete
        client.push_blob(os.urandom(2048))
    before = blob_files(registry.root)

    def collect():
        try:
            registry.api("POST", "/workspaces/acme/gc")
        except requests.RequestException:
            pass

    collector = threading.Thread(target=collect)
    collector.start()
    deadline = time.monotonic() + 20
    while len(blob_files(registry.root)) > len(before) - 20 and time.monotonic() < deadline:
        time.sleep(0.002)
    registry.stop(signal.SIGKILL)
    collector.join(30)
    assert len(blob_files(registry.root)) < len(before), "the collection had not started deleting"

    registry.start()
    client = Client(registry, REPO)
    assert verify_tagged_image(client, "kept") == 3
    assert registry.api("POST", "/workspaces/acme/gc").status_code == 200
    storage = registry.api("GET", "/workspaces/acme/storage").json()
    assert storage["blobs"] == 3
    assert storage["reclaimable_bytes"] == 0
    assert len(blob_files(registry.root)) == 3  # no orphan file, no row without a file
    assert verify_tagged_image(client, "kept") == 3
