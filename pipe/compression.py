"""gzip on every core, reproducibly: python-isal's threaded writer with pinned block and write sizes.

`igzip_threaded` compresses each block on its own thread with the previous block's last 32 KiB as the
dictionary, so its output depends on the level, the block size and where writes split the input, but
not on the number of threads. Feeding it writes of exactly BLOCK_SIZE bytes (only the last one shorter)
therefore gives the same bytes, and the same layer digest, on a 2-core runner and on a 64-core one.
The gzip header has mtime 0 and no name. The library version is pinned in requirements.txt: another
version may code blocks differently.

Level 1 is the default: on this machine it is the fastest end to end (0.96-1.0 GB/s on 2 cores for
real files, ratio 0.54; level 0 is slower *and* bigger, 2 and 3 are slower for 0.5 % less).
"""
from __future__ import annotations

import hashlib
import io
import os
import queue
import time
from typing import Callable

from isal import igzip_threaded

from .oci import hex_digest

BLOCK_SIZE = 1024 * 1024
DEFAULT_LEVEL = 1
LEVELS = (0, 1, 2, 3)
ABORT_SECONDS = 10.0


M_MMAP_THRESHOLD = -3  # mallopt parameter, from <malloc.h>


def return_big_buffers_to_the_kernel(threshold: int = 4 * 1024 * 1024) -> None:
    """Fix glibc's mmap threshold, so upload chunks are mapped and unmapped, never kept in a heap.

    By default glibc raises the threshold each time such a buffer is freed, after which they come from
    per-thread heaps that keep the freed memory: with a compressor and several uploaders that grew the
    pipe past 250 MB on a 1 GiB push. Fixed at 4 MiB: peak 106 MB on that push; at 1 MiB the 1 MiB
    compression blocks were mapped too, and the page faults cost a third more time.
    """
    try:
        import ctypes
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class _DigestingSink(io.RawIOBase):
    """Where isal's writer thread puts compressed bytes: hashed, counted, handed on in order."""

    def __init__(self, deliver: Callable[[bytes], None]) -> None:
        self.deliver = deliver
        self.hasher = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        block = bytes(data)
        self.hasher.update(block)
        self.size += len(block)
        self.deliver(block)
        return len(block)


class GzipLayer:
    """Compress one layer: `write` uncompressed bytes of any sizes, `close` for (digest, size).

    The compressed bytes reach `deliver` in order, from the compressor's writer thread, as they are
    made; `deliver` may block (a full upload queue) and the compression waits with it.
    """

    def __init__(self, deliver: Callable[[bytes], None], level: int = DEFAULT_LEVEL,
                 threads: int | None = None) -> None:
        self.sink = _DigestingSink(deliver)
        self.gzip = igzip_threaded.open(self.sink, "wb", compresslevel=level,
                                        threads=threads or default_threads(), block_size=BLOCK_SIZE)
        self.pending = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        if self.pending:
            take = min(len(view), BLOCK_SIZE - len(self.pending))
            self.pending += view[:take]
            view = view[take:]
            if len(self.pending) < BLOCK_SIZE:
                return
            self.gzip.write(bytes(self.pending))
            self.pending.clear()
        while len(view) >= BLOCK_SIZE:
            self.gzip.write(view[:BLOCK_SIZE])
            view = view[BLOCK_SIZE:]
        if len(view):
            self.pending += view

    def close(self) -> tuple[str, int]:
        if self.pending:
            self.gzip.write(bytes(self.pending))
            self.pending.clear()
        self.gzip.close()
        return hex_digest(self.sink.hasher), self.sink.size

    def abort(self) -> None:
        """Stop the compressor's threads without finishing the stream (the push failed).

        isal's own stop() can hang: a compressing thread that finishes its block after the writer
        thread has left blocks forever on its full output queue. So, with `running` off (each thread
        then ends at its next empty queue), every queue is emptied until all the threads have ended
        (bounded). No sentinel is put back: it would take the very slot a blocked thread waits for.
        """
        writer = self.gzip.raw  # type: ignore[attr-defined]
        writer.running = False
        threads = [*writer.compression_workers, writer.output_worker]
        queues = [*writer.input_queues, *writer.output_queues]
        deadline = time.monotonic() + ABORT_SECONDS
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            for q in queues:
                try:
                    while True:
                        q.get_nowait()
                        q.task_done()
                except queue.Empty:
                    pass
            for thread in threads:
                thread.join(0.01)
        # Marked closed, so neither close() nor the garbage collector waits on the stopped threads.
        writer._closed = True
        try:
            self.gzip.close()
        except Exception:  # noqa: BLE001 - the buffered rest has nowhere to go, by design
            pass
