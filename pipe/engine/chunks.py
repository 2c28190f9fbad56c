"""A chunk of an upload: `send_chunk` appends one at an offset and resumes it after a drop, from the
offset the registry reports; `StreamedChunk` is a chunk whose bytes are read from the source as the
PATCH sends them (a stored blob of a registry), so the source's read and the destination's write
overlap as in a bare GET -> PUT, and kept until the registry acknowledges them.
"""
from __future__ import annotations

import logging
from typing import Callable, Iterator, Protocol

from ..client.api import RegistryClient, UploadLost
from ..errors import PipeFailure, RegistryFailure
from ..retry import CHUNK_RESUMES, RetryPolicy, retry_loop

log = logging.getLogger(__name__)

PIECE = 1024 * 1024  # a streamed chunk is read, hashed and sent this much at a time


class Chunk(Protocol):
    """What `send_chunk` sends: bytes (a memoryview) or a StreamedChunk; `chunk[n:]` is what follows
    byte n, with a length, as requests sends it."""

    def __len__(self) -> int: ...
    def __getitem__(self, part: slice) -> object: ...


def send_chunk(client: RegistryClient, location: str, data: Chunk, start: int,
               on_sent: Callable[[int], None] | None = None, policy: RetryPolicy = CHUNK_RESUMES) -> str:
    """Append `data` at byte `start`; after a dropped connection, a time-out or a 5xx, ask where the
    upload stands and send only what is missing. Returns the next location."""
    append = _Append(client, location, data, start, on_sent)
    return retry_loop(append.attempt, policy, retry_on=(RegistryFailure,), transient=lambda problem: problem.transient,
                    retry_after=lambda problem: problem.retry_after, waiting=append.waiting, resume=append.resume,
                    exhausted=append.exhausted, sleep=client.sleep)


class _Append:
    """One chunk's PATCHes: how much of it the registry acknowledged, and where the upload is now."""

    def __init__(self, client: RegistryClient, location: str, data: Chunk, start: int,
                 on_sent: Callable[[int], None] | None) -> None:
        self.client = client
        self.location = location
        self.data = data
        self.start = start
        self.on_sent = on_sent
        self.sent = 0  # of data, acknowledged by the registry
        self.whole = False  # the registry took all of it before the connection dropped

    def attempt(self) -> str:
        if not self.whole:
            self.location = self.client.patch(self.location, self.data[self.sent:], self.start + self.sent)
            if self.on_sent:
                self.on_sent(len(self.data) - self.sent)
        return self.location

    def waiting(self, problem: RegistryFailure, wait: float, attempt: int) -> None:
        log.warning("Upload of a chunk to %s failed (%s); resuming in %.0f s", self.client.repository, problem, wait)

    def resume(self, problem: RegistryFailure) -> None:
        start, length = self.start, len(self.data)
        held, self.location = self.client.upload_status(self.location)
        if held < start or held > start + length:
            raise UploadLost(f"the registry holds {held} bytes of the upload, expected {start} to "
                             f"{start + length}") from problem
        acknowledged = held - start
        if self.on_sent and acknowledged > self.sent:
            self.on_sent(acknowledged - self.sent)
        self.sent = acknowledged
        log.info("Resuming the upload at byte %d (the registry kept %d bytes of the interrupted chunk)",
                 held, acknowledged)
        self.whole = not self.data or self.sent == length

    @staticmethod
    def exhausted(problem: RegistryFailure, attempts: int) -> None:
        problem.attempts = max(problem.attempts, attempts)


class StreamedChunk:
    """The next `length` bytes of a blob, read with `read` only as a request sends them. What was read
    is kept (the chunk at most) until the chunk is acknowledged: a PATCH sent again, after a drop or a
    renewed token, takes it from memory and only the rest from the source."""

    def __init__(self, read: Callable[[int], bytes], length: int, what: str) -> None:
        self.read = read
        self.length = length
        self.what = what
        self.pieces: list[bytes] = []
        self.held = 0  # bytes read into pieces

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, part: slice) -> _Tail:
        return _Tail(self, part.start or 0)

    def iter_from(self, skip: int) -> Iterator[bytes | memoryview]:
        position, i = 0, 0
        while position < self.length:
            if i == len(self.pieces):
                data = self.read(min(PIECE, self.length - self.held))
                if not data:
                    raise PipeFailure(f"{self.what} ended {self.length - self.held} bytes before its declared size")
                self.pieces.append(data)
                self.held += len(data)
            piece = self.pieces[i]
            i += 1
            if position + len(piece) > skip:
                yield piece if position >= skip else memoryview(piece)[skip - position:]
            position += len(piece)

    def drain(self) -> Iterator[bytes]:
        """Every byte of the chunk, read to its end (for a spool file); what was kept is let go."""
        for piece in self.iter_from(0):
            yield bytes(piece)
        self.pieces = []


class _Tail:
    """A StreamedChunk from byte `skip` on: a request body with a length, sent piece by piece."""

    def __init__(self, chunk: StreamedChunk, skip: int) -> None:
        self.chunk = chunk
        self.skip = skip

    def __len__(self) -> int:
        return self.chunk.length - self.skip

    def __iter__(self) -> Iterator[bytes | memoryview]:
        return self.chunk.iter_from(self.skip)
