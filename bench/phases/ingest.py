"""The `ingest` phase: 1 GiB blobs uploaded to each registry, monolithic (POST, PUT) and chunked (PATCH),
interleaved, with each registry's CPU-seconds per GiB and the machine's ceiling (SHA-256 on one core) measured in
the same repetitions; then one verified blob left in each for `serving`."""
from __future__ import annotations

import hashlib
import os
import time

from ..blobs import timed_upload, verified_get
from ..measure import cpu_seconds
from ..phase import Context, Phase
from ..registries import BLOB_PACKAGE, purge_blobs
from ..stats import alternate, compare, rate_mb_s, summary, time_limit

MODES = ("monolithic", "chunked")
BUFFER = 4 * 1024 * 1024


def sha256_rate(total: int, seconds_cap: float = 10.0) -> float:
    """The ceiling: MB/s of hashlib.sha256 over `total` bytes fed in 4 MiB buffers (what the registry's hasher sees)."""
    data, h, done = os.urandom(BUFFER), hashlib.sha256(), 0
    t0 = time.perf_counter()
    while done < total and time.perf_counter() - t0 < seconds_cap:
        h.update(data)
        done += BUFFER
    return rate_mb_s(done, time.perf_counter() - t0)


class IngestPhase(Phase):
    name = "ingest"
    needs_reference = True
    profiled = True

    def run(self, ctx: Context) -> dict:
        s, targets, pids, client = ctx.settings, ctx.targets(BLOB_PACKAGE), ctx.pids, ctx.client
        rates = {mode: {label: [] for label in targets} for mode in MODES}
        cpu = {mode: {label: [] for label in targets} for mode in MODES}
        sha = []
        reps = 0
        for rep in range(s.reps):
            if ctx.deadline.expired():
                break
            sha.append(sha256_rate(s.blob))
            for label in alternate(list(targets), rep):
                for mode, chunk in zip(MODES, (None, s.chunk), strict=True):
                    blob = ctx.source.blob(s.blob)
                    os.sync()  # untimed: every upload starts with no dirty pages waiting for the disk
                    cpu0 = cpu_seconds(pids[label])
                    seconds = client.submit(timed_upload, targets[label], blob, chunk).result(time_limit(s.blob))
                    cpu[mode][label].append((cpu_seconds(pids[label]) - cpu0) * 2**30 / s.blob)
                    rates[mode][label].append(rate_mb_s(s.blob, seconds))
                    if not purge_blobs(ctx.roots[label], [blob.digest]):
                        raise RuntimeError(f"{label}: no stored file named by {blob.digest} to purge (layout changed?)")
            reps += 1
        # One more (untimed) upload per registry: the blob the serving phase reads, checked end to end.
        verified = {}
        for label in targets:
            blob = ctx.ingested[label] = ctx.source.blob(s.blob)
            client.submit(timed_upload, targets[label], blob, None).result(time_limit(s.blob))
            got = client.submit(verified_get, targets[label], blob.digest).result(time_limit(s.blob))
            verified[label] = got == blob.digest
        return {
            "reps": reps, "blob_bytes": s.blob, "chunk_bytes": s.chunk,
            **{f"{mode}_mb_s": compare(rates[mode]) for mode in MODES},
            **{f"{mode}_cpu_s_per_gib": compare(cpu[mode]) for mode in MODES},
            "sha256_mb_s": summary(sha),
            "verified_by_full_get": verified,
        }
