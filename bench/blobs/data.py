"""Random blob data: written once to a file, then served as many distinct blobs.

A blob of `size` bytes is the first `size - SUFFIX` bytes of the data file followed by a
unique suffix, so every repetition has a fresh digest (no dedup short-circuit) while the
bulk is streamed from the page cache with sendfile. The SHA-256 of each common prefix is
computed once; a blob's digest is then a copy of that state plus its suffix.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SUFFIX = 32
WRITE_BLOCK = 16 * 1024 * 1024


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
        self.path = path
        self.sizes = sorted(set(sizes))
        self._states: dict[int, "hashlib._Hash"] = {}

    def prepare(self) -> None:
        """Write the random file (once) and hash it up to each size's common prefix."""
        total = self.sizes[-1]
        if not self.path.exists() or self.path.stat().st_size != total:
            with open(self.path, "wb") as f:
                left = total
                while left:
                    n = min(WRITE_BLOCK, left)
                    f.write(os.urandom(n))
                    left -= n
        hasher = hashlib.sha256()
        done = 0
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
