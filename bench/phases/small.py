"""The `small` phase: many concurrent clients uploading 1 MiB blobs to each registry, requests per second."""
from __future__ import annotations

import os
from pathlib import Path

from ..blobs import small as small_blobs
from ..blobs.client import Target
from ..blobs.data import BlobSource
from ..phase import Context, Deadline, Phase
from ..registries.purge import purge_blobs
from ..settings import Settings
from ..stats import alternate, compare, summary


class SmallPhase(Phase):
    name = "small"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        return small(ctx.settings, ctx.source, ctx.small_targets, ctx.roots, ctx.deadline)


def small(s: Settings, source: BlobSource, targets: dict[str, Target], roots: dict[str, Path],
          deadline: Deadline) -> dict:
    labels = list(targets)
    runs = {label: [] for label in labels}
    reps = 0
    for rep in range(s.reps):
        if deadline.expired():
            break
        for label in alternate(labels, rep):
            os.sync()
            run = small_blobs.run(targets[label], str(source.path), source.sizes[-1],
                                  s.small_clients, s.small_blobs, s.small_size)
            purge_blobs(roots[label], run.pop("digests"))
            runs[label].append(run)
        reps += 1
    return {
        "reps": reps,
        "clients": s.small_clients, "blobs_per_client": s.small_blobs, "blob_bytes": s.small_size,
        "requests_per_s": compare({label: [r["requests_per_s"] for r in v] for label, v in runs.items()}),
        "mb_per_s": {label: summary([r["mb_per_s"] for r in v]) for label, v in runs.items()},
    }
