"""A lean HTTP client for blob uploads and downloads, so the client is never the bottleneck.

Bodies go out with sendfile from the page cache (no copy through Python); downloads are
read into one reusable buffer. Every socket operation has a timeout.
"""
from __future__ import annotations

import hashlib
import http.client
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from .data import Blob

TIMEOUT = 120.0
READ_BUFFER = 4 * 1024 * 1024


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
    """One keep-alive connection to a registry."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target = target
        self.conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

    def close(self) -> None:
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
        if body:
            f = open(blob_path, "rb") if any(seg[0] == "file" for seg in body) else None
            try:
                for seg in body:
                    if seg[0] == "file":
                        sent = sock.sendfile(f, seg[1], seg[2])
                        if sent != seg[2]:
                            raise IOError(f"sendfile sent {sent} of {seg[2]} bytes")
                    else:
                        sock.sendall(seg[1])
            finally:
                if f is not None:
                    f.close()
        return self.conn.getresponse()

    def expect(self, resp: http.client.HTTPResponse, *statuses: int) -> http.client.HTTPResponse:
        body = resp.read()
        if resp.status not in statuses:
            raise RuntimeError(
                f"{self.target.label}: HTTP {resp.status} (wanted {statuses}): {body[:300]!r}"
            )
        return resp

    @staticmethod
    def _path(location: str) -> str:
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _with_digest(path: str, digest: str) -> str:
        return path + ("&" if "?" in path else "?") + urlencode({"digest": digest})

    # -- operations -------------------------------------------------------------------
    def start_upload(self) -> str:
        resp = self.expect(self.request("POST", f"/v2/{self.target.repository}/blobs/uploads/"), 202)
        return self._path(resp.headers["Location"])

    def upload_monolithic(self, blob: Blob) -> None:
        """POST, then PUT ?digest= with the whole body."""
        location = self.start_upload()
        self.expect(self.request("PUT", self._with_digest(location, blob.digest), blob.segments(),
                                  blob_path=blob.path), 201)

    def upload_chunked(self, blob: Blob, chunk: int) -> None:
        """POST, PATCH chunks with Content-Range, then an empty PUT ?digest=."""
        location = self.start_upload()
        for start in range(0, blob.size, chunk):
            end = min(start + chunk, blob.size)
            resp = self.expect(self.request("PATCH", location, blob.segments(start, end),
                                             {"Content-Range": f"{start}-{end - 1}"}, blob_path=blob.path), 202)
            location = self._path(resp.headers["Location"])
        self.expect(self.request("PUT", self._with_digest(location, blob.digest)), 201)

    def get(self, digest: str, start: int | None = None, end: int | None = None,
            hasher: "hashlib._Hash | None" = None) -> int:
        """GET a blob (or the byte range [start, end)); return the bytes received."""
        headers = {} if start is None else {"Range": f"bytes={start}-{end - 1}"}
        resp = self.request("GET", f"/v2/{self.target.repository}/blobs/{digest}", headers=headers)
        if resp.status not in (200, 206):
            raise RuntimeError(f"{self.target.label}: GET blob HTTP {resp.status}: {resp.read()[:300]!r}")
        if start is not None and resp.status != 206:
            raise RuntimeError(f"{self.target.label}: Range GET answered {resp.status}, not 206")
        buf = bytearray(READ_BUFFER)
        view = memoryview(buf)
        total = 0
        while True:
            n = resp.readinto(view)
            if not n:
                break
            if hasher is not None:
                hasher.update(view[:n])
            total += n
        return total


# -- entry points run in the client process (picklable arguments, timed inside) ---------------
def timed_upload(target: Target, blob: Blob, chunk: int | None) -> float:
    client = BlobClient(target)
    try:
        t0 = time.perf_counter()
        if chunk:
            client.upload_chunked(blob, chunk)
        else:
            client.upload_monolithic(blob)
        return time.perf_counter() - t0
    finally:
        client.close()


def timed_get(target: Target, digest: str, start: int | None, end: int | None, expected: int) -> float:
    client = BlobClient(target)
    try:
        t0 = time.perf_counter()
        got = client.get(digest, start, end)
        elapsed = time.perf_counter() - t0
    finally:
        client.close()
    if got != expected:
        raise RuntimeError(f"{target.label}: GET returned {got} bytes, expected {expected}")
    return elapsed


def verified_get(target: Target, digest: str) -> str:
    """Download the whole blob and return its SHA-256 digest (an untimed integrity check)."""
    client = BlobClient(target)
    try:
        hasher = hashlib.sha256()
        client.get(digest, hasher=hasher)
        return "sha256:" + hasher.hexdigest()
    finally:
        client.close()
