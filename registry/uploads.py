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
from .errors import RegistryError
from .metadata import Package

# Bytes handed to the hashing and writing threads at a time: large enough that the hand-off
# cost vanishes, small enough that the wait for the last batch at the end of each request
# (every chunk of a chunked upload) stays short, and memory per upload stays about 2 MiB.
FLUSH_BYTES = 1024 * 1024
IOV_MAX = 1024  # buffers per writev call (the Linux limit)


def in_binary_units(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def too_large(limit: int) -> RegistryError:
    # DENIED, not SIZE_INVALID: docker retries a layer upload five times on codes it does
    # not know to be final, and a layer over the limit will never fit.
    return RegistryError(
        "DENIED",
        f"layer exceeds the registry's limit of {limit} bytes ({in_binary_units(limit)}) per layer",
        status=413,
        detail={"max_layer_bytes": limit},
    )


@dataclass(frozen=True)
class Chunk:
    """A request body and what its headers declared, as the upload handlers parsed them.

    `invalid` holds a header that did not parse. The store refuses it where the checks have
    always refused it: after finding the session, before the size check (an unknown session is
    what a client must hear first); for a monolithic upload, which has no session, after the
    declared size.
    """

    body: AsyncIterator[bytes]
    length: int | None = None  # Content-Length
    span: tuple[int, int] | None = None  # Content-Range: first and last byte
    digest: str | None = None  # the digest a finishing request gives
    invalid: RegistryError | None = None


@dataclass(frozen=True)
class Progress:
    """Where an upload stands after a chunk; `short` says why a chunk that was kept is refused."""

    upload_id: str
    offset: int
    short: str | None = None


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


async def append_stream(
    session: UploadSession,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    executor: Executor,
) -> int:
    """Append a request body to the session; return the bytes appended.

    Reading the next chunks overlaps with hashing and writing the previous batch (one batch
    in flight, hashed and written on two threads at once), which keeps a single upload
    close to the slower of hashing and writing.
    """
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future] = []
    batch: list[bytes] = []
    batched = 0
    appended = 0

    async def settle() -> None:
        """Wait for the batch in flight; raise its error, if any, once both halves are done."""
        if pending:
            await asyncio.wait(pending)
            done = pending[:]
            pending.clear()
            for future in done:
                future.result()

    def hand_off(chunks: list[bytes]) -> None:
        pending.append(loop.run_in_executor(executor, session.hash_chunks, chunks))
        pending.append(loop.run_in_executor(executor, session.write_chunks, chunks))

    try:
        try:
            async for chunk in chunks:
                if session.offset + appended + len(chunk) > max_bytes:
                    raise too_large(max_bytes)
                if time.time() > session.expires_at:
                    raise RegistryError(
                        "BLOB_UPLOAD_INVALID",
                        "upload exceeded the registry's time limit for one upload session",
                        status=408,
                    )
                if type(chunk) is not bytes:
                    chunk = bytes(chunk)  # the threads read it after this loop moves on: it must not change
                appended += len(chunk)
                batch.append(chunk)
                batched += len(chunk)
                if batched >= FLUSH_BYTES:
                    await settle()
                    hand_off(batch)
                    batch, batched = [], 0
        except RegistryError:
            raise
        except Exception as exc:
            # The body was cut (client gone, connection reset): keep every byte that arrived, so the
            # upload status tells the truth and the client resumes from there.
            await settle()
            if batch:
                hand_off(batch)
                await settle()
            session.offset += appended
            raise BodyInterrupted(appended) from exc
        await settle()
        if batch:
            hand_off(batch)
            await settle()
    finally:
        if pending:
            # Never leave a write running against a file the caller may discard.
            await asyncio.wait(pending)
    session.offset += appended
    return appended
