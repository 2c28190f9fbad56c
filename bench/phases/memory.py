"""The `memory` phase: each registry's peak RSS while it ingests blobs of each size, and its idle RSS."""
from __future__ import annotations

import os

from ..blobs import timed_upload
from ..measure import PeakRss, status_kb
from ..phase import Context, Phase
from ..registries import BLOB_PACKAGE, purge_blobs
from ..stats import alternate, rate_mb_s, summary, time_limit


class MemoryPhase(Phase):
    name = "memory"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        s, targets, pids = ctx.settings, ctx.targets(BLOB_PACKAGE), ctx.pids
        out: dict = {"idle_rss_mb": {label: (status_kb(pids[label], "VmRSS") or 0) * 1024 / 1e6 for label in targets}}
        for size in s.memory_sizes:
            peaks, rates = {label: [] for label in targets}, {label: [] for label in targets}
            for rep in range(s.memory_reps):
                if ctx.deadline.expired():
                    break
                for label in alternate(list(targets), rep):
                    blob = ctx.source.blob(size)
                    os.sync()
                    with PeakRss(pids[label]) as peak:
                        seconds = ctx.client.submit(timed_upload, targets[label], blob, None).result(time_limit(size))
                    peaks[label].append(peak.peak_mb)
                    rates[label].append(rate_mb_s(size, seconds))
                    purge_blobs(ctx.roots[label], [blob.digest])
            out[f"{size // 2**20}MiB"] = {
                "blob_bytes": size,
                "peak_rss_mb": {label: summary(v) for label, v in peaks.items()},
                "ingest_mb_s": {label: summary(v) for label, v in rates.items()},
            }
        return out
