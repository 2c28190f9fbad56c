"""A layer compressed on every core as the sweep reads it (or a stored blob of an archive, sent as it
is), handed over a chunk at a time to its upload on a pool thread: `send_layer` feeds, `LayerUpload`
sends. The chunks held at once, across all layers, are bounded by the sweep's slots."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

from ..compression import GzipLayer
from ..errors import PipeFailure, blob_too_large_message
from ..sources.image import LayerEntry
from .blob_checks import LabelCheck, check_stored
from .blob_upload import BlobUpload, BlobWriter, Chunking
from .chunks import PIECE
from .session import PushSession


class LayerUpload(BlobUpload):
    """One blob's upload: chunks from the compressor in, PATCHes out on a pool thread."""

    def __init__(self, session: PushSession, chunking: Chunking, slots: threading.Semaphore, label: str) -> None:
        super().__init__(label)
        self.writer = BlobWriter(session.client, session.progress, chunking)
        self.slots = slots
        self.chunks: queue.Queue[bytes | None] = queue.Queue()
        self.parts: list[bytes] = []  # compressed blocks not yet a chunk
        self.buffered = 0
        self.chunk_size = session.options.chunk_size

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
        super().abandon()  # the feeder must not wait for a slot: no more chunks will be taken
        self.chunks.put(None)

    # Uploader side (a pool thread).
    def run(self) -> None:
        try:
            while (chunk := self.chunks.get()) is not None:
                try:
                    # After a failure, drain: the slots come back and the compressor never waits.
                    if self.error is None and not self.lost:
                        self.writer.append(chunk)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.failed(exc)
                finally:
                    self.slots.release()
            if self.error is not None or self.lost or self.digest is None:
                self.writer.cancel()
                return
            self.writer.finish(self.digest, self.size)
            self.finished = True
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.failed(exc)
        finally:
            self.writer.close()


def _pieces(session: PushSession, entry: LayerEntry, upload: BlobUpload, piece: int) -> Iterator[bytes]:
    """`entry` read to its end `piece` bytes at a time, each checked against its label before the caller
    takes it and counted after; the upload's error, once it has one, ends the reading."""
    label = LabelCheck(entry)
    while data := entry.read(piece):
        label.see(data)
        yield data
        session.progress.read(len(data))
        if upload.error is not None:
            raise upload.error
    label.end()


def send_layer(session: PushSession, entry: LayerEntry, upload: LayerUpload) -> None:
    """Read `entry` to its end into `upload` (running on a pool thread): compressed, or as stored."""
    started = time.monotonic()
    progress, options = session.progress, session.options
    progress.layer_started(entry.label, entry.size, compressed=entry.stored is not None)
    if entry.stored is not None:
        _send_stored(session, entry, upload)
        return
    gzip = GzipLayer(upload.feed, level=options.level, threads=options.threads)
    try:
        for data in _pieces(session, entry, upload, PIECE):
            gzip.write(data)
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


def _send_stored(session: PushSession, entry: LayerEntry, upload: LayerUpload) -> None:
    """A blob uploaded as it is stored; its bytes must hash to its digest before the upload ends."""
    assert entry.stored is not None
    blob = entry.stored
    size = 0
    try:
        # A chunk at a time: it goes up as it is read, with no buffer of parts to join.
        for data in _pieces(session, entry, upload, session.options.chunk_size):
            size += len(data)  # the source's reader hashes what it hands out
            upload.feed(data)
        check_stored(entry, size, "The archive is damaged: build or save the image again")
    except BaseException:
        upload.abandon()
        raise
    upload.close(blob.digest, blob.size)
