"""An HTTP reverse proxy in front of a registry, for counting requests and injecting faults.

Runs aiohttp (server and client) on its own event loop in a background thread, on 127.0.0.1:<free port>.
Bodies stream both ways in pieces of up to 256 KiB (layers are up to 1 GiB: nothing is buffered whole). Methods,
headers, status and bodies pass unchanged, except that absolute `Location` headers and the `realm` of
`WWW-Authenticate` that point at the upstream are rewritten to the proxy, so clients stay on it.

    with HttpProxy("http://127.0.0.1:5000") as proxy:
        proxy.fail("PATCH", r"/blobs/uploads/", 503, times=2, headers={"Retry-After": "1"})
        proxy.drop("PATCH", r"/blobs/uploads/", after_bytes=1 << 20)
        proxy.cut("GET", r"/blobs/sha256:", after_bytes=1 << 20)   # the answer's body, not the request's
        ... push to proxy.host ...
        assert proxy.count("PUT", r"/manifests/") == 1

Streaming costs a core: ~150-170 MB/s through it here (1 GiB PATCH to distribution: 6.6-7.1 s, 3.7-5.9 s
direct), with the proxy's memory flat (45 MB RSS). Use it in tests, not in timed benchmark runs.

Every request is logged (method, path, query, status, request-body bytes received, response-body bytes
sent) whether forwarded, answered by a fault rule (status set, `fault` named) or dropped (status None).
"""
from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from yarl import URL

from test.helpers.background_loop import BackgroundLoop, reset_connection

PIECE = 256 * 1024
# Hop-by-hop headers (RFC 9110 §7.6.1) and those aiohttp recomputes; everything else passes as sent.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "host", "proxy-authorization", "proxy-authenticate", "expect"}


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int | None = None     # None: dropped, or still in flight
    bytes_in: int = 0             # request-body bytes received from the client
    bytes_out: int = 0            # response-body bytes sent to the client
    fault: str | None = None      # "status", "drop" or "cut" when a rule acted on it


@dataclass
class _Rule:
    method: str
    path: re.Pattern
    skip: int                     # let this many matching requests pass first
    times: int                    # then act on at most this many
    seen: int = 0
    fired: int = 0

    def take(self, method: str, path: str) -> bool:
        """Count a request against the rule; True when the rule acts on it (called under the lock)."""
        if method != self.method or not self.path.search(path):
            return False
        self.seen += 1
        if self.seen > self.skip and self.fired < self.times:
            self.fired += 1
            return True
        return False


@dataclass
class _StatusRule(_Rule):
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class _DropRule(_Rule):
    after_bytes: int = 0


@dataclass
class _CutRule(_Rule):
    after_bytes: int = 0


class HttpProxy:
    def __init__(self, upstream: str, port: int = 0, read_timeout: float = 600.0) -> None:
        self.upstream = URL(upstream.rstrip("/"))
        self.port = port
        self.read_timeout = read_timeout
        self._log: list[LoggedRequest] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._background = BackgroundLoop("http-proxy")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- where it is ------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- fault rules (each bounded in count) ------------------------------------------------
    def fail(self, method: str, path_regex: str, status: int, *, skip: int = 0, times: int = 1,
             headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """Answer matching requests number skip+1 .. skip+times with `status`, without forwarding them.

        The Nth request only: skip=N-1, times=1. Every one up to K: times=K. E.g. 429 with Retry-After:
        `fail("PATCH", r"/blobs/uploads/", 429, headers={"Retry-After": "1"})`.
        """
        with self._lock:
            self._rules.append(_StatusRule(method.upper(), re.compile(path_regex), skip, times,
                                           status=status, headers=dict(headers or {}), body=body))

    def drop(self, method: str, path_regex: str, after_bytes: int, *, skip: int = 0, times: int = 1) -> None:
        """Forward exactly `after_bytes` of a matching request's body upstream, then abort both connections.

        The upstream sees a request cut mid-body (a partial chunk); the client sees the connection reset.
        The cut request's log entry has fault "drop", status None and bytes_in == after_bytes.
        """
        with self._lock:
            self._rules.append(_DropRule(method.upper(), re.compile(path_regex), skip, times,
                                         after_bytes=after_bytes))

    def cut(self, method: str, path_regex: str, after_bytes: int, *, skip: int = 0, times: int = 1) -> None:
        """Forward a matching request, send the client exactly `after_bytes` of the answer's body (its headers,
        Content-Length included, unchanged), then close the client's connection: a download dropped mid-body.

        The cut request's log entry has fault "cut", the upstream's status and bytes_out == after_bytes (less
        when the body is shorter).
        """
        with self._lock:
            self._rules.append(_CutRule(method.upper(), re.compile(path_regex), skip, times,
                                        after_bytes=after_bytes))

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    # -- the request log ----------------------------------------------------------------------
    def requests(self, method: str | None = None, path_regex: str = "") -> list[LoggedRequest]:
        pattern = re.compile(path_regex)
        with self._lock:
            return [r for r in self._log
                    if (method is None or r.method == method.upper()) and pattern.search(r.path)]

    def count(self, method: str | None = None, path_regex: str = "", status: int | None = None) -> int:
        return sum(1 for r in self.requests(method, path_regex) if status is None or r.status == status)

    def bytes_in(self, method: str | None = None, path_regex: str = "") -> int:
        return sum(r.bytes_in for r in self.requests(method, path_regex))

    def bytes_out(self, method: str | None = None, path_regex: str = "") -> int:
        return sum(r.bytes_out for r in self.requests(method, path_regex))

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "HttpProxy":
        self._background.start()
        self.port = self._background.run(self._listen())
        return self

    def stop(self) -> None:
        if self._background.running:
            self._background.stop(self._shutdown(), timeout=15)

    def __enter__(self) -> "HttpProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> int:
        # No redirects followed, no decompression, no connection limit: the proxy is transparent.
        self._session = aiohttp.ClientSession(
            auto_decompress=False, connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self.read_timeout))
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        return self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- one request ------------------------------------------------------------------------------
    def _admit(self, request: web.Request) -> tuple[LoggedRequest, _Rule | None]:
        entry = LoggedRequest(request.method, request.path, request.query_string)
        with self._lock:
            self._log.append(entry)
            rule = next((r for r in self._rules if r.take(request.method, request.path)), None)
        return entry, rule

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        entry, rule = self._admit(request)
        if isinstance(rule, _StatusRule):
            entry.fault, entry.status = "status", rule.status
            await _drain_body(request, entry)  # a real server reads the body before answering
            return web.Response(status=rule.status, headers=rule.headers, body=rule.body)
        if isinstance(rule, _DropRule):
            await self._forward_then_drop(request, entry, rule.after_bytes)
            raise asyncio.CancelledError  # the client's connection is gone: nothing more to answer
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._session is not None
        try:
            async with self._session.request(
                request.method, URL(str(self.upstream) + request.raw_path, encoded=True), headers=headers,
                data=self._body(request, entry) if request.body_exists else None, allow_redirects=False,
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as upstream:
                entry.status = upstream.status
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for name, value in upstream.headers.items():
                    if name.lower() in HOP_BY_HOP:
                        continue
                    response.headers.add(name, self._rewrite(name, value))
                if upstream.content_length is not None or request.method == "HEAD":
                    # Keep the upstream's Content-Length (HEAD on a blob carries the blob's size).
                    response.content_length = upstream.content_length
                await response.prepare(request)
                cut = rule.after_bytes if isinstance(rule, _CutRule) else None
                if request.method != "HEAD":
                    async for piece in upstream.content.iter_chunked(PIECE):
                        if cut is not None and entry.bytes_out + len(piece) >= cut:
                            await response.write(piece[:cut - entry.bytes_out])
                            entry.bytes_out, entry.fault = cut, "cut"
                            if request.transport is not None:
                                request.transport.close()  # what was written still arrives, then the end
                            raise asyncio.CancelledError  # the client's connection is gone
                        await response.write(piece)
                        entry.bytes_out += len(piece)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            entry.status = 502
            return web.Response(status=502, text=f"proxy: upstream failed: {exc!r}\n")

    async def _body(self, request: web.Request, entry: LoggedRequest):
        """The client's body, piece by piece, counted."""
        while piece := await request.content.read(PIECE):
            entry.bytes_in += len(piece)
            yield piece

    async def _forward_then_drop(self, request: web.Request, entry: LoggedRequest, after_bytes: int) -> None:
        """Send the request and exactly `after_bytes` of its body upstream, then drop both connections.

        Written by hand on a plain connection (not the client session) so that the partial body is known to
        be in the kernel's send buffer, hence delivered, before the socket closes: the upstream sees a request
        cut after exactly `after_bytes` body bytes, then end of stream.
        """
        entry.fault = "drop"
        _, writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)
        writer.transport.set_write_buffer_limits(0)  # drain() returns only once everything is in the kernel
        chunked = "content-length" not in {k.lower() for k in request.headers}
        lines = [f"{request.method} {request.raw_path} HTTP/1.1", f"Host: {self.upstream.authority}"]
        lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            while entry.bytes_in < after_bytes:
                piece = await request.content.read(min(PIECE, after_bytes - entry.bytes_in))
                if not piece:
                    break  # a body shorter than the threshold is cut at its end, before the request completes
                entry.bytes_in += len(piece)
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                await writer.drain()
        finally:
            writer.transport.abort()  # the kernel still sends what it holds, then ends the stream
            reset_connection(request.transport)

    def _rewrite(self, name: str, value: str) -> str:
        """Point absolute URLs at the proxy instead of the upstream (Location, the challenge's realm)."""
        lower = name.lower()
        if lower not in ("location", "www-authenticate"):
            return value
        # The origin must end there (127.0.0.1:5000 is not a prefix of 127.0.0.1:50001).
        origin = re.escape(f"{self.upstream.scheme}://{self.upstream.authority}") + r'(?=[/?#",]|$)'
        return re.sub(origin, self.url, value)


async def _drain_body(request: web.Request, entry: LoggedRequest) -> None:
    while True:
        piece = await request.content.read(PIECE)
        if not piece:
            return
        entry.bytes_in += len(piece)
