"""A bounded soak of the embedded registry on loopback (`make soak`; not part of `make test`).

For SOAK_SECONDS (default 180): raw OCI client threads push images (shared and unique layers,
Docker and OCI manifests, now and then an index) to tags of their own and delete some of them,
puller threads pull and verify what is tagged, a thread runs collections every few seconds,
and a few docker CLI pushes go through the real daemon. At the end: zero errors, every blob of
every remaining tag verified by sha256, the tags exactly as the clients left them, no orphan
file and no upload left, and the registry's resident memory, sampled every second from
/proc/PID/status, flat. The figures are printed, and written as JSON to SOAK_REPORT when set.
"""
from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from harness.accounts import TOKENS, default_config
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    digest_of,
    docker_login,
    docker_push,
    index_manifest,
    repo_digest,
)

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
PACKAGES = ("my-container-app", "other-app", "tool-image")  # pipelines may push to all three
PUSHERS, PULLERS = 4, 2
TAGS_PER_PUSHER = 4
GRACE_SECONDS = 10
COLLECT_EVERY = 3.0
MAX_DOCKER_PUSHES = 12
RSS_LIMIT_MB = 200
MAX_OPS = 1_000_000  # every loop is bounded in count as well as in time
TIMEOUT = 60
pytestmark = pytest.mark.timeout(SOAK_SECONDS + 600)


@dataclass
class SoakClient(Client):
    """One member on one package, over a kept-alive connection."""

    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def request(self, method: str, url: str, headers: dict | None = None, **kwargs) -> requests.Response:
        if not url.startswith("http"):
            url = self.registry.url + url if url.startswith("/") else f"{self.base}/{url}"
        headers = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        return self.session.request(method, url, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs)


@dataclass
class Expected:
    """What a tag must hold at the end: its manifest digest, or None once deleted."""

    digest: str | None
    media_type: str | None = None


@dataclass
class Soak:
    registry: RegistryProcess
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    expected: dict[tuple[str, str], Expected] = field(default_factory=dict)
    locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    rss_kb: list[tuple[float, int]] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, key: tuple[str, str]) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(key, threading.Lock())

    def fail(self, what: str) -> None:
        with self.guard:
            self.errors.append(what)

    def count(self, what: str, n: int = 1) -> None:
        with self.guard:
            self.counts[what] += n


def check(soak: Soak, r: requests.Response, expected: int, what: str) -> bool:
    if r.status_code != expected:
        soak.fail(f"{what}: {r.status_code} {r.text[:300]}")
        return False
    return True


def upload(soak: Soak, client: SoakClient, data: bytes, rng: random.Random) -> bool:
    """HEAD first as docker does; upload when absent, monolithic or in chunks."""
    digest = digest_of(data)
    if client.request("HEAD", f"blobs/{digest}").status_code == 200:
        soak.count("blob HEAD hits")
        return True
    r = client.request("POST", "blobs/uploads/")
    if not check(soak, r, 202, f"start upload to {client.repository}"):
        return False
    location = r.headers["Location"]
    if rng.random() < 0.5:
        r = client.request("PUT", location, params={"digest": digest}, data=data)
    else:
        half = len(data) // 2
        r = client.request("PATCH", location, data=data[:half], headers={"Content-Range": f"0-{max(half - 1, 0)}"})
        if half and not check(soak, r, 202, f"chunk to {client.repository}"):
            return False
        r = client.request("PUT", r.headers.get("Location", location), params={"digest": digest}, data=data[half:])
    soak.count("blobs uploaded")
    soak.count("bytes uploaded", len(data))
    return check(soak, r, 201, f"finish upload of {digest} to {client.repository}")


def push_image(soak: Soak, client: SoakClient, layers: list[bytes], media_type: str,
               rng: random.Random) -> bytes | None:
    """Upload an image's blobs and return its manifest (not yet pushed)."""
    if not all(upload(soak, client, layer, rng) for layer in layers):
        return None
    oci = media_type == OCI_MANIFEST
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex(),
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(x) for x in layers]}}).encode()
    if not upload(soak, client, config, rng):
        return None
    return json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json" if oci
                   else "application/vnd.docker.container.image.v1+json", "size": len(config),
                   "digest": digest_of(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar" if oci
                    else "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(x), "digest": digest_of(x)}
                   for x in layers],
    }).encode()


def layers_for(shared: list[bytes], rng: random.Random) -> list[bytes]:
    """1 to 3 layers shared with other images, and one of its own."""
    return rng.sample(shared, rng.randint(1, 3)) + [os.urandom(rng.randint(16_000, 512_000))]


def push_index(soak: Soak, client: SoakClient, shared: list[bytes], rng: random.Random) -> bytes | None:
    """Push two platform images by digest and return the index over them (not yet pushed)."""
    children = []
    for arch in ("amd64", "arm64"):
        body = push_image(soak, client, layers_for(shared, rng), OCI_MANIFEST, rng)
        if body is None or not check(soak, client.put_manifest(digest_of(body), body, OCI_MANIFEST), 201,
                                     f"push a child manifest to {client.repository}"):
            return None
        children.append((digest_of(body), len(body), OCI_MANIFEST, ("linux", arch)))
    return index_manifest(OCI_INDEX, children)


def pusher(soak: Soak, index: int, shared: list[bytes]) -> None:
    rng = random.Random(index)
    clients = {p: SoakClient(soak.registry, f"acme/{p}") for p in PACKAGES}
    admin = ("pipelines", TOKENS["pipelines"])
    for _ in range(MAX_OPS):
        if soak.stop.is_set():
            return
        package, tag = rng.choice(PACKAGES), f"p{index}-{rng.randrange(TAGS_PER_PUSHER)}"
        client, key = clients[package], (package, tag)
        try:
            with soak.lock(key):
                if rng.random() < 0.15 and soak.expected.get(key, Expected(None)).digest is not None:
                    r = requests.delete(f"{soak.registry.url}/api/workspaces/acme/packages/{package}/tags/{tag}",
                                        auth=admin, timeout=TIMEOUT)
                    if check(soak, r, 200, f"delete {package}:{tag}"):
                        soak.expected[key] = Expected(None)
                        soak.count("tag deletes")
                    continue
                if rng.random() < 0.1:
                    body, media_type = push_index(soak, client, shared, rng), OCI_INDEX
                else:
                    media_type = rng.choice([DOCKER_MANIFEST, OCI_MANIFEST])
                    body = push_image(soak, client, layers_for(shared, rng), media_type, rng)
                if body is None:
                    continue
                r = client.put_manifest(tag, body, media_type)
                if check(soak, r, 201, f"push {package}:{tag}"):
                    soak.expected[key] = Expected(digest_of(body), media_type)
                    soak.count("indexes pushed" if media_type == OCI_INDEX else "images pushed")
        except requests.RequestException as exc:
            soak.fail(f"pusher {index}: {exc!r}")


def verify_tag(soak: Soak, client: SoakClient, tag: str, expected: Expected) -> bool:
    """Pull a tag and every blob under it; check each digest (sha256 of what arrived)."""
    r = client.get_manifest(tag)
    if not check(soak, r, 200, f"pull {client.repository}:{tag}"):
        return False
    if digest_of(r.content) != expected.digest or r.headers["Docker-Content-Digest"] != expected.digest:
        soak.fail(f"{client.repository}:{tag} is {digest_of(r.content)}, expected {expected.digest}")
        return False
    manifests = [r.json()]
    if manifests[0].get("mediaType") == OCI_INDEX:
        manifests = []
        for child in r.json()["manifests"]:
            c = client.get_manifest(child["digest"])
            if not check(soak, c, 200, f"pull child {child['digest']}") or digest_of(c.content) != child["digest"]:
                soak.fail(f"child {child['digest']} of {client.repository}:{tag} does not verify")
                return False
            manifests.append(c.json())
    for doc in manifests:
        for d in [doc["config"], *doc["layers"]]:
            blob = client.get_blob(d["digest"])
            if not check(soak, blob, 200, f"pull blob {d['digest']} of {client.repository}:{tag}"):
                return False
            if digest_of(blob.content) != d["digest"] or len(blob.content) != d["size"]:
                soak.fail(f"blob {d['digest']} of {client.repository}:{tag} does not verify")
                return False
            soak.count("blobs verified")
            soak.count("bytes pulled", len(blob.content))
    return True


def puller(soak: Soak, index: int) -> None:
    rng = random.Random(1000 + index)
    clients = {p: SoakClient(soak.registry, f"acme/{p}", user="reader" if p != "tool-image" else "boss",
                             actions="pull") for p in PACKAGES}
    for _ in range(MAX_OPS):
        if soak.stop.wait(0.05):
            return
        with soak.guard:
            tagged = [k for k, v in soak.expected.items() if v.digest is not None]
        if not tagged:
            continue
        key = rng.choice(tagged)
        try:
            with soak.lock(key):  # a pull of a tag nobody is changing at that moment must succeed whole
                expected = soak.expected[key]
                if expected.digest is not None and verify_tag(soak, clients[key[0]], key[1], expected):
                    soak.count("pulls")
        except requests.RequestException as exc:
            soak.fail(f"puller {index}: {exc!r}")


def collector(soak: Soak) -> None:
    for _ in range(MAX_OPS):
        if soak.stop.wait(COLLECT_EVERY):
            return
        try:
            r = requests.post(f"{soak.registry.url}/api/workspaces/acme/gc", auth=("boss", TOKENS["boss"]),
                              timeout=TIMEOUT)
            if check(soak, r, 200, "collection"):
                result = r.json()
                soak.count("collections")
                soak.count("blobs collected", result.get("blobs_deleted", 0))
                soak.count("manifests collected", result.get("manifests_deleted", 0))
                soak.count("bytes collected", result.get("freed_bytes", 0))
        except requests.RequestException as exc:
            soak.fail(f"collector: {exc!r}")


def docker_pusher(soak: Soak, images: list[str], refs: list[str]) -> None:
    package = "other-app"
    for n in range(MAX_DOCKER_PUSHES):
        if soak.stop.wait(3.0):
            return
        tag = f"dk-{n % 3}"
        remote = f"{soak.registry.host}/acme/{package}:{tag}"
        with soak.lock((package, tag)):
            r = docker_push(images[n % len(images)], remote, refs, timeout=TIMEOUT * 2)
            if r.returncode != 0:
                soak.fail(f"docker push {remote}: {r.stderr[-500:]}")
                continue
            soak.expected[(package, tag)] = Expected(repo_digest(remote, f"{soak.registry.host}/acme/{package}"))
            soak.count("docker pushes")


def sample_rss(soak: Soak, pid: int) -> None:
    started = time.monotonic()
    for _ in range(MAX_OPS):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError as exc:
            soak.fail(f"the registry went away: {exc!r}")
            return
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        soak.rss_kb.append((round(time.monotonic() - started, 1), kb))
        if soak.stop.wait(1.0):
            return


def test_soak(tmp_path: Path, docker_config, image_factory, docker_refs):
    config = default_config()
    config["gc"] = {"grace_seconds": GRACE_SECONDS}
    config["auth"] = {"token_ttl_seconds": 3600}
    registry = RegistryProcess(tmp_path / "registry", config).start()
    try:
        soak = Soak(registry)
        rng = random.Random(42)
        shared = [os.urandom(rng.randint(256_000, 2_000_000)) for _ in range(6)]
        images = [image_factory(layers=[300_000, 100_000]), image_factory(layers=[200_000])]
        docker_login(registry, "pipelines")

        threads = [threading.Thread(target=sample_rss, args=(soak, registry.proc.pid), name="rss")]
        threads += [threading.Thread(target=pusher, args=(soak, i, shared), name=f"push{i}") for i in range(PUSHERS)]
        threads += [threading.Thread(target=puller, args=(soak, i), name=f"pull{i}") for i in range(PULLERS)]
        threads += [threading.Thread(target=collector, args=(soak,), name="gc"),
                    threading.Thread(target=docker_pusher, args=(soak, images, docker_refs), name="docker")]
        started = time.monotonic()
        for t in threads:
            t.start()
        soak.stop.wait(SOAK_SECONDS)
        soak.stop.set()
        for t in threads:
            t.join(TIMEOUT * 3)
        assert not [t.name for t in threads if t.is_alive()], "a soak thread did not stop"
        elapsed = time.monotonic() - started

        # The end state: one last collection, then every tag exactly as the clients left it, every blob verified.
        r = requests.post(f"{registry.url}/api/workspaces/acme/gc", auth=("boss", TOKENS["boss"]), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        final = Soak(registry)
        verified_tags = 0
        for (package, tag), expected in sorted(soak.expected.items()):
            client = SoakClient(registry, f"acme/{package}", user="boss", actions="pull")
            if expected.digest is None:
                gone = client.get_manifest(tag)
                if gone.status_code != 404:
                    final.fail(f"deleted tag {package}:{tag} answers {gone.status_code}")
            elif verify_tag(final, client, tag, expected):
                verified_tags += 1
        for package in PACKAGES:
            details = registry.api("GET", f"/workspaces/acme/packages/{package}").json()
            listed = {t["name"]: t["digest"] for t in details["tags"]}
            wanted = {tag: e.digest for (p, tag), e in soak.expected.items() if p == package and e.digest}
            if listed != wanted:
                final.fail(f"tags of {package}: {listed} != {wanted}")
        storage = registry.api("GET", "/workspaces/acme/storage").json()
        files = list((registry.root / "blobs" / "acme" / "sha256").glob("*/*"))
        uploads = list((registry.root / "uploads").iterdir())

        rss = [kb for _, kb in soak.rss_kb]
        half = len(rss) // 2
        report = {
            "seconds": round(elapsed, 1),
            "counts": dict(sorted(soak.counts.items())),
            "errors": soak.errors[:20],
            "error_count": len(soak.errors),
            "final_errors": final.errors[:20],
            "tags_verified_at_end": verified_tags,
            "blobs_verified_at_end": final.counts["blobs verified"],
            "tags_deleted_at_end": sum(1 for e in soak.expected.values() if e.digest is None),
            "storage_at_end": {k: storage[k] for k in ("stored_bytes", "blobs", "manifests", "reclaimable_bytes")},
            # the explicit ones and those pushes/deletes scheduled
            "collections_run_by_the_registry": storage["gc"]["runs"],
            "blob_files_at_end": len(files),
            "upload_files_at_end": len(uploads),
            "rss_mb": {"first": round(rss[0] / 1024, 1), "peak": round(max(rss) / 1024, 1),
                       "last": round(rss[-1] / 1024, 1), "samples": len(rss),
                       "peak_first_half": round(max(rss[:half]) / 1024, 1),
                       "peak_second_half": round(max(rss[half:]) / 1024, 1)},
        }
        print("\nsoak report:", json.dumps(report, indent=2))
        if os.environ.get("SOAK_REPORT"):
            Path(os.environ["SOAK_REPORT"]).write_text(json.dumps({**report, "rss_kb": soak.rss_kb}, indent=2))

        assert soak.errors == [], soak.errors[:20]
        assert final.errors == [], final.errors[:20]
        # Not vacuous: everything the soak claims to have exercised happened.
        for what in ("images pushed", "indexes pushed", "tag deletes", "pulls", "collections", "blobs collected",
                     "docker pushes", "blob HEAD hits"):
            assert soak.counts[what] > 0, f"the soak never did: {what}"
        assert verified_tags > 0 and final.counts["blobs verified"] > 0
        assert len(files) == storage["blobs"], "a blob file without its row, or a row without its file"
        assert uploads == [], "upload files left behind"
        # Memory: bounded, and flat (no growth from the first half of the run to the second).
        assert max(rss) < RSS_LIMIT_MB * 1024, report["rss_mb"]
        assert max(rss[half:]) <= max(rss[:half]) + 40 * 1024, report["rss_mb"]
    finally:
        registry.stop()
