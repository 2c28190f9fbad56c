"""The `serving` phase: the blob `ingest` left in each registry read back whole and as a Range, interleaved."""
from __future__ import annotations

from ..blobs import timed_get
from ..phase import Context, Phase
from ..registries import BLOB_PACKAGE
from ..stats import alternate, compare, rate_mb_s, time_limit


class ServingPhase(Phase):
    name = "serving"
    needs_reference = True

    def unmet(self, ctx: Context) -> str | None:
        return None if ctx.ingested else "needs the blobs of the ingest phase"

    def run(self, ctx: Context) -> dict:
        s, targets = ctx.settings, ctx.targets(BLOB_PACKAGE)
        full, ranged = {label: [] for label in targets}, {label: [] for label in targets}
        start = (s.blob - s.range_bytes) // 2
        reps = 0
        for rep in range(s.reps):
            if ctx.deadline.expired():
                break
            for label in alternate(list(targets), rep):
                digest = ctx.ingested[label].digest
                seconds = ctx.client.submit(timed_get, targets[label], digest, None, None, s.blob).result(
                    time_limit(s.blob))
                full[label].append(rate_mb_s(s.blob, seconds))
                seconds = ctx.client.submit(timed_get, targets[label], digest, start, start + s.range_bytes,
                                            s.range_bytes).result(time_limit(s.range_bytes))
                ranged[label].append(rate_mb_s(s.range_bytes, seconds))
            reps += 1
        return {"reps": reps, "range_bytes": s.range_bytes, "range_start": start,
                "full_mb_s": compare(full), "range_mb_s": compare(ranged)}
