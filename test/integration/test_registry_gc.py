"""Garbage collection: what triggers it, what it frees, what it keeps, and that it never breaks a push.

Repeat the concurrency test with REGISTRY_GC_ROUNDS=10 to see ten passes in a row.
"""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness.accounts import default_config
from harness.docker_images import build_image, remove_image
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import (
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    digest_of,
    docker,
    docker_login,
    docker_push,
    image_manifest,
    index_manifest,
    repo_digest,
    verify_tagged_image,
)
from test.helpers.waiting import wait_for

APP, OTHER = "acme/my-container-app", "acme/other-app"
ROUNDS = int(os.environ.get("REGISTRY_GC_ROUNDS", "1"))


def with_grace(registry_factory, seconds: float) -> RegistryProcess:
    config = default_config()
    config["gc"]["grace_seconds"] = seconds
    return registry_factory(config)


def storage(registry: RegistryProcess) -> dict:
    r = registry.api("GET", "/workspaces/acme/storage")
    assert r.status_code == 200, r.text
    return r.json()


def collect(registry: RegistryProcess) -> dict:
    r = registry.api("POST", "/workspaces/acme/gc", "boss")
    assert r.status_code == 200, r.text
    return r.json()


def manifest_digests(registry: RegistryProcess, package: str) -> set[str]:
    r = registry.api("GET", f"/workspaces/acme/packages/{package}")
    assert r.status_code == 200, r.text
    return {m["digest"] for m in r.json()["manifests"]}


@pytest.fixture
def family(docker_daemon, tmp_path: Path):
    """Build a base image and children FROM it, so that they share the base layer."""
    built: list[str] = []

    def make(children: int, base_size: int = 300_000, child_size: int = 100_000) -> tuple[str, list[str]]:
        stem = f"gc-test-{uuid.uuid4().hex[:8]}"
        base = build_image(f"{stem}-base:v1", tmp_path / f"{stem}-base", [base_size])
        built.append(base)
        refs = []
        for i in range(children):
            ref = build_image(f"{stem}-{i}:v1", tmp_path / f"{stem}-{i}", [child_size + i], base=base)
            built.append(ref)
            refs.append(ref)
        return base, refs

    yield make
    remove_image(*reversed(built))


class TestTriggersAndFigures:
    def test_tag_delete_frees_nothing_until_the_collection(self, registry_factory):
        registry = with_grace(registry_factory, 3)
        client = Client(registry, APP)
        digest, body = client.push_image("v1", [os.urandom(50_000), os.urandom(60_000)])
        kept, _ = client.push_image("keep", [os.urandom(10_000)])
        before = storage(registry)
        assert before["blobs"] == 5 and before["reclaimable_bytes"] == 0
        runs = before["gc"]["runs"]

        assert registry.api("DELETE", "/workspaces/acme/packages/my-container-app/tags/v1").status_code == 200
        after_delete = storage(registry)
        for key in ("stored_bytes", "blob_bytes", "blobs", "manifests"):
            assert after_delete[key] == before[key], key
        # What a collection would free: the image's own layers and config, though its manifest is still stored.
        own_blob_bytes = 50_000 + 60_000 + json.loads(body)["config"]["size"]
        assert after_delete["reclaimable_bytes"] == own_blob_bytes
        assert after_delete["reclaimable_blobs"] == 3

        # The delete scheduled a collection; it waits out the grace period, then frees the image's own blobs.
        # Blobs go while the collection runs; the run is counted once it has finished.
        after = wait_for(lambda: (s := storage(registry))["blobs"] < before["blobs"] and s["gc"]["runs"] > runs and s,
                         "the scheduled collection to free the deleted tag's blobs")
        assert after["blobs"] == 2 and after["manifests"] == 1
        assert after["stored_bytes"] < before["stored_bytes"] - 110_000
        assert after["reclaimable_bytes"] == 0
        assert client.get_manifest(digest).status_code == 404
        assert verify_tagged_image(client, "keep") == 2

    def test_same_tag_push_collects_the_manifest_that_lost_its_tag(self, registry):
        # The default test config has no grace period: the collection frees at once.
        client = Client(registry, APP)
        old, _ = client.push_image("latest", [b"old layer" * 1000])
        runs = storage(registry)["gc"]["runs"]
        new, _ = client.push_image("latest", [b"new layer" * 1000])
        # The manifest and blob vanish during the collection, and the run is counted at its end.
        wait_for(lambda: storage(registry)["gc"]["runs"] > runs, "the collection the same-tag push schedules")
        wait_for(lambda: client.get_manifest(old).status_code == 404, "the old manifest to be collected")
        assert client.head_blob(digest_of(b"old layer" * 1000)).status_code == 404
        assert verify_tagged_image(client, "latest") == 2
        assert client.get_manifest(new).status_code == 200

    def test_pushing_the_same_manifest_again_does_not_collect(self, registry):
        client = Client(registry, APP)
        digest, body = client.push_image("latest", [b"layer"])
        runs = storage(registry)["gc"]["runs"]
        assert client.put_manifest("latest", body, None).status_code == 201
        time.sleep(0.5)
        assert storage(registry)["gc"]["runs"] == runs
        assert verify_tagged_image(client, "latest") == 2

    def test_admin_image_delete_keeps_a_shared_layer_for_the_other_image(
            self, registry_factory, docker_config, family, docker_refs):
        registry = with_grace(registry_factory, 3)
        base, (first, second) = family(2)
        docker_login(registry, "pipelines")
        assert docker_push(first, f"{registry.host}/{APP}:v1", docker_refs).returncode == 0
        pushed = docker_push(second, f"{registry.host}/{OTHER}:v1", docker_refs)
        assert pushed.returncode == 0, pushed.stderr
        second_digest = repo_digest(f"{registry.host}/{OTHER}:v1", f"{registry.host}/{OTHER}")
        before = storage(registry)
        assert before["blobs"] == 5  # one shared base layer, two own layers, two configs

        r = registry.api("DELETE", "/workspaces/acme/packages/my-container-app", "boss")
        assert r.status_code == 200
        at_once = storage(registry)
        assert (at_once["blobs"], at_once["blob_bytes"]) == (before["blobs"], before["blob_bytes"])
        assert at_once["reclaimable_bytes"] > 100_000

        after = wait_for(lambda: (s := storage(registry))["blobs"] < before["blobs"] and s,
                         "the collection scheduled by the image delete")
        assert after["blobs"] == 3  # the first image's own layer and config are gone, the base stays
        assert before["blob_bytes"] - after["blob_bytes"] > 100_000

        # The second image still pulls intact, its layers downloaded again from the registry.
        remote = f"{registry.host}/{OTHER}:v1"
        assert docker("rmi", remote, second).returncode == 0
        docker_refs.remove(remote)
        pulled = docker("pull", remote)
        docker_refs.append(remote)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {second_digest}" in pulled.stdout
        assert verify_tagged_image(Client(registry, OTHER, user="reader", actions="pull"), "v1") == 3

    def test_interrupted_pushes_and_abandoned_uploads_are_cleaned_after_the_grace_period(self, registry_factory):
        config = default_config()
        config["gc"]["grace_seconds"] = 2
        config["limits"]["upload_timeout_seconds"] = 1
        registry = registry_factory(config)
        client = Client(registry, APP)
        # An interrupted multi-platform push: a child manifest by digest, the index never came.
        child = image_manifest(client, [os.urandom(20_000)], OCI_MANIFEST)
        assert client.put_manifest(digest_of(child), child, OCI_MANIFEST).status_code == 201
        # An interrupted image push: layers uploaded, no manifest.
        loose = client.push_blob(os.urandom(30_000))
        # An abandoned upload session with partial data.
        location = client.start_upload()
        assert client.request("PATCH", location, data=os.urandom(40_000)).status_code == 202
        # And a complete image that must survive all of it.
        client.push_image("keep", [os.urandom(1000)])

        early = collect(registry)
        assert early["manifests_deleted"] == 0 and early["blobs_deleted"] == 0 and early["deferred"] >= 1
        assert client.get_manifest(digest_of(child)).status_code == 200
        assert client.head_blob(loose).status_code == 200  # this HEAD also restarts its grace period

        time.sleep(2.2)
        wait_for(lambda: collect(registry)["blobs_deleted"] > 0 or storage(registry)["blobs"] == 2,
                 "a collection after the grace period")
        assert client.get_manifest(digest_of(child)).status_code == 404
        assert client.head_blob(loose).status_code == 404
        kept = client.get_manifest("keep").headers["Docker-Content-Digest"]
        assert manifest_digests(registry, "my-container-app") == {kept}
        assert storage(registry)["blobs"] == 2
        assert verify_tagged_image(client, "keep") == 2
        wait_for(lambda: not any((registry.root / "uploads").iterdir()), "the abandoned upload to be cleaned up",
                 timeout=20)
        r = client.request("GET", location)
        assert r.status_code == 404

    def test_an_index_keeps_its_children_and_their_blobs(self, registry):
        client = Client(registry, APP)
        children = []
        for arch in ("amd64", "arm64"):
            body = image_manifest(client, [os.urandom(5000)], OCI_MANIFEST, ("linux", arch))
            assert client.put_manifest(digest_of(body), body, OCI_MANIFEST).status_code == 201
            children.append((digest_of(body), len(body), OCI_MANIFEST, ("linux", arch)))
        index = index_manifest(OCI_INDEX, children)
        assert client.put_manifest("multi", index, OCI_INDEX).status_code == 201
        result = collect(registry)
        assert result["manifests_deleted"] == 0 and result["blobs_deleted"] == 0
        for digest, *_ in children:
            assert client.get_manifest(digest).status_code == 200
            verify_tagged_image(client, digest)
        # Once the index loses its tag, the index and then its children go, with their blobs.
        assert registry.api("DELETE", "/workspaces/acme/packages/my-container-app/tags/multi").status_code == 200
        wait_for(lambda: storage(registry)["blobs"] == 0 and storage(registry)["manifests"] == 0,
                 "the index, its children and their blobs to be collected")


MIN_COLLECTIONS = 3


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_collections_never_break_concurrent_pushes(round_, registry_factory, docker_config, family, docker_refs):
    """4 images x 3 tags sharing a base layer, pushed in parallel while tags are deleted and collections run."""
    grace = 4
    registry = with_grace(registry_factory, grace)
    docker_login(registry, "pipelines")
    base, images = family(6, base_size=400_000, child_size=150_000)
    pushers, victims = images[:4], images[4:]
    packages = ["my-container-app", "other-app"]

    # Victims: pushed first, older than the grace period when the concurrent phase starts, and
    # sharing the base layer with everything pushed later. Deleting them makes the base layer a
    # candidate exactly while the other pushes need it.
    victim_tags = []
    for i, image in enumerate(victims):
        remote = f"{registry.host}/acme/{packages[i % 2]}:victim-{i}"
        r = docker_push(image, remote, docker_refs)
        assert r.returncode == 0, r.stderr
        victim_tags.append((packages[i % 2], f"victim-{i}"))
    victim_blobs = {d["digest"] for package, tag in victim_tags
                    for d in Client(registry, f"acme/{package}").get_manifest(tag).json()["layers"][1:]}
    assert len(victim_blobs) == 2 and storage(registry)["blobs"] == 5  # base + (own layer + config) x 2
    time.sleep(grace + 0.5)

    results: dict[tuple[int, int], object] = {}
    collections: list[dict] = []
    spans: list[tuple[float, float]] = []  # (start, end) of each collection, monotonic
    errors: list[str] = []
    done = threading.Event()

    def push(i: int) -> None:
        try:
            for j in range(3):
                remote = f"{registry.host}/acme/{packages[i % 2]}:img{i}-t{j}"
                results[(i, j)] = docker_push(pushers[i], remote, docker_refs, timeout=180)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(f"pusher {i}: {exc!r}")

    def churn() -> None:
        """Delete victim tags and run collections back to back until the pushes end and at least
        MIN_COLLECTIONS have run, however long each takes on a busy machine (bounded in count and time)."""
        deadline = time.monotonic() + 180
        pending = list(victim_tags)
        for _ in range(400):
            if (done.is_set() and not pending and len(collections) >= MIN_COLLECTIONS) or time.monotonic() > deadline:
                break
            if pending:
                package, tag = pending.pop(0)
                r = registry.api("DELETE", f"/workspaces/acme/packages/{package}/tags/{tag}", "pipelines")
                if r.status_code != 200:
                    errors.append(f"delete {package}:{tag}: {r.status_code} {r.text}")
            try:
                started = time.monotonic()
                collections.append(collect(registry))
                spans.append((started, time.monotonic()))
            except AssertionError as exc:
                errors.append(f"collection: {exc}")
            time.sleep(0.1)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(4)]
    churner = threading.Thread(target=churn)
    churner.start()
    pushes_began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    pushes_ended = time.monotonic()
    done.set()
    churner.join(240)
    assert not any(t.is_alive() for t in threads + [churner]), "a pusher or the collector thread hung"
    assert errors == []

    failed = {k: (r.returncode, r.stderr[-500:]) for k, r in results.items() if r.returncode != 0}
    assert len(results) == 12 and failed == {}, failed
    # Collections ran during the pushes: they ran back to back from before the first push to after the
    # last, so some overlap the pushes whatever their number (that depends on the machine's load).
    # Those the tag deletes scheduled run in the background too.
    assert len(collections) >= MIN_COLLECTIONS
    assert any(start < pushes_ended and end > pushes_began for start, end in spans), (spans, pushes_began, pushes_ended)
    assert storage(registry)["gc"]["runs"] >= len(collections)

    # Every remaining tag: exactly the pushed ones; each pulls, and every blob's digest verifies.
    expected = {f"img{i}-t{j}" for i in range(4) for j in range(3)}
    remaining = set()
    for package in packages:
        tags = registry.api("GET", f"/workspaces/acme/packages/{package}").json()["tags"]
        remaining |= {t["name"] for t in tags}
        client = Client(registry, f"acme/{package}", user="reader", actions="pull")
        for tag in tags:
            assert verify_tagged_image(client, tag["name"]) == 3
    assert remaining == expected
    for i in range(4):
        remote = f"{registry.host}/acme/{packages[i % 2]}:img{i}-t2"
        pulled = docker("pull", remote)
        assert pulled.returncode == 0, pulled.stderr
    # The victims' own blobs were collected while the pushes ran; nothing referenced was removed.
    for digest in victim_blobs:
        assert Client(registry, APP, user="boss").head_blob(digest).status_code == 404
    assert collect(registry)["blobs_deleted"] == 0
    assert storage(registry)["blobs"] == 1 + 4 * 2  # base + (own layer + config) per pushed image
