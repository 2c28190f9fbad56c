"""A stored blob of a registry source copied to the destination on one reader thread: each chunk is a
PATCH whose body streams from the source's GET (chunks.StreamedChunk), so no chunk waits whole in
memory before it goes and the source's read overlaps the destination's write. The bytes must hash to
the blob's digest before the upload is finished."""
from __future__ import annotations

from ..errors import PipeFailure, capital
from ..sources.image import LayerEntry
from .blob_checks import LabelCheck, check_stored
from .blob_upload import BlobUpload, BlobWriter, Chunking
from .chunks import StreamedChunk
from .session import PushSession


class StoredCopy(BlobUpload):
    """One stored blob of a registry source, read and sent on one reader thread."""

    def __init__(self, session: PushSession, chunking: Chunking, entry: LayerEntry) -> None:
        assert entry.stored is not None
        super().__init__(entry.label)
        self.session = session
        self.chunking = chunking
        self.progress = session.progress
        self.entry = entry
        self.blob = entry.stored
        self.check = LabelCheck(entry)

    def _read(self, n: int) -> bytes:
        if self.stopped.is_set():
            raise PipeFailure("cancelled")
        data = self.entry.read(n)
        self.check.see(data)
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
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.failed(exc)

    def _copy(self) -> None:
        chunk_size = self.session.options.chunk_size
        writer = BlobWriter(self.session.client, self.progress, self.chunking)
        offset = 0
        try:
            while offset < self.blob.size:
                chunk = StreamedChunk(self._read, min(chunk_size, self.blob.size - offset), capital(self.entry.label))
                writer.append(chunk)
                offset += len(chunk)
            # Every chunk was read whole, so the size is the blob's (its stream never reads past it).
            self.check.end()
            check_stored(self.entry, self.blob.size, "The source registry serves a damaged blob: push the image "
                         "there again")
            writer.finish(self.blob.digest, self.blob.size)
        finally:
            writer.cancel()
            writer.close()
