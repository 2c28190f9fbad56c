"""The `small` phase: many concurrent clients uploading 1 MiB blobs to each registry, requests per second."""
from __future__ import annotations

import os

from .. import blobs
from ..phase import Context, Phase
from ..registries import SMALL_PACKAGE, purge_blobs
from ..stats import alternate, compare, summary


class SmallPhase(Phase):
    name = "small"
    needs_reference = True

    def run(self, ctx: Context) -> dict:
        s, targets = ctx.settings, ctx.targets(SMALL_PACKAGE)
        runs = {label: [] for label in targets}
        reps = 0
        for rep in range(s.reps):
            if ctx.deadline.expired():
                break
            for label in alternate(list(targets), rep):
                os.sync()
                run = blobs.run_small(targets[label], str(ctx.source.path), ctx.source.sizes[-1],
                                      s.small_clients, s.small_blobs, s.small_size)
                purge_blobs(ctx.roots[label], run.pop("digests"))
                runs[label].append(run)
            reps += 1
        return {
            "reps": reps, "clients": s.small_clients, "blobs_per_client": s.small_blobs, "blob_bytes": s.small_size,
            "requests_per_s": compare({label: [r["requests_per_s"] for r in v] for label, v in runs.items()}),
            "mb_per_s": {label: summary([r["mb_per_s"] for r in v]) for label, v in runs.items()},
        }
