"""The storage layer in-process: uploads, visibility, and the collection's re-check of each candidate.

These orderings are hard to force over HTTP, so they drive `Store` and `gc` directly.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from harness.accounts import default_config
from registry.config import parse_config
from registry.errors import http_error
from registry.gc import Collector
from registry.storage_errors import DigestMismatch, UploadTooLarge, UploadUnknown
from registry.store import Store
from registry.uploads import Chunk


def config(**changes):
    data = copy.deepcopy(default_config())
    data["limits"]["max_layer_bytes"] = 1024
    data["gc"]["grace_seconds"] = changes.pop("grace_seconds", 60)
    return parse_config(data)


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run(coro_fn, tmp_path: Path, **changes):
    async def main():
        store = Store(tmp_path, config(**changes))
        try:
            return await coro_fn(store)
        finally:
            store.close()
    return asyncio.run(main())


async def append(store: Store, session, *chunks: bytes):
    return await store.append_chunk(session.id, session.package, session.username, Chunk(body(*chunks)))


async def finish(store: Store, session, digest: str):
    return await store.finish_upload(session.id, session.package, session.username, Chunk(body(), 0, digest=digest))


async def upload(store: Store, package, data: bytes, *chunks: bytes):
    session = await store.start_upload(package, "pipelines")
    await append(store, session, *(chunks or (data,)))
    return await finish(store, session, digest_of(data))


def test_upload_becomes_visible_only_after_the_digest_is_verified(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        session = await store.start_upload(package, "pipelines")
        await append(store, session, b"hello ", b"world")
        assert await store.blob(package, digest_of(b"hello world")) is None
        with pytest.raises(DigestMismatch) as exc:
            await finish(store, session, digest_of(b"something else"))
        assert http_error(exc.value).code == "DIGEST_INVALID"
        assert await store.blob(package, digest_of(b"hello world")) is None
        assert await store.blob(package, digest_of(b"something else")) is None
        assert list((tmp_path / "uploads").iterdir()) == []
        assert not any(p.is_file() for p in (tmp_path / "blobs").rglob("*"))

        record = await upload(store, package, b"hello world", b"hello", b" world")
        assert record.size == 11
        assert (await store.blob(package, record.digest)).size == 11
        assert store.blob_path(package, record.digest).read_bytes() == b"hello world"
        # Visible in the package that uploaded it, not in another one of the workspace until mounted.
        other = await store.package("acme", "other-app")
        assert await store.blob(other, record.digest) is None
        assert (await store.mount(other, record.digest)).size == 11
        assert await store.blob(other, record.digest) is not None
    run(scenario, tmp_path)


def test_streaming_past_the_limit_discards_the_session(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        session = await store.start_upload(package, "pipelines")
        with pytest.raises(UploadTooLarge) as exc:
            await append(store, session, b"x" * 600, b"x" * 600)
        answer = http_error(exc.value)
        assert answer.status == 413 and "1024 bytes" in answer.message
        assert list((tmp_path / "uploads").iterdir()) == []
        with pytest.raises(UploadUnknown) as exc:
            store.upload(session.id, package, "pipelines")
        assert http_error(exc.value).code == "BLOB_UPLOAD_UNKNOWN"
    run(scenario, tmp_path)


def test_sessions_belong_to_their_member_and_package(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        other = await store.package("acme", "other-app")
        session = await store.start_upload(package, "pipelines")
        for pkg, user in ((package, "boss"), (other, "pipelines")):
            with pytest.raises(UploadUnknown) as exc:
                store.upload(session.id, pkg, user)
            assert http_error(exc.value).code == "BLOB_UPLOAD_UNKNOWN"
        assert store.upload(session.id, package, "pipelines") is session
    run(scenario, tmp_path)


def test_a_blob_uploaded_again_while_marked_for_deletion_survives_the_collection(tmp_path: Path):
    """The race the collection must win: a client re-uploads content the collection has chosen."""
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        digest = (await upload(store, package, b"shared layer")).digest
        # A collection chose the blob (unreferenced, past the grace period) ...
        marked, _ = await store.mark_unreferenced_blobs("acme", time.time() + 1)
        assert [d for d, _ in marked] == [digest]
        assert await store.blob(package, digest) is None  # a blob being deleted is never reported present
        # ... then a push uploads the same content again before the collection deletes it.
        await upload(store, package, b"shared layer")
        assert await store.blob(package, digest) is not None
        # The collection re-checks under the workspace lock and must skip it.
        assert await store.delete_marked_blobs("acme", [digest]) == []
        result = await Collector(store).collect("acme")
        assert result.blobs_deleted == 0
        assert store.blob_path(package, digest).read_bytes() == b"shared layer"
    run(scenario, tmp_path)


def test_collection_frees_unreferenced_blobs_and_keeps_referenced_ones(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        kept = (await upload(store, package, b"config")).digest
        layer = (await upload(store, package, b"layer")).digest
        loose = (await upload(store, package, b"loose")).digest
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": kept, "size": 6},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
        }).encode()
        await store.put_manifest(package, "v1", manifest, None)
        result = await Collector(store).collect("acme")
        assert (result.blobs_deleted, result.freed_bytes) == (1, 5)
        assert await store.blob(package, loose) is None
        assert not store.blob_path(package, loose).exists()
        for digest in (kept, layer):
            assert await store.blob(package, digest) is not None
            assert store.blob_path(package, digest).exists()
    run(scenario, tmp_path, grace_seconds=0)


def test_nothing_younger_than_the_grace_period_is_collected(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        digest = (await upload(store, package, b"recent")).digest
        result = await Collector(store).collect("acme")
        assert (result.blobs_deleted, result.deferred) == (0, 1)
        assert await store.blob(package, digest) is not None
    run(scenario, tmp_path, grace_seconds=60)


OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


async def push_image(store: Store, package, tag: str | None, layer: bytes) -> str:
    config = (await upload(store, package, b"config-" + layer)).digest
    blob = (await upload(store, package, layer)).digest
    body = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": OCI_CONFIG, "digest": config, "size": len(layer) + 7},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob, "size": len(layer)}],
    }).encode()
    digest, _ = await store.put_manifest(package, tag or digest_of(body), body, None)
    return digest


def test_reclaimable_counts_what_a_collection_would_free(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        await push_image(store, package, "kept", b"k" * 100)
        await push_image(store, package, "dropped", b"d" * 1000)
        child = await push_image(store, package, None, b"c" * 10)
        child_size = len((await store.resolve(package, child)).body)
        index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                           "digest": child, "size": child_size}]}).encode()
        await store.put_manifest(package, "multi", index, None)
        figures = await store.storage_figures("acme")  # a grace period of 60 s
        assert (figures.reclaimable_bytes, figures.reclaimable_blobs) == (0, 0)

        # A deleted tag's blobs are reclaimable at once, though its manifest is still stored;
        # an index's children count only once the index has lost its tag too.
        await store.delete_tag(package, "dropped", False)
        figures = await store.storage_figures("acme")
        assert (figures.reclaimable_bytes, figures.reclaimable_blobs) == (2007, 2)
        assert figures.reclaimable_now_bytes == 0  # all still inside the grace period
        await store.delete_tag(package, "multi", False)
        figures = await store.storage_figures("acme")
        assert (figures.reclaimable_bytes, figures.reclaimable_blobs) == (2007 + 27, 4)
    run(scenario, tmp_path)


def test_a_collection_deferring_an_untagged_manifest_comes_back_for_it(tmp_path: Path):
    async def scenario(store: Store):
        package = await store.package("acme", "my-container-app")
        await push_image(store, package, "v1", b"x" * 100)
        await store.delete_tag(package, "v1", False)
        collector = Collector(store)
        result = await collector.collect("acme")
        assert (result.manifests_deleted, result.blobs_deleted) == (0, 0)
        # Nothing is unreferenced yet (the untagged manifest still references the blobs), but the
        # manifest waits out its grace period: a collection must be scheduled for then.
        timer = collector.timers.get("acme")
        assert timer is not None and not timer.cancelled()
        assert 59 < timer.when() - asyncio.get_running_loop().time() <= 61
        timer.cancel()
    run(scenario, tmp_path, grace_seconds=60)
