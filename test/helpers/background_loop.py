"""An asyncio event loop in a daemon thread, for test servers (proxies) driven from synchronous tests."""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
from typing import Any, Coroutine


class BackgroundLoop:
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=self.name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run `coro` on the loop and wait (bounded) for its result."""
        assert self._loop is not None, f"{self.name} is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def stop(self, shutdown: Coroutine[Any, Any, Any] | None = None, timeout: float = 10.0) -> None:
        """Run `shutdown` (closing servers and connections), then stop the loop and join its thread."""
        if self._loop is None:
            if shutdown is not None:
                shutdown.close()
            return
        try:
            if shutdown is not None:
                self.run(shutdown, timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()
            self._loop = None


def reset_connection(transport: asyncio.BaseTransport | None) -> None:
    """Close with a TCP RST (SO_LINGER 0): the peer sees `connection reset by peer`, as on a dropped network."""
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
