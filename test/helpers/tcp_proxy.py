"""A small TCP forwarder on 127.0.0.1 for integration tests, run by asyncio in a background thread.

Two uses:
- between the Docker daemon and the embedded registry, misbehaving on purpose a bounded number of
  times: drop (reset) the first `drop_first` connections as soon as they are accepted, or reset a
  connection once it has carried more than `reset_after_bytes` from the client (i.e. in the middle
  of a layer upload), at most `max_resets` times (or once it carried `reset_after_server_bytes` to the
  client: a download cut midway); or slow what the client sends to
  `client_bytes_per_second` (a slow uplink);
- from a loopback TCP port to the daemon's unix socket, which is how Pipelines hands a pipe its
  daemon (`DOCKER_HOST=tcp://...`).

Everything is bounded: each connection lives at most `connection_lifetime` seconds, and `stop()`
closes the listener and every open connection and joins the thread within a few seconds.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from test.helpers.background_loop import BackgroundLoop, reset_connection

CHUNK = 64 * 1024


@dataclass
class ProxyStats:
    connections: int = 0
    dropped: int = 0
    resets: int = 0
    server_resets: int = 0
    bytes_from_client: int = 0


@dataclass
class TcpProxy:
    target_host: str | None = None
    target_port: int | None = None
    target_unix: str | None = None
    drop_first: int = 0
    drop_all: bool = False
    reset_after_bytes: int | None = None
    max_resets: int = 0
    reset_after_server_bytes: int | None = None  # cut a download (e.g. the daemon's export) midway
    client_bytes_per_second: float | None = None
    connection_lifetime: float = 300.0
    port: int = 0
    stats: ProxyStats = field(default_factory=ProxyStats)

    def __post_init__(self) -> None:
        if (self.target_unix is None) == (self.target_port is None):
            raise ValueError("give either target_host/target_port or target_unix")
        self._background = BackgroundLoop("tcp-proxy")
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "TcpProxy":
        self._background.start()
        self.port = self._background.run(self._listen())
        return self

    def stop(self) -> None:
        if self._background.running:
            self._background.stop(self._shutdown())

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    # -- one connection ---------------------------------------------------------------------
    def _take(self, counter: str, limit: int) -> bool:
        """Count one more misbehaviour of kind `counter` if fewer than `limit` happened so far."""
        with self._lock:
            if getattr(self.stats, counter) < limit:
                setattr(self.stats, counter, getattr(self.stats, counter) + 1)
                return True
            return False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            with self._lock:
                self.stats.connections += 1
            if self.drop_all or self._take("dropped", self.drop_first):
                if self.drop_all:
                    with self._lock:
                        self.stats.dropped += 1
                _reset(writer)
                return
            if self.target_unix is not None:
                up_reader, upstream = await asyncio.open_unix_connection(self.target_unix)
            else:
                up_reader, upstream = await asyncio.open_connection(self.target_host, self.target_port)
            pumps = [asyncio.ensure_future(self._pump(reader, upstream, from_client=True, client=writer)),
                     asyncio.ensure_future(self._pump(up_reader, writer, from_client=False, client=writer))]
            try:
                # Both directions until each ends, one fails, or the connection's lifetime is over.
                await asyncio.wait(pumps, timeout=self.connection_lifetime, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass  # the peer went away, or the proxy is stopping
        finally:
            for w in (writer, upstream):
                if w is not None and not w.is_closing():
                    w.close()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_client: bool,
                    client: asyncio.StreamWriter) -> None:
        carried = 0
        # Bounded: each read returns at least one byte or ends the loop, and the whole
        # connection is bounded by connection_lifetime.
        while True:
            data = await reader.read(CHUNK)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            if not from_client and self.reset_after_server_bytes is not None:
                carried += len(data)
                if carried > self.reset_after_server_bytes and self._take("server_resets", self.max_resets):
                    _reset(client)
                    raise ConnectionResetError("reset by the test proxy")
            if from_client:
                carried += len(data)
                with self._lock:
                    self.stats.bytes_from_client += len(data)
                if (self.reset_after_bytes is not None and carried > self.reset_after_bytes
                        and self._take("resets", self.max_resets)):
                    _reset(client)
                    writer.transport.abort()
                    raise ConnectionResetError("reset by the test proxy")
            writer.write(data)
            await writer.drain()
            if from_client and self.client_bytes_per_second:
                await asyncio.sleep(len(data) / self.client_bytes_per_second)


def _reset(writer: asyncio.StreamWriter) -> None:
    reset_connection(writer.transport)

