"""The registry against distribution 2.8, one phase per question (BENCHMARKS.md, "The registry against
distribution"): `ingest` (1 GiB blobs, monolithic and chunked, with each registry's CPU-seconds and the SHA-256
ceiling; then one verified blob left in each), `serving` (that blob read back whole and as a Range), `memory` (peak
RSS while ingesting each size) and `small` (many concurrent clients uploading 1 MiB blobs). Each interleaves the two
registries."""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator

from ..blobs import run_small, timed_get, timed_upload, verified_get
from ..measure import PeakRss, cpu_seconds, status_kb
from ..phase import Context, Phase
from ..registries import BLOB_PACKAGE, SMALL_PACKAGE, purge_blobs
from ..stats import compare, rate_mb_s, rotate, summary, time_limit

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


def rounds(ctx: Context, reps: int, labels: Iterable[str]) -> Iterator[list[str]]:
    """Each repetition's order of the registries (each first in turn), until the registry phases' deadline."""
    for rep in range(reps):
        if ctx.deadline.expired():
            return
        yield rotate(list(labels), rep)


class IngestPhase(Phase):
    name = "ingest"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        s, regs, client = ctx.settings, ctx.registries, ctx.client
        targets = {label: r.target(BLOB_PACKAGE) for label, r in regs.items()}
        rates = {mode: {label: [] for label in targets} for mode in MODES}
        cpu = {mode: {label: [] for label in targets} for mode in MODES}
        sha = []
        for order in rounds(ctx, s.reps, targets):
            sha.append(sha256_rate(s.blob))
            for label in order:
                for mode, chunk in zip(MODES, (None, s.chunk), strict=True):
                    blob = ctx.source.blob(s.blob)
                    os.sync()  # untimed: every upload starts with no dirty pages waiting for the disk
                    cpu0 = cpu_seconds(regs[label].pid)
                    seconds = client.submit(timed_upload, targets[label], blob, chunk).result(time_limit(s.blob))
                    cpu[mode][label].append((cpu_seconds(regs[label].pid) - cpu0) * 2**30 / s.blob)
                    rates[mode][label].append(rate_mb_s(s.blob, seconds))
                    if not purge_blobs(regs[label].root, [blob.digest]):
                        raise RuntimeError(f"{label}: no stored file named by {blob.digest} to purge (layout changed?)")
        # One more (untimed) upload per registry: the blob the serving phase reads, checked end to end.
        verified = {}
        for label in targets:
            blob = ctx.ingested[label] = ctx.source.blob(s.blob)
            client.submit(timed_upload, targets[label], blob, None).result(time_limit(s.blob))
            got = client.submit(verified_get, targets[label], blob.digest).result(time_limit(s.blob))
            verified[label] = got == blob.digest
        return {"reps": len(sha), "blob_bytes": s.blob, "chunk_bytes": s.chunk, "sha256_mb_s": summary(sha),
                **{f"{mode}_mb_s": compare(rates[mode]) for mode in MODES},
                **{f"{mode}_cpu_s_per_gib": compare(cpu[mode]) for mode in MODES}, "verified_by_full_get": verified}


class ServingPhase(Phase):
    name = "serving"
    needs_reference = True

    def unmet(self, ctx: Context) -> str | None:
        return None if ctx.ingested else "needs the blobs of the ingest phase"

    def run(self, ctx: Context) -> dict:
        s, targets = ctx.settings, {label: r.target(BLOB_PACKAGE) for label, r in ctx.registries.items()}
        full, ranged = {label: [] for label in targets}, {label: [] for label in targets}
        start = (s.blob - s.range_bytes) // 2
        for order in rounds(ctx, s.reps, targets):
            for label in order:
                digest = ctx.ingested[label].digest
                seconds = ctx.client.submit(timed_get, targets[label], digest, None, None, s.blob).result(
                    time_limit(s.blob))
                full[label].append(rate_mb_s(s.blob, seconds))
                seconds = ctx.client.submit(timed_get, targets[label], digest, start, start + s.range_bytes,
                                            s.range_bytes).result(time_limit(s.range_bytes))
                ranged[label].append(rate_mb_s(s.range_bytes, seconds))
        return {"reps": len(full["embedded"]), "range_bytes": s.range_bytes, "range_start": start,
                "full_mb_s": compare(full), "range_mb_s": compare(ranged)}


class MemoryPhase(Phase):
    name = "memory"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        s, regs = ctx.settings, ctx.registries
        targets = {label: r.target(BLOB_PACKAGE) for label, r in regs.items()}
        out: dict = {"idle_rss_mb": {label: (status_kb(r.pid, "VmRSS") or 0) * 1024 / 1e6 for label, r in regs.items()}}
        for size in s.memory_sizes:
            peaks, rates = {label: [] for label in targets}, {label: [] for label in targets}
            for order in rounds(ctx, s.memory_reps, targets):
                for label in order:
                    blob = ctx.source.blob(size)
                    os.sync()
                    with PeakRss(regs[label].pid) as peak:
                        seconds = ctx.client.submit(timed_upload, targets[label], blob, None).result(time_limit(size))
                    peaks[label].append(peak.peak_mb)
                    rates[label].append(rate_mb_s(size, seconds))
                    purge_blobs(regs[label].root, [blob.digest])
            out[f"{size // 2**20}MiB"] = {"blob_bytes": size, "peak_rss_mb": {k: summary(v) for k, v in peaks.items()},
                                          "ingest_mb_s": {k: summary(v) for k, v in rates.items()}}
        return out


class SmallPhase(Phase):
    name = "small"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        s, targets = ctx.settings, {label: r.target(SMALL_PACKAGE) for label, r in ctx.registries.items()}
        runs = {label: [] for label in targets}
        for order in rounds(ctx, s.reps, targets):
            for label in order:
                os.sync()
                run = run_small(targets[label], str(ctx.source.path), ctx.source.sizes[-1], s.small_clients,
                                s.small_blobs, s.small_size)
                purge_blobs(ctx.registries[label].root, run.pop("digests"))
                runs[label].append(run)
        return {"reps": len(runs["embedded"]), "clients": s.small_clients, "blobs_per_client": s.small_blobs,
                "blob_bytes": s.small_size, "requests_per_s": compare({k: [r["requests_per_s"] for r in v]
                                                                        for k, v in runs.items()}),
                "mb_per_s": {k: summary([r["mb_per_s"] for r in v]) for k, v in runs.items()}}
