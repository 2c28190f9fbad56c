"""The `memory` phase: each registry's peak RSS while it ingests blobs of each size, and its idle RSS."""
from __future__ import annotations

import os
from concurrent.futures import Executor
from pathlib import Path

from ..blobs.client import Target, timed_upload
from ..blobs.data import BlobSource
from ..memory import PeakRss, rss_mb
from ..phase import Context, Deadline, Phase
from ..registries.purge import purge_blobs
from ..settings import Settings
from ..stats import alternate, rate_mb_s, summary, time_limit


class MemoryPhase(Phase):
    name = "memory"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        return memory(ctx.settings, ctx.source, ctx.blob_targets, ctx.roots, ctx.pids, ctx.client, ctx.deadline)


def memory(s: Settings, source: BlobSource, targets: dict[str, Target], roots: dict[str, Path], pids: dict[str, int],
           client: Executor, deadline: Deadline) -> dict:
    labels = list(targets)
    out: dict = {"idle_rss_mb": {label: rss_mb(pids[label]) for label in labels}}
    for size in s.memory_sizes:
        peaks = {label: [] for label in labels}
        rates = {label: [] for label in labels}
        for rep in range(s.memory_reps):
            if deadline.expired():
                break
            for label in alternate(labels, rep):
                blob = source.blob(size)
                os.sync()
                with PeakRss(pids[label]) as peak:
                    seconds = client.submit(timed_upload, targets[label], blob, None).result(time_limit(size))
                peaks[label].append(peak.peak_mb)
                rates[label].append(rate_mb_s(size, seconds))
                purge_blobs(roots[label], [blob.digest])
        out[f"{size // 2**20}MiB"] = {
            "blob_bytes": size,
            "peak_rss_mb": {label: summary(v) for label, v in peaks.items()},
            "ingest_mb_s": {label: summary(v) for label, v in rates.items()},
        }
    return out
