"""Run the registry until SIGTERM or SIGINT, then stop cleanly."""
from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import ssl
from pathlib import Path

from aiohttp import web

from .app import create_app
from .config import Config

log = logging.getLogger("registry")
# Larger socket reads than aiohttp's 64 KiB default: fewer wake-ups per uploaded GiB.
READ_BUFSIZE = 1024 * 1024


# glibc's malloc, by default, hands freed heap memory back to the kernel as soon as 128 KiB
# or more is free at the top of the heap, and adapts its mmap threshold up and down. Every
# upload allocates and frees socket-sized buffers (~256 KiB) at a high rate, so the same
# memory went back and forth, each fresh page costing a fault (on a VM, a hypervisor fault
# too). Keeping up to 64 MiB of freed heap for reuse cut the CPU per ingested GiB by about
# a fifth (bench/, BENCHMARKS.md); peak RSS stays far under its 150 MB budget.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from <malloc.h>
TRIM_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD = 16 * 1024 * 1024


def keep_freed_memory_for_reuse() -> None:
    """Tune glibc's malloc as above; a no-op where there is no glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """A server context for --tls-cert/--tls-key (both or neither); ValueError says what is wrong."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ValueError("give both --tls-cert and --tls-key, or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use --tls-cert {cert} with --tls-key {key}: {exc}") from None
    return context


async def serve(host: str, port: int, root: Path, config: Config, ready_file: Path | None = None,
                ssl_context: ssl.SSLContext | None = None) -> None:
    keep_freed_memory_for_reuse()
    app = create_app(root, config)
    runner = web.AppRunner(app, access_log=None, read_bufsize=READ_BUFSIZE, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=512, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0]
    scheme = "https" if ssl_context else "http"
    log.info("registry listening on %s://%s:%s with root %s", scheme, bound[0], bound[1], root)
    if ready_file is not None:
        ready_file.write_text(f"{bound[0]}:{bound[1]}\n")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
