"""The `ingest` phase: 1 GiB blobs uploaded to each registry, monolithic (POST, PUT) and chunked (PATCH),
interleaved, with each registry's CPU-seconds per GiB and the machine's ceilings (SHA-256 on one core,
page-cache writes) measured in the same repetitions; then one verified blob left in each for `serving`."""
from __future__ import annotations

import os
from concurrent.futures import Executor
from pathlib import Path

from ..blobs.ceiling import page_cache_write_rate, sha256_rate
from ..blobs.client import Target, timed_upload, verified_get
from ..blobs.data import Blob, BlobSource
from ..measure import cpu_seconds
from ..phase import Context, Deadline, Phase
from ..registries.purge import purge_blobs
from ..settings import Settings
from ..stats import alternate, compare, rate_mb_s, summary, time_limit


class IngestPhase(Phase):
    name = "ingest"
    needs_reference = True
    profiled = True

    def run(self, ctx: Context) -> dict:
        section, ctx.ingested = ingest(ctx.settings, ctx.source, ctx.blob_targets, ctx.roots, ctx.pids, ctx.client,
                                       ctx.deadline, ctx.workdir)
        return section


def ingest(s: Settings, source: BlobSource, targets: dict[str, Target], roots: dict[str, Path], pids: dict[str, int],
           client: Executor, deadline: Deadline, workdir: Path) -> tuple[dict, dict[str, Blob]]:
    labels = list(targets)
    rates = {mode: {label: [] for label in labels} for mode in ("monolithic", "chunked")}
    cpu = {mode: {label: [] for label in labels} for mode in ("monolithic", "chunked")}
    sha, page_cache = [], []
    last: dict[str, Blob] = {}
    reps = 0
    for rep in range(s.reps):
        if deadline.expired():
            break
        sha.append(sha256_rate(s.blob))
        page_cache.append(page_cache_write_rate(workdir / "page-cache-probe.bin", s.blob))
        for label in alternate(labels, rep):
            for mode, chunk in (("monolithic", None), ("chunked", s.chunk)):
                blob = source.blob(s.blob)
                os.sync()  # untimed: every upload starts with no dirty pages waiting for the disk
                cpu0 = cpu_seconds(pids[label])
                seconds = client.submit(timed_upload, targets[label], blob, chunk).result(time_limit(s.blob))
                cpu[mode][label].append((cpu_seconds(pids[label]) - cpu0) * 2**30 / s.blob)
                rates[mode][label].append(rate_mb_s(s.blob, seconds))
                if not purge_blobs(roots[label], [blob.digest]):
                    raise RuntimeError(f"{label}: no stored file named by {blob.digest} to purge (layout changed?)")
        reps += 1
    # One more (untimed) upload per registry: the blob the serving phase reads, checked end to end.
    verified = {}
    for label in labels:
        blob = last[label] = source.blob(s.blob)
        client.submit(timed_upload, targets[label], blob, None).result(time_limit(s.blob))
        got = client.submit(verified_get, targets[label], blob.digest).result(time_limit(s.blob))
        verified[label] = got == blob.digest
    return {
        "reps": reps,
        "blob_bytes": s.blob,
        "chunk_bytes": s.chunk,
        "monolithic_mb_s": compare(rates["monolithic"]),
        "chunked_mb_s": compare(rates["chunked"]),
        "monolithic_cpu_s_per_gib": compare(cpu["monolithic"]),
        "chunked_cpu_s_per_gib": compare(cpu["chunked"]),
        "sha256_mb_s": summary(sha),
        "page_cache_write_mb_s": summary(page_cache),
        "verified_by_full_get": verified,
    }, last
