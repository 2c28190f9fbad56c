"""Upload sessions: bodies streamed to a file while hashed, so memory stays flat for any size."""
from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import AsyncIterator, BinaryIO

from .digests import digest_from_hex, new_hasher
from .metadata import Package
from .storage_errors import StorageError, UploadTimedOut, UploadTooLarge

# Bytes handed to the hashing and writing threads at a time: large enough that the hand-off
# cost vanishes, small enough that the wait for the last batch at the end of each request
# (every chunk of a chunked upload) stays short, and memory per upload stays about 2 MiB.
FLUSH_BYTES = 1024 * 1024
IOV_MAX = 1024  # buffers per writev call (the Linux limit)


@dataclass(frozen=True)
class Chunk:
    """A request body and what the request declared with it, as the upload handlers parsed it.

    `invalid` holds the handler's error for a declaration that did not parse. The store raises it where
    the checks have always refused it: after finding the session, before the size check (an unknown
    session is what a client must hear first); for a monolithic upload, which has no session, after
    the declared size.
    """

    body: AsyncIterator[bytes]
    length: int | None = None  # the body's declared length
    span: tuple[int, int] | None = None  # the first and last byte of the upload the chunk declares
    digest: str | None = None  # the digest a finishing request gives
    invalid: Exception | None = None


@dataclass(frozen=True)
class Progress:
    """Where an upload stands after a chunk. A chunk that fell short of the span it declared was kept,
    and is refused all the same: `declared` and `arrived` say by how much."""

    upload_id: str
    offset: int
    declared: int | None = None
    arrived: int | None = None

    @property
    def short(self) -> bool:
        return self.declared is not None


class BodyInterrupted(Exception):
    """A request body ended early; the `received` bytes that did arrive were kept in the session."""

    def __init__(self, received: int) -> None:
        super().__init__(f"request body interrupted after {received} bytes (kept)")
        self.received = received


@dataclass
class UploadSession:
    id: str
    package: Package
    username: str
    started_at: float
    expires_at: float
    file: BinaryIO
    hasher: hashlib._Hash = field(default_factory=new_hasher)
    offset: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False

    # Both run on worker threads, at the same time on the same immutable chunks: hashlib and
    # writev release the GIL, so hashing overlaps writing instead of adding to it.
    def hash_chunks(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.hasher.update(chunk)

    def write_chunks(self, chunks: list[bytes]) -> None:
        """Append the chunks as received (no copy into one buffer), finishing any short write."""
        fd = self.file.fileno()
        views = [memoryview(chunk) for chunk in chunks]
        while views:
            written = os.writev(fd, views[:IOV_MAX])
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if written:
                views[0] = views[0][written:]

    def digest(self) -> str:
        return digest_from_hex(self.hasher.hexdigest())


def new_upload_id() -> str:
    return uuid.uuid4().hex


class _BatchWriter:
    """Hands a body to the hashing and writing threads in batches, one batch in flight: reading the
    next chunks overlaps with hashing and writing the previous batch, on two threads at once."""

    def __init__(self, session: UploadSession, executor: Executor) -> None:
        self.session = session
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.pending: list[asyncio.Future] = []
        self.batch: list[bytes] = []
        self.batched = 0
        self.appended = 0  # bytes taken, handed off or still in the batch

    async def add(self, chunk: bytes) -> None:
        if type(chunk) is not bytes:
            chunk = bytes(chunk)  # the threads read it after the caller moves on: it must not change
        self.appended += len(chunk)
        self.batch.append(chunk)
        self.batched += len(chunk)
        if self.batched >= FLUSH_BYTES:
            await self.settle()
            self._hand_off()

    async def settle(self) -> None:
        """Wait for the batch in flight; raise its error, if any, once both halves are done."""
        if self.pending:
            await asyncio.wait(self.pending)
            done = self.pending[:]
            self.pending.clear()
            for future in done:
                future.result()

    async def flush(self) -> None:
        """Settle the batch in flight, then hand off and settle what is left."""
        await self.settle()
        if self.batch:
            self._hand_off()
            await self.settle()

    async def drain(self) -> None:
        """Never leave a write running against a file the caller may discard."""
        if self.pending:
            await asyncio.wait(self.pending)

    def _hand_off(self) -> None:
        chunks, self.batch, self.batched = self.batch, [], 0
        self.pending.append(self.loop.run_in_executor(self.executor, self.session.hash_chunks, chunks))
        self.pending.append(self.loop.run_in_executor(self.executor, self.session.write_chunks, chunks))


def _check_chunk(session: UploadSession, total: int, max_bytes: int) -> None:
    """A chunk that takes the upload to `total` bytes must fit the limit and arrive in time."""
    if total > max_bytes:
        raise UploadTooLarge(max_bytes)
    if time.time() > session.expires_at:
        raise UploadTimedOut()


async def append_stream(
    session: UploadSession,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    executor: Executor,
) -> int:
    """Append a request body to the session; return the bytes appended.

    One batch in flight (`_BatchWriter`) keeps a single upload close to the slower of hashing
    and writing.
    """
    writer = _BatchWriter(session, executor)
    try:
        try:
            async for chunk in chunks:
                _check_chunk(session, session.offset + writer.appended + len(chunk), max_bytes)
                await writer.add(chunk)
        except StorageError:
            raise
        except Exception as exc:
            # The body was cut (client gone, connection reset): keep every byte that arrived, so the
            # session's offset tells the truth and the client resumes from there.
            await writer.flush()
            session.offset += writer.appended
            raise BodyInterrupted(writer.appended) from exc
        await writer.flush()
    finally:
        await writer.drain()
    session.offset += writer.appended
    return writer.appended
