"""Upload sessions: bodies streamed to a file while hashed, so memory stays flat for any size."""
from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import AsyncIterator, BinaryIO

from .errors import RegistryError
from .metadata import Package

# Bytes handed to the hashing/writing thread at a time: large enough that the hand-off
# cost vanishes, small enough that memory per upload stays a few MiB.
FLUSH_BYTES = 4 * 1024 * 1024


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def too_large(limit: int) -> RegistryError:
    # DENIED, not SIZE_INVALID: docker retries a layer upload five times on codes it does
    # not know to be final, and a layer over the limit will never fit.
    return RegistryError(
        "DENIED",
        f"layer exceeds the registry's limit of {limit} bytes ({human_bytes(limit)}) per layer",
        status=413,
        detail={"max_layer_bytes": limit},
    )


@dataclass
class UploadSession:
    id: str
    package: Package
    username: str
    started_at: float
    expires_at: float
    file: BinaryIO
    hasher: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    offset: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False

    def absorb(self, data: bytes | bytearray) -> None:
        # Runs on a worker thread: hashlib and file writes release the GIL for large buffers.
        self.hasher.update(data)
        self.file.write(data)

    def digest(self) -> str:
        return "sha256:" + self.hasher.hexdigest()


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

    Reading the next chunks overlaps with hashing and writing the previous ones (one
    buffer in flight), which keeps a single upload close to the hashing rate.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future | None = None
    buf = bytearray()
    appended = 0
    try:
        async for chunk in chunks:
            appended += len(chunk)
            if session.offset + appended > max_bytes:
                raise too_large(max_bytes)
            if time.time() > session.expires_at:
                raise RegistryError(
                    "BLOB_UPLOAD_INVALID",
                    "upload exceeded the registry's time limit for one upload session",
                    status=408,
                )
            buf += chunk
            if len(buf) >= FLUSH_BYTES:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(executor, session.absorb, buf)
                buf = bytearray()
        if pending is not None:
            await pending
            pending = None
        if buf:
            await loop.run_in_executor(executor, session.absorb, buf)
    finally:
        if pending is not None:
            # Never leave a write running against a file the caller may discard.
            await asyncio.wait([pending])
    session.offset += appended
    return appended
