"""Raw blob traffic for the registry phases, with a client that is never the bottleneck. A blob of `size` bytes is
the first `size - SUFFIX` bytes of one random data file and a unique suffix: a fresh digest every repetition, the bulk
streamed from the page cache with sendfile. The entry points run in processes of their own, never in the harness.
"""
from __future__ import annotations

import hashlib
import http.client
import multiprocessing as mp
import os
import secrets
import socket
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

SUFFIX = 32
WRITE_BLOCK = 16 * 1024 * 1024
TIMEOUT = 120.0
READ_BUFFER = 4 * 1024 * 1024
REQUESTS_PER_BLOB = 2


@dataclass(frozen=True)
class Blob:
    """A blob described by where its bytes come from: a prefix of the data file and a suffix."""
    path: str
    size: int
    suffix: bytes
    digest: str

    def segments(self, start: int = 0, end: int | None = None) -> list[tuple]:
        """Byte range [start, end) as ("file", offset, count) and ("bytes", data) segments."""
        end = self.size if end is None else end
        prefix_len = self.size - SUFFIX
        out: list[tuple] = []
        if start < prefix_len:
            out.append(("file", start, min(end, prefix_len) - start))
        if end > prefix_len:
            lo = max(start, prefix_len) - prefix_len
            out.append(("bytes", self.suffix[lo:end - prefix_len]))
        return out


class BlobSource:
    """One data file of random bytes and precomputed hash states for the sizes in use."""

    def __init__(self, path: Path, sizes: list[int]) -> None:
        self.path, self.sizes, self._states = path, sorted(set(sizes)), {}

    def prepare(self) -> None:
        """Write the random file (once) and hash it up to each size's common prefix."""
        total = self.sizes[-1]
        if not self.path.exists() or self.path.stat().st_size != total:
            with open(self.path, "wb") as f:
                for offset in range(0, total, WRITE_BLOCK):
                    f.write(os.urandom(min(WRITE_BLOCK, total - offset)))
        hasher, done = hashlib.sha256(), 0
        with open(self.path, "rb", buffering=0) as f:
            for size in self.sizes:
                target = size - SUFFIX
                while done < target:
                    data = f.read(min(WRITE_BLOCK, target - done))
                    hasher.update(data)
                    done += len(data)
                self._states[size] = hasher.copy()

    def blob(self, size: int) -> Blob:
        suffix = secrets.token_bytes(SUFFIX)
        h = self._states[size].copy()
        h.update(suffix)
        return Blob(str(self.path), size, suffix, "sha256:" + h.hexdigest())


@dataclass(frozen=True)
class Target:
    """Where to send blob requests: a registry on loopback, a repository, and its credentials."""
    label: str
    host: str
    port: int
    repository: str
    authorization: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}


class BlobClient:
    """One keep-alive connection to a registry, closed at the end of a `with` block."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target = target
        self.conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def __enter__(self) -> "BlobClient":
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()

    def connect(self) -> socket.socket:
        """The connection's socket, opened (with TCP_NODELAY) on first use."""
        if self.conn.sock is None:
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.conn.sock

    def request(self, method: str, url: str, body: list[tuple] = (), headers: dict | None = None,
                blob_path: str | None = None) -> http.client.HTTPResponse:
        """Send a request whose body is a list of ("file", offset, count) / ("bytes", data) segments."""
        sock = self.connect()
        length = sum(seg[2] if seg[0] == "file" else len(seg[1]) for seg in body)
        self.conn.putrequest(method, url, skip_accept_encoding=True)
        for key, value in {**self.target.headers(), **(headers or {})}.items():
            self.conn.putheader(key, value)
        if method in ("POST", "PUT", "PATCH"):
            self.conn.putheader("Content-Length", str(length))
            if length:
                self.conn.putheader("Content-Type", "application/octet-stream")
        self.conn.endheaders()
        with open(blob_path, "rb") if any(seg[0] == "file" for seg in body) else nullcontext() as f:
            for seg in body:
                if seg[0] == "bytes":
                    sock.sendall(seg[1])
                elif (sent := sock.sendfile(f, seg[1], seg[2])) != seg[2]:
                    raise IOError(f"sendfile sent {sent} of {seg[2]} bytes")
        return self.conn.getresponse()

    def expect(self, resp: http.client.HTTPResponse, *statuses: int) -> http.client.HTTPResponse:
        body = resp.read()
        if resp.status not in statuses:
            raise RuntimeError(f"{self.target.label}: HTTP {resp.status} (wanted {statuses}): {body[:300]!r}")
        return resp

    def start_upload(self) -> str:
        resp = self.expect(self.request("POST", f"/v2/{self.target.repository}/blobs/uploads/"), 202)
        return _path(resp.headers["Location"])

    def upload_monolithic(self, digest: str, body: list[tuple], blob_path: str | None = None) -> None:
        """POST, then PUT ?digest= with the whole body."""
        self.expect(self.request("PUT", _with_digest(self.start_upload(), digest), body, blob_path=blob_path), 201)

    def upload_chunked(self, blob: Blob, chunk: int) -> None:
        """POST, PATCH chunks with Content-Range, then an empty PUT ?digest=."""
        location = self.start_upload()
        for start in range(0, blob.size, chunk):
            end = min(start + chunk, blob.size)
            resp = self.expect(self.request("PATCH", location, blob.segments(start, end),
                                            {"Content-Range": f"{start}-{end - 1}"}, blob_path=blob.path), 202)
            location = _path(resp.headers["Location"])
        self.expect(self.request("PUT", _with_digest(location, blob.digest)), 201)

    def get(self, digest: str, start: int | None = None, end: int | None = None,
            hasher: "hashlib._Hash | None" = None) -> int:
        """GET a blob (or the byte range [start, end)); return the bytes received."""
        headers = {} if start is None else {"Range": f"bytes={start}-{end - 1}"}
        resp = self.request("GET", f"/v2/{self.target.repository}/blobs/{digest}", headers=headers)
        if resp.status not in (200, 206) or (start is not None and resp.status != 206):
            raise RuntimeError(f"{self.target.label}: GET blob HTTP {resp.status}: {resp.read()[:300]!r}")
        view = memoryview(bytearray(READ_BUFFER))
        total = 0
        while n := resp.readinto(view):
            if hasher is not None:
                hasher.update(view[:n])
            total += n
        return total


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_digest(path: str, digest: str) -> str:
    return path + ("&" if "?" in path else "?") + urlencode({"digest": digest})


def timed_upload(target: Target, blob: Blob, chunk: int | None) -> float:
    with BlobClient(target) as client:
        t0 = time.perf_counter()
        if chunk:
            client.upload_chunked(blob, chunk)
        else:
            client.upload_monolithic(blob.digest, blob.segments(), blob.path)
        return time.perf_counter() - t0


def timed_get(target: Target, digest: str, start: int | None, end: int | None, expected: int) -> float:
    with BlobClient(target) as client:
        t0 = time.perf_counter()
        got = client.get(digest, start, end)
        elapsed = time.perf_counter() - t0
    if got != expected:
        raise RuntimeError(f"{target.label}: GET returned {got} bytes, expected {expected}")
    return elapsed


def verified_get(target: Target, digest: str) -> str:
    """Download the whole blob and return its SHA-256 digest (an untimed integrity check)."""
    hasher = hashlib.sha256()
    with BlobClient(target) as client:
        client.get(digest, hasher=hasher)
    return "sha256:" + hasher.hexdigest()


# -- many small blobs: N concurrent client processes, each on one keep-alive connection, uploading M blobs of
# 1 MiB monolithically (POST, then PUT ?digest=) --------------------------------------------------------------
def _small_client(index: int, target: Target, data_path: str, data_size: int, blobs: int, size: int, barrier,
                  results) -> None:
    """One client: prepare its distinct blobs, wait for the others, upload them all, report times."""
    try:
        with open(data_path, "rb") as f:
            f.seek(index * blobs * size % max(1, data_size - blobs * size))
            payloads = []
            for _ in range(blobs):
                body = f.read(size - 16) + secrets.token_bytes(16)
                payloads.append((body, "sha256:" + hashlib.sha256(body).hexdigest()))
        with BlobClient(target) as client:
            client.connect()  # connected before the barrier: the timed span holds no handshake
            barrier.wait(60)
            t0 = time.monotonic()
            for body, digest in payloads:
                client.upload_monolithic(digest, [("bytes", body)])
            results.put((index, t0, time.monotonic(), None, [digest for _, digest in payloads]))
    except Exception as exc:  # reported to the parent, which fails the measurement
        results.put((index, None, None, f"{type(exc).__name__}: {exc}", []))


def run_small(target: Target, data_path: str, data_size: int, clients: int, blobs: int, size: int,
              timeout: float = 300.0) -> dict:
    """Requests per second over the span from the first client's start to the last client's end."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_small_client, args=(i, target, data_path, data_size, blobs, size, barrier, results),
                         daemon=True)
             for i in range(clients)]
    for p in procs:
        p.start()
    try:
        barrier.wait(120)  # every client has its blobs in memory and a connection open
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < clients:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"small-blob clients did not finish within {timeout}s")
            got.append(results.get(timeout=left))
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
    errors = [g[3] for g in got if g[3]]
    if errors:
        raise RuntimeError(f"{target.label}: {len(errors)} small-blob clients failed: {errors[0]}")
    elapsed, count = max(g[2] for g in got) - min(g[1] for g in got), clients * blobs
    return {"seconds": elapsed, "requests_per_s": count * REQUESTS_PER_BLOB / elapsed, "blobs_per_s": count / elapsed,
            "mb_per_s": count * size / elapsed / 1e6, "digests": [d for g in got for d in g[4]]}
