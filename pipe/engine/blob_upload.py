"""What every blob upload of the transfer is, and how its bytes reach the registry.

`BlobUpload` is what the sweep (transfer.py) holds of an upload running on a thread of its own: its
outcome and how to stop it. `BlobWriter` sends a blob's chunks with PATCH (each resumed by
chunks.send_chunk); a registry that refuses a PATCH at a blob's first byte gets that blob and every
later one kept in a spool file and sent in one PUT (`Chunking` remembers it for the sweep). The two
uploaders are layer_upload.LayerUpload (chunks handed over by the compressor) and
stored_copy.StoredCopy (a source registry's blob, streamed).
"""
from __future__ import annotations

import logging
import tempfile
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import IO

from ..client.api import ChunkedUploadRefused, RegistryClient, UploadLost
from ..progress import TransferProgress
from .chunks import StreamedChunk, send_chunk

log = logging.getLogger(__name__)


class BlobUpload(ABC):
    """One blob's upload, run on a pool thread. Its outcome, read by the sweep once `run` returned:
    `finished` (the blob `digest`, `size` is in the registry), `lost` (the registry forgot the upload:
    a later sweep sends the blob again) or `error` (the push fails with it). `abandon` stops it when
    the push fails: it then reads and sends nothing more."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.digest: str | None = None
        self.size = 0
        self.error: BaseException | None = None
        self.lost = False
        self.finished = False  # the blob is in the registry
        self.stopped = threading.Event()

    @abstractmethod
    def run(self) -> None:
        """The upload, to its end; it raises nothing: what went wrong is its `error` or `lost`."""

    def abandon(self) -> None:
        self.stopped.set()

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, UploadLost):
            log.warning("The registry dropped the upload of %s (%s): it will be sent again", self.label, exc)
            self.lost = True
        else:
            self.error = exc


@dataclass
class Chunking:
    """Whether the registry takes chunks, as the uploads of one push learn it."""

    refused: bool = False  # set once the registry refused a PATCH: later blobs go whole

    def refuse(self, refused: ChunkedUploadRefused, offset: int) -> None:
        """The registry took no PATCH for an upload at `offset`: from its first byte, this blob and the
        next ones go whole (one PUT each); past it, the upload fails."""
        if offset:
            raise refused
        log.info("The registry refused a chunked upload (%s): sending each layer in one request", refused)
        self.refused = True


class BlobWriter:
    """One blob into the registry, a chunk at a time: PATCHed, or (once PATCH is refused) kept in a
    spool file for one PUT at `finish`. Close it in a `finally`; `cancel` what is not finished."""

    def __init__(self, client: RegistryClient, progress: TransferProgress, chunking: Chunking) -> None:
        self.client = client
        self.progress = progress
        self.chunking = chunking
        self.location: str | None = None  # the upload session, once a chunk was sent
        self.offset = 0  # bytes acknowledged by the registry
        self.spool: IO[bytes] | None = None

    def append(self, chunk: bytes | StreamedChunk) -> None:
        if self.spool is None and self.location is None and self.chunking.refused:
            self.spool = tempfile.TemporaryFile(prefix="pipe-blob-")
        if self.spool is not None:
            self._keep(chunk)
            return
        if self.location is None:
            self.location = self.client.start_upload()
        try:
            body = memoryview(chunk) if isinstance(chunk, bytes) else chunk
            self.location = send_chunk(self.client, self.location, body, self.offset, self.progress.sent)
            self.offset += len(chunk)
        except ChunkedUploadRefused as exc:
            self.chunking.refuse(exc, self.offset)
            self.cancel()
            self.spool = tempfile.TemporaryFile(prefix="pipe-blob-")
            self._keep(chunk)

    def _keep(self, chunk: bytes | StreamedChunk) -> None:
        assert self.spool is not None
        if isinstance(chunk, StreamedChunk):
            for piece in chunk.drain():
                self.spool.write(piece)
        else:
            self.spool.write(chunk)

    def finish(self, digest: str, size: int) -> None:
        """The upload ends: the blob is `digest`, `size` bytes (all sent, or all in the spool)."""
        if self.spool is not None:
            self.spool.seek(0)
            self.client.finish_upload(self.client.start_upload(), digest, self.spool, size)
            self.progress.sent(size)
        else:
            assert self.location is not None or size == 0
            self.client.finish_upload(self.location or self.client.start_upload(), digest)
        self.location = None

    def cancel(self) -> None:
        if self.location is not None:
            self.client.cancel(self.location)
            self.location = None

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()
