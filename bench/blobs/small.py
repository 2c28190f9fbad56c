"""Many small blobs: N concurrent client processes, each on one keep-alive connection,
uploading M blobs of 1 MiB monolithically (POST, then PUT ?digest=)."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import secrets
import time

from .client import BlobClient, Target

REQUESTS_PER_BLOB = 2


def _client(index: int, target: Target, data_path: str, data_size: int, blobs: int, size: int, barrier,
            results) -> None:
    """One client: prepare its distinct blobs, wait for the others, upload them all, report times."""
    try:
        with open(data_path, "rb") as f:
            f.seek(index * blobs * size % max(1, data_size - blobs * size))
            payloads = []
            for _ in range(blobs):
                body = f.read(size - 16) + secrets.token_bytes(16)
                payloads.append((body, "sha256:" + hashlib.sha256(body).hexdigest()))
        client = BlobClient(target)
        client.connect()  # connected before the barrier: the timed span holds no handshake
        barrier.wait(60)
        t0 = time.monotonic()
        for body, digest in payloads:
            location = client.start_upload()
            sep = "&" if "?" in location else "?"
            client.expect(client.request("PUT", f"{location}{sep}digest={digest}", [("bytes", body)]), 201)
        t1 = time.monotonic()
        client.close()
        results.put((index, t0, t1, None, [digest for _, digest in payloads]))
    except Exception as exc:  # reported to the parent, which fails the measurement
        results.put((index, None, None, f"{type(exc).__name__}: {exc}", []))


def run(target: Target, data_path: str, data_size: int, clients: int, blobs: int, size: int,
        timeout: float = 300.0) -> dict:
    """Requests per second over the span from the first client's start to the last client's end."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(i, target, data_path, data_size, blobs, size, barrier, results),
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
    start = min(g[1] for g in got)
    end = max(g[2] for g in got)
    elapsed = end - start
    count = clients * blobs
    return {
        "seconds": elapsed,
        "requests_per_s": count * REQUESTS_PER_BLOB / elapsed,
        "blobs_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "digests": [d for g in got for d in g[4]],
    }
