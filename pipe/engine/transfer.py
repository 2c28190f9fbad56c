"""The transfer: sweeps over the source's layers; the layers the registry has are skipped unread, the
others sent by a bounded pool of uploads (blob_upload.BlobUpload): compressed on every core or sent as
stored, a chunk at a time, several layers at once (layer_upload.py). A source whose blobs open on their
own (a registry) is copied several blobs at once instead, each read and sent on one thread with every
PATCH streamed as the source delivers it (stored_copy.py).

Per-blob resume lives in chunks.py (see retry.py for the budgets): a chunk that fails transiently goes
on from the offset the registry reports (`send_chunk`); a blob whose upload the registry forgot is read
again in a later sweep over the source, here (`transfer`).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..compression import return_big_buffers_to_the_kernel
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure
from ..oci import Descriptor
from ..retry import BLOB_PASSES
from ..sources.image import LayerEntry, LayerPass
from .blob_upload import BlobUpload, Chunking
from .layer_upload import LayerUpload, send_layer
from .session import PushSession
from .stored_copy import StoredCopy

log = logging.getLogger(__name__)


@dataclass
class Transfer:
    """The sweeps of one push; `have` (layer key -> blob in the target) grows with what is sent."""

    session: PushSession
    have: dict[str, Descriptor]
    chunking: Chunking = field(default_factory=Chunking)  # once the registry refused a PATCH, blobs go whole
    pending: list[tuple[BlobUpload, Future, LayerEntry]] = field(default_factory=list)

    @property
    def uploaded(self) -> dict[str, Descriptor]:
        return self.session.uploaded

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
                            copy = StoredCopy(self.session, self.chunking, entry)
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
        upload = LayerUpload(self.session, self.chunking, slots, entry.label)
        self.pending.append((upload, pool.submit(upload.run), entry))
        send_layer(self.session, entry, upload)

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
