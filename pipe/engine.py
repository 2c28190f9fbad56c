"""The native push: plan, transfer, publish, in that order and never back.

plan      what the registry already holds: the manifests and configs under the target tags (and the
          CACHE_FROM tags) give diff ID -> compressed digest; each is confirmed with a HEAD (skip) or
          mounted from another package of the workspace. Nothing is read from the daemon yet, and
          when every layer and the config are there, nothing is read at all.
transfer  the export stream, once: layers the registry has are skipped unread; the
          others are compressed on every core (compression.py) and sent in chunks, several layers
          at once, by a bounded pool of uploaders; a dropped chunk resumes where the registry says.
publish   a Docker v2 schema 2 manifest with the config bytes exactly as the daemon holds them, PUT
          once per tag.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

from .compression import GZIP_LAYER_TYPE, GzipLayer, return_big_buffers_to_the_kernel
from .errors import Kind, PipeFailure, RegistryError, RegistryFailure, capital
from .progress import TransferProgress
from .registry_client import ChunkedUploadRefused, RegistryClient, UploadLost
from .sources.archive_layers import DockerArchiveLayers
from .sources.daemon_export import ExportStream
from .sources.image import Blob, LayerEntry, LocalImage

log = logging.getLogger(__name__)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
GZIP_TYPES = (GZIP_LAYER_TYPE, "application/vnd.oci.image.layer.v1.tar+gzip")
READ_SIZE = 1024 * 1024
REPAIR_PASSES = 2


class LayerSource(Protocol):
    """What the transfer reads: the daemon's export, an archive's layers."""

    def layers(self) -> Iterator[LayerEntry]: ...


S = TypeVar("S", bound=LayerSource)


MAX_BLOB_BYTES = 32 * 1024 ** 3  # the registry's limit for one layer ("32 GB")


@dataclass(frozen=True)
class EngineOptions:
    chunk_size: int = 16 * 1024 * 1024
    parallel: int = 3
    level: int = 1
    threads: int | None = None
    max_blob_bytes: int = MAX_BLOB_BYTES


def blob_too_large(label: str, size: int, limit: int, how: str) -> str:
    gib = 1024 ** 3
    return (f"{capital(label)} is {size / gib:.1f} GiB {how}, over the registry's limit of "
            f"{limit / gib:g} GiB per layer: split it into smaller layers (e.g. several COPY or RUN steps)")


@dataclass
class Plan:
    """What the registry holds for this image, learned before anything is read."""

    layers: dict[str, Blob] = field(default_factory=dict)  # diff ID -> blob in the target
    mounted: set[str] = field(default_factory=set)  # diff IDs whose blob was mounted
    config_size: int | None = None  # the config blob's size when the target has it
    manifest: tuple[str, bytes] | None = None  # a manifest in the target of exactly this image


@dataclass
class PushResult:
    digest: str
    layers_uploaded: int
    layers_mounted: int
    layers_skipped: int
    pushed_bytes: int
    exported: bool  # whether any layer was read
    manifests: tuple[tuple[str, str], ...] = ()  # (platform, manifest digest) under an index
    index_digest: str | None = None


# -- plan -------------------------------------------------------------------------------------
def _image_manifest(client: RegistryClient, repository: str, reference: str,
                    image: LocalImage) -> tuple[str, bytes, dict] | None:
    """The single-platform manifest under `reference` (the matching child of an index)."""
    found = client.get_manifest(reference, repository)
    if found is None:
        return None
    media_type, body = found
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    media_type = media_type or str(doc.get("mediaType", ""))
    if media_type in INDEX_TYPES or "manifests" in doc:
        for child in doc.get("manifests") or []:
            platform = child.get("platform") or {}
            if (platform.get("os"), platform.get("architecture")) == (image.os, image.architecture) and \
                    (not image.variant or platform.get("variant", image.variant) == image.variant):
                return _image_manifest(client, repository, child["digest"], image)
        return None
    if media_type not in (DOCKER_MANIFEST, OCI_MANIFEST) and "layers" not in doc:
        return None
    return media_type, body, doc


def learn(client: RegistryClient, image: LocalImage, references: Iterable[tuple[str, str]],
          remembered: dict[str, Blob] | None = None) -> Plan:
    """Read the manifests under `references` ((repository, tag) pairs) and confirm what can be reused,
    with the blobs an earlier attempt of this push uploaded (`remembered`)."""
    plan = Plan()
    wanted = set(image.diff_ids)
    known: dict[str, tuple[Blob, str]] = {d: (blob, client.repository) for d, blob in (remembered or {}).items()
                                          if d in wanted}
    for repository, reference in references:
        found = _image_manifest(client, repository, reference, image)
        if found is None:
            log.debug("Nothing to learn from %s:%s", repository, reference)
            continue
        media_type, body, doc = found
        config_digest = (doc.get("config") or {}).get("digest")
        if config_digest == image.image_id and repository == client.repository and plan.manifest is None:
            plan.manifest = (media_type, body)
        config = client.get_blob(config_digest, repository) if config_digest else None
        try:
            diff_ids = json.loads(config or b"{}").get("rootfs", {}).get("diff_ids") or []
        except ValueError:
            diff_ids = []
        layers = doc.get("layers") or []
        if len(diff_ids) != len(layers):
            continue
        for diff_id, layer in zip(diff_ids, layers):
            if diff_id in wanted and layer.get("mediaType") in GZIP_TYPES and diff_id not in known:
                known[diff_id] = (Blob(layer["digest"], int(layer["size"])), repository)
        log.debug("Learned %d layer digests from %s:%s", len(known), repository, reference)
    for diff_id, (blob, repository) in known.items():
        if client.has_blob(blob.digest) is not None:
            plan.layers[diff_id] = blob
        elif repository != client.repository and client.mount(blob.digest, repository):
            plan.layers[diff_id] = blob
            plan.mounted.add(diff_id)
    plan.config_size = client.has_blob(image.image_id)
    if plan.manifest is not None and not all(d in plan.layers for d in image.diff_ids):
        plan.manifest = None  # its layers are not all there any more: build a new one
    return plan


# -- transfer ---------------------------------------------------------------------------------
class _LayerUpload:
    """One blob's upload: chunks from the compressor in, PATCHes out on a pool thread."""

    def __init__(self, client: RegistryClient, slots: threading.Semaphore, progress: TransferProgress,
                 label: str) -> None:
        self.client = client
        self.slots = slots
        self.progress = progress
        self.label = label
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.parts: list[bytes] = []  # compressed blocks not yet a chunk
        self.buffered = 0
        self.chunk_size = 0
        self.digest: str | None = None
        self.size = 0
        self.error: BaseException | None = None
        self.lost = False
        self.done = threading.Event()
        self.stopped = threading.Event()  # no more chunks will be taken: the feeder must not wait
        self.finished = False  # the blob is in the registry

    # Compressor side (its writer thread), in order.
    def feed(self, block: bytes) -> None:
        if self.error is not None or self.lost:
            return
        # Chunks need not be equal: joining whole blocks costs one copy, slicing a buffer two.
        self.parts.append(block)
        self.buffered += len(block)
        if self.buffered >= self.chunk_size:
            self._put(b"".join(self.parts))
            self.parts, self.buffered = [], 0

    def _put(self, chunk: bytes) -> None:
        # Bounded memory: wait for a free slot, but never past the upload's end (a failed push).
        while not self.slots.acquire(timeout=0.2):
            if self.stopped.is_set() or self.lost or self.error is not None:
                return
        if self.stopped.is_set():
            self.slots.release()
            return
        self.chunks.put(chunk)

    def close(self, digest: str, size: int) -> None:
        if self.parts:
            self._put(b"".join(self.parts))
            self.parts, self.buffered = [], 0
        self.digest, self.size = digest, size
        self.chunks.put(None)

    def abandon(self) -> None:
        self.stopped.set()
        self.chunks.put(None)

    # Uploader side (a pool thread).
    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, UploadLost):
            log.warning("The registry dropped the upload of %s (%s): it will be sent again", self.label, exc)
            self.lost = True
        else:
            self.error = exc

    def run(self) -> None:
        location: str | None = None
        offset = 0
        spool = None
        try:
            while True:
                chunk = self.chunks.get()
                if chunk is None:
                    break
                try:
                    if self.error is not None or self.lost:
                        continue  # drain, so the slots come back and the compressor never waits
                    if spool is None and self.client.chunked_refused:
                        spool = tempfile.TemporaryFile(prefix="pipe-blob-")
                    if spool is not None:
                        spool.write(chunk)
                        continue
                    if location is None:
                        location = self.client.start_upload()
                    try:
                        location = self.client.send_chunk(location, memoryview(chunk), offset, self.progress.sent)
                        offset += len(chunk)
                    except ChunkedUploadRefused as exc:
                        if offset:
                            raise
                        # Keep this blob (and the next ones) in a file and PUT each whole.
                        log.info("The registry refused a chunked upload (%s): sending each layer in one request", exc)
                        self.client.chunked_refused = True
                        self.client.cancel(location)
                        location = None
                        spool = tempfile.TemporaryFile(prefix="pipe-blob-")
                        spool.write(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self._failed(exc)
                finally:
                    self.slots.release()
            if self.error is not None or self.lost or self.digest is None:
                if location:
                    self.client.cancel(location)
                return
            if spool is not None:
                spool.seek(0)
                self.client.finish_upload(self.client.start_upload(), self.digest, spool, self.size)
                self.progress.sent(self.size)
            else:
                assert location is not None or self.size == 0
                self.client.finish_upload(location or self.client.start_upload(), self.digest)
            self.finished = True
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._failed(exc)
        finally:
            if spool is not None:
                spool.close()
            self.done.set()


@dataclass
class Transfer:
    client: RegistryClient
    options: EngineOptions
    progress: TransferProgress
    have: dict[str, Blob]  # entry key (diff ID, or a stored blob's digest) -> blob in the target
    uploaded: dict[str, Blob] = field(default_factory=dict)
    pending: list[tuple[_LayerUpload, Future, LayerEntry]] = field(default_factory=list)

    def run(self, export: LayerSource, only: set[str] | None = None) -> set[str]:
        """One pass over the export; returns the diff IDs whose upload must be done again."""
        # Compressed chunks held at once, across all layers: what bounds the pipe's memory.
        slots = threading.Semaphore(self.options.parallel + 1)
        try:
            with ThreadPoolExecutor(self.options.parallel, thread_name_prefix="upload") as pool:
                try:
                    for entry in export.layers():
                        self._check_failures()
                        need = entry.keys - set(self.have) - set(self.uploaded)
                        if only is not None:
                            need &= only
                        if not need:
                            log.debug("Skipping %s: the registry has it", entry.key)
                            entry.skip()
                            self.progress.skipped(entry.size)
                            continue
                        self._upload(entry, pool, slots)
                    self._wait()
                except BaseException:
                    for upload, _, _ in self.pending:
                        upload.error = upload.error or PipeFailure("cancelled")
                        upload.abandon()
                    raise
        finally:
            lost = self._collect()  # also on failure: a retried push must not send these again
        return lost - set(self.uploaded) - set(self.have)

    def _collect(self) -> set[str]:
        """Record the finished uploads; return the diff IDs whose upload the registry dropped."""
        lost = set()
        for upload, _, entry in self.pending:
            key = entry.result_key
            if key is None:
                continue
            if upload.finished and upload.digest:
                self.uploaded.setdefault(key, Blob(upload.digest, upload.size))
            elif upload.lost:
                lost.add(key)
        self.pending.clear()
        return lost

    def _upload(self, entry: LayerEntry, pool: ThreadPoolExecutor, slots: threading.Semaphore) -> None:
        upload = _LayerUpload(self.client, slots, self.progress, entry.label)
        upload.chunk_size = self.options.chunk_size
        future = pool.submit(upload.run)
        self.pending.append((upload, future, entry))
        started = time.monotonic()
        self.progress.layer_started(entry.label, entry.size, compressed=entry.stored is not None)
        if entry.stored is not None:
            self._send_stored(entry, upload)
            return
        gzip = GzipLayer(upload.feed, level=self.options.level, threads=self.options.threads)
        try:
            while True:
                data = entry.read(READ_SIZE)
                if not data:
                    break
                gzip.write(data)
                self.progress.read(len(data))
                if upload.error is not None:
                    raise upload.error
                if gzip.sink.size > self.options.max_blob_bytes:  # stop before the registry refuses it
                    raise PipeFailure(blob_too_large(entry.label, gzip.sink.size, self.options.max_blob_bytes,
                                                     "compressed (so far)"))
            digest, size = gzip.close()
        except BaseException:
            upload.abandon()  # first: the compressor's writer may be waiting for a slot
            gzip.abort()
            raise
        upload.close(digest, size)
        self.progress.layer_compressed(entry.label, entry.size, size, time.monotonic() - started)

    def _send_stored(self, entry: LayerEntry, upload: _LayerUpload) -> None:
        """A blob uploaded as it is stored; its bytes must hash to its digest before the upload ends."""
        assert entry.stored is not None
        blob = entry.stored
        size = 0
        try:
            while True:
                data = entry.read(READ_SIZE)
                if not data:
                    break
                size += len(data)  # the source's reader hashes what it hands out
                upload.feed(data)
                self.progress.read(len(data))
                if upload.error is not None:
                    raise upload.error
            digest = "sha256:" + entry.hasher.hexdigest()
            if (digest, size) != (blob.digest, blob.size):
                raise PipeFailure(f"{capital(entry.label)} does not match its digest: it holds "
                                  f"{size} bytes hashing to {digest}, but its manifest names {blob.size} bytes "
                                  f"{blob.digest}. The archive is damaged: build or save the image again")
        except BaseException:
            upload.abandon()
            raise
        upload.close(blob.digest, blob.size)

    def _check_failures(self) -> None:
        for upload, _, _ in self.pending:
            if upload.error is not None:
                raise upload.error

    def _wait(self) -> None:
        for upload, future, _ in self.pending:
            future.result()
            if upload.error is not None:
                raise upload.error


def transfer_all(transfer: Transfer, open_source: Callable[[], S], remembered: dict[str, Blob]) -> S:
    """Every needed layer of the source uploaded: one pass, then a pass more (at most REPAIR_PASSES)
    for the layers whose upload the registry dropped. Returns the first pass's source."""
    return_big_buffers_to_the_kernel()
    source = open_source()
    try:
        lost = transfer.run(source)
        passes = 0
        while lost:
            passes += 1
            if passes > REPAIR_PASSES:
                raise RegistryFailure(RegistryError(Kind.CONNECTION_LOST, f"the registry dropped the upload of "
                                                    f"{len(lost)} layer(s) {REPAIR_PASSES + 1} times", True))
            log.info("Reading the image again for %d layer(s) the registry dropped", len(lost))
            lost = transfer.run(open_source(), only=lost)
    finally:
        remembered.update(transfer.uploaded)
    return source


# -- publish ----------------------------------------------------------------------------------
def build_manifest(config: Blob, layers: list[Blob]) -> bytes:
    """A Docker v2 schema 2 manifest, laid out as `docker push` writes it (3-space indent)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": GZIP_LAYER_TYPE, "size": blob.size, "digest": blob.digest} for blob in layers],
    }
    return json.dumps(doc, indent=3).encode()


def publish(client: RegistryClient, tags: Iterable[str], media_type: str, body: bytes,
            on_tag: Callable[[str, str], None]) -> str:
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    for tag in tags:
        reported = client.put_manifest(tag, media_type, body)
        if reported and reported != digest:
            raise RegistryFailure(RegistryError(Kind.OTHER, f"the registry stored the manifest as {reported}, "
                                                            f"not {digest}", False))
        on_tag(tag, digest)
    return digest


# -- the whole push ---------------------------------------------------------------------------
def push(
    client: RegistryClient,
    image: LocalImage,
    tags: list[str],
    learn_from: list[tuple[str, str]],
    open_export: Callable[[], ExportStream | DockerArchiveLayers],
    options: EngineOptions,
    progress: TransferProgress,
    on_tag: Callable[[str, str], None],
    remembered: dict[str, Blob] | None = None,
) -> PushResult:
    """The whole push. `remembered` carries the blobs uploaded across attempts of the same push."""
    remembered = {} if remembered is None else remembered
    plan = learn(client, image, [(client.repository, tag) for tag in tags] + learn_from, remembered)
    skipped = len([d for d in set(image.diff_ids) if d in plan.layers and d not in plan.mounted])
    mounted = len(plan.mounted & set(image.diff_ids))
    if plan.manifest is not None:
        log.info("The registry already holds this image (config %s): no layer to read", image.image_id[:19])
        digest = publish(client, tags, plan.manifest[0], plan.manifest[1], on_tag)
        return PushResult(digest, 0, mounted, skipped, 0, exported=False)
    missing = [d for d in dict.fromkeys(image.diff_ids) if d not in plan.layers]
    if not missing and plan.config_size is not None:
        layers = [plan.layers[d] for d in image.diff_ids]
        log.info("Every layer and the config are in the registry already: no layer to read")
        body = build_manifest(Blob(image.image_id, plan.config_size), layers)
        digest = publish(client, tags, DOCKER_MANIFEST, body, on_tag)
        return PushResult(digest, 0, mounted, skipped, 0, exported=False)

    progress.plan(len(set(image.diff_ids)), len(missing), skipped, mounted)
    transfer = Transfer(client, options, progress, dict(plan.layers))
    config = transfer_all(transfer, open_export, remembered).config
    assert config is not None
    layers = []
    for diff_id in image.diff_ids:
        blob = transfer.have.get(diff_id) or transfer.uploaded.get(diff_id)
        if blob is None:
            raise PipeFailure(f"Layer {diff_id} was neither found in the registry nor uploaded: this is a bug")
        layers.append(blob)
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    pushed = sum(blob.size for blob in transfer.uploaded.values())
    if plan.config_size is None:
        client.upload_whole(config, config_digest)
        pushed += len(config)
    digest = publish(client, tags, DOCKER_MANIFEST, build_manifest(Blob(config_digest, len(config)), layers), on_tag)
    uploaded = len(transfer.uploaded)
    return PushResult(digest, uploaded, mounted, skipped, pushed, exported=True)
