"""The transfer: one sweep over the source's layers; the layers the registry has are skipped unread,
the others compressed on every core (compression.py) or sent as stored, in chunks, several layers at
once, by a bounded pool of uploaders. A source whose blobs open on their own (a registry) is copied
several blobs at once instead, each read and sent on one thread with every PATCH streamed as the
source delivers it (`_StoredCopy`).

Per-blob resume lives here and in chunks.py (see retry.py for the budgets): a chunk that fails
transiently goes on from the offset the registry reports (`send_chunk`); a blob whose upload the
registry forgot is read again in a later sweep over the source (`transfer`).
"""
from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..client.api import ChunkedUploadRefused, UploadLost
from ..compression import GzipLayer, return_big_buffers_to_the_kernel
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure, blob_too_large_message, capital
from ..oci import LABEL_BYTES, Descriptor, content_problem, hex_digest
from ..retry import BLOB_PASSES
from ..sources.image import LayerEntry, LayerPass
from .chunks import PIECE, StreamedChunk, send_chunk
from .session import PushSession

log = logging.getLogger(__name__)


class LabelCheck:
    """A blob's first bytes against the media type its manifest declares, as it streams: a manifest
    must not say gzip of a plain tar (docker's pull copes by sniffing; tools that trust it fail)."""

    def __init__(self, entry: LayerEntry) -> None:
        self.entry = entry
        self.head = b""
        self.decided = not entry.media_type

    def see(self, data: bytes) -> None:
        if not self.decided:
            self.head += data[:LABEL_BYTES - len(self.head)]
            if len(self.head) >= LABEL_BYTES:
                self.end()

    def end(self) -> None:
        if self.decided:
            return
        self.decided = True
        why = content_problem(self.entry.media_type, self.head)
        if why:
            name = f" ({self.entry.stored.digest[:19]})" if self.entry.stored is not None else ""
            raise PipeFailure(f"{capital(self.entry.label)}{name} is refused: {why}. Its manifest states something "
                              "false; build or save the image again with a tool that labels its layers (nothing was "
                              "tagged)")


def check_stored(entry: LayerEntry, size: int, remedy: str) -> None:
    """A stored blob's `size` bytes, hashed by its reader (`entry.hasher`), against the digest and size
    its manifest names; before its upload is finished."""
    assert entry.stored is not None
    blob, digest = entry.stored, hex_digest(entry.hasher)
    if (digest, size) != (blob.digest, blob.size):
        raise PipeFailure(f"{capital(entry.label)} does not match its digest: it holds {size} bytes hashing to "
                          f"{digest}, but its manifest names {blob.size} bytes {blob.digest}. {remedy}")


class _LayerUpload:
    """One blob's upload: chunks from the compressor in, PATCHes out on a pool thread."""

    def __init__(self, transfer: Transfer, slots: threading.Semaphore, label: str) -> None:
        self.transfer = transfer
        self.client = transfer.session.client
        self.slots = slots
        self.progress = transfer.session.progress
        self.label = label
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.parts: list[bytes] = []  # compressed blocks not yet a chunk
        self.buffered = 0
        self.chunk_size = transfer.session.options.chunk_size
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
                    if spool is None and self.transfer.chunked_refused:
                        spool = tempfile.TemporaryFile(prefix="pipe-blob-")
                    if spool is not None:
                        spool.write(chunk)
                        continue
                    if location is None:
                        location = self.client.start_upload()
                    try:
                        location = send_chunk(self.client, location, memoryview(chunk), offset, self.progress.sent)
                        offset += len(chunk)
                    except ChunkedUploadRefused as exc:
                        # Keep this blob (and the next ones) in a file and PUT each whole.
                        self.transfer.refuse_chunks(exc, location, offset)
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


class _StoredCopy:
    """One stored blob of a registry source, read and sent on one reader thread: each chunk is a PATCH
    whose body streams from the source's GET (chunks.StreamedChunk), so no chunk waits whole in memory
    before it goes and the source's read overlaps the destination's write. The bytes must hash to
    the blob's digest before the upload is finished."""

    def __init__(self, transfer: Transfer, entry: LayerEntry) -> None:
        assert entry.stored is not None
        self.transfer = transfer
        self.client = transfer.session.client
        self.progress = transfer.session.progress
        self.entry = entry
        self.blob = entry.stored
        self.label = LabelCheck(entry)
        self.digest: str | None = None
        self.size = 0
        self.error: BaseException | None = None
        self.lost = False
        self.stopped = threading.Event()
        self.finished = False

    def abandon(self) -> None:
        self.stopped.set()

    def _read(self, n: int) -> bytes:
        if self.stopped.is_set():
            raise PipeFailure("cancelled")
        data = self.entry.read(n)
        self.label.see(data)
        self.progress.read(len(data))
        return data

    def run(self) -> None:
        try:
            if self.stopped.is_set():
                return
            self.progress.layer_started(self.entry.label, self.entry.size, compressed=True)
            self._copy()
            self.digest, self.size = self.blob.digest, self.blob.size
            self.finished = True
        except UploadLost as exc:
            log.warning("The registry dropped the upload of %s (%s): it will be sent again", self.entry.label, exc)
            self.lost = True
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.error = exc

    def _copy(self) -> None:
        chunk_size = self.transfer.session.options.chunk_size
        location: str | None = None
        offset = 0
        try:
            if self.transfer.chunked_refused:
                self._whole(None)
                return
            location = self.client.start_upload()
            while offset < self.blob.size:
                chunk = StreamedChunk(self._read, min(chunk_size, self.blob.size - offset), capital(self.entry.label))
                try:
                    location = send_chunk(self.client, location, chunk, offset, self.progress.sent)
                except ChunkedUploadRefused as exc:
                    self.transfer.refuse_chunks(exc, location, offset)
                    location = None
                    self._whole(chunk)
                    return
                offset += len(chunk)
            self._check()
            self.client.finish_upload(location, self.blob.digest)
            location = None
        finally:
            if location is not None:
                self.client.cancel(location)

    def _whole(self, first: StreamedChunk | None) -> None:
        """The blob in one PUT, from a spool file (a registry that takes no PATCH)."""
        with tempfile.TemporaryFile(prefix="pipe-blob-") as spool:
            if first is not None:
                for piece in first.drain():
                    spool.write(piece)
            while data := self._read(PIECE):
                spool.write(data)
            self._check()
            spool.seek(0)
            self.client.finish_upload(self.client.start_upload(), self.blob.digest, spool, self.blob.size)
            self.progress.sent(self.blob.size)

    def _check(self) -> None:
        # Every chunk was read whole, so the size is the blob's (its stream never reads past it).
        self.label.end()
        check_stored(self.entry, self.blob.size, "The source registry serves a damaged blob: push the image there "
                     "again")


@dataclass
class Transfer:
    """The sweeps of one push; `have` (layer key -> blob in the target) grows with what is sent."""

    session: PushSession
    have: dict[str, Descriptor]
    chunked_refused: bool = False  # set once the registry refused a PATCH: later blobs go whole
    pending: list[tuple[_LayerUpload | _StoredCopy, Future, LayerEntry]] = field(default_factory=list)

    @property
    def uploaded(self) -> dict[str, Descriptor]:
        return self.session.uploaded

    def refuse_chunks(self, refused: ChunkedUploadRefused, location: str, offset: int) -> None:
        """The registry took no PATCH for an upload at `offset`: from its first byte, this blob and the
        next ones go whole (one PUT each); past it, the upload fails."""
        if offset:
            raise refused
        log.info("The registry refused a chunked upload (%s): sending each layer in one request", refused)
        self.chunked_refused = True
        self.session.client.cancel(location)

    def sweep(self, source: LayerPass, only: set[str] | None = None) -> set[str]:
        """One pass over the source; returns the keys whose upload the registry dropped."""
        options = self.session.options
        # Compressed chunks held at once, across all layers: what bounds the pipe's memory.
        slots = threading.Semaphore(options.parallel + 1)
        # A source whose blobs open independently (a registry) is copied `parallel` blobs at once, each
        # read and sent on one thread of its own.
        readers = ThreadPoolExecutor(options.parallel, thread_name_prefix="copy") if source.parallel_reads else None
        try:
            with ThreadPoolExecutor(options.parallel, thread_name_prefix="upload") as pool:
                try:
                    for entry in source.layers():
                        self._check_failures()
                        need = entry.keys - set(self.have) - set(self.uploaded)
                        if only is not None:
                            need &= only
                        if not need:
                            log.debug("Skipping %s: the registry has it", entry.key)
                            entry.skip()
                            self.session.progress.skipped(entry.size)
                            continue
                        if readers is not None and entry.stored is not None:
                            copy = _StoredCopy(self, entry)
                            self.pending.append((copy, readers.submit(copy.run), entry))
                        else:
                            self._upload(entry, pool, slots)
                    self._wait()
                except BaseException:
                    for upload, _, _ in self.pending:
                        upload.error = upload.error or PipeFailure("cancelled")
                        upload.abandon()
                    raise
                finally:
                    if readers is not None:
                        readers.shutdown(wait=True)
        finally:
            lost = self._collect()  # also on failure: what finished is not sent again
        return lost - set(self.uploaded) - set(self.have)

    def _collect(self) -> set[str]:
        """Record the finished uploads; return the keys whose upload the registry dropped."""
        lost = set()
        for upload, _, entry in self.pending:
            key = entry.result_key
            if key is None:
                continue
            if upload.finished and upload.digest:
                self.uploaded.setdefault(key, Descriptor(upload.digest, upload.size))
            elif upload.lost:
                lost.add(key)
        self.pending.clear()
        return lost

    def _upload(self, entry: LayerEntry, pool: ThreadPoolExecutor, slots: threading.Semaphore) -> None:
        upload = _LayerUpload(self, slots, entry.label)
        future = pool.submit(upload.run)
        self.pending.append((upload, future, entry))
        started = time.monotonic()
        progress, options = self.session.progress, self.session.options
        progress.layer_started(entry.label, entry.size, compressed=entry.stored is not None)
        if entry.stored is not None:
            self._send_stored(entry, upload)
            return
        gzip = GzipLayer(upload.feed, level=options.level, threads=options.threads)
        label = LabelCheck(entry)
        try:
            while True:
                data = entry.read(PIECE)
                if not data:
                    label.end()
                    break
                label.see(data)
                gzip.write(data)
                progress.read(len(data))
                if upload.error is not None:
                    raise upload.error
                if gzip.sink.size > options.max_blob_bytes:  # stop before the registry refuses it
                    raise PipeFailure(blob_too_large_message(entry.label, gzip.sink.size, options.max_blob_bytes,
                                                             "compressed (so far)"))
            digest, size = gzip.close()
        except BaseException:
            upload.abandon()  # first: the compressor's writer may be waiting for a slot
            gzip.abort()
            raise
        upload.close(digest, size)
        progress.layer_compressed(entry.label, entry.size, size, time.monotonic() - started)

    def _send_stored(self, entry: LayerEntry, upload: _LayerUpload) -> None:
        """A blob uploaded as it is stored; its bytes must hash to its digest before the upload ends."""
        assert entry.stored is not None
        blob = entry.stored
        size = 0
        label = LabelCheck(entry)
        # Read a chunk at a time: it goes up as it is read, with no buffer of parts to join.
        piece = self.session.options.chunk_size
        try:
            while True:
                data = entry.read(piece)
                if not data:
                    label.end()
                    break
                label.see(data)
                size += len(data)  # the source's reader hashes what it hands out
                upload.feed(data)
                self.session.progress.read(len(data))
                if upload.error is not None:
                    raise upload.error
            check_stored(entry, size, "The archive is damaged: build or save the image again")
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


def transfer(session: PushSession, have: dict[str, Descriptor], open_source: Callable[[], LayerPass]) -> LayerPass:
    """Every layer the registry lacks, sent: one sweep, then one more (at most BLOB_PASSES in all) for
    the blobs whose upload the registry dropped. Returns the first sweep's source (its config)."""
    return_big_buffers_to_the_kernel()
    run = Transfer(session, dict(have))
    source = open_source()
    lost = run.sweep(source)
    passes = 1
    while lost:
        if passes >= BLOB_PASSES:
            raise RegistryFailure(RegistryError(Kind.CONNECTION_LOST, f"the registry dropped the upload of "
                                                f"{len(lost)} layer(s) {BLOB_PASSES} times", True))
        passes += 1
        log.info("Reading the image again for %d layer(s) the registry dropped", len(lost))
        lost = run.sweep(open_source(), only=lost)
    return source
