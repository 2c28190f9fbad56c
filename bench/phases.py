"""The measurements, each interleaved between the two registries (the order alternates per repetition)."""
from __future__ import annotations

import os
import time
from concurrent.futures import Executor
from pathlib import Path

from . import small_blobs
from .blob_client import Target, timed_get, timed_upload, verified_get
from .blob_data import BlobSource
from .ceiling import page_cache_write_rate, sha256_rate
from .cpu import cpu_seconds
from .memory import PeakRss, rss_mb
from .pipe_push import PushBench, pipe_missing
from .purge import purge_blobs
from .settings import Settings
from .stats import rate_mb_s, ratio, summary

MIN_RATE = 10e6  # bytes/s: an operation slower than this is treated as hung


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self.end


def _order(labels: list[str], rep: int) -> list[str]:
    return labels if rep % 2 == 0 else labels[::-1]


def _limit(nbytes: int) -> float:
    return 60.0 + nbytes / MIN_RATE


def _compare(per_label: dict[str, list[float]], higher_is_better: bool = True) -> dict:
    out = {label: summary(values) for label, values in per_label.items()}
    out["ratio"] = ratio(out["embedded"], out["reference"]) if higher_is_better else None
    return out


def ingest(s: Settings, source: BlobSource, targets: dict[str, Target], roots: dict[str, Path], pids: dict[str, int],
           client: Executor, deadline: Deadline, workdir: Path) -> dict:
    labels = list(targets)
    rates = {mode: {label: [] for label in labels} for mode in ("monolithic", "chunked")}
    cpu = {mode: {label: [] for label in labels} for mode in ("monolithic", "chunked")}
    sha, page_cache = [], []
    last = {}
    reps = 0
    for rep in range(s.reps):
        if deadline.expired():
            break
        sha.append(sha256_rate(s.blob))
        page_cache.append(page_cache_write_rate(workdir / "page-cache-probe.bin", s.blob))
        for label in _order(labels, rep):
            for mode, chunk in (("monolithic", None), ("chunked", s.chunk)):
                blob = source.blob(s.blob)
                os.sync()  # untimed: every upload starts with no dirty pages waiting for the disk
                cpu0 = cpu_seconds(pids[label])
                seconds = client.submit(timed_upload, targets[label], blob, chunk).result(_limit(s.blob))
                cpu[mode][label].append((cpu_seconds(pids[label]) - cpu0) * 2**30 / s.blob)
                rates[mode][label].append(rate_mb_s(s.blob, seconds))
                if not purge_blobs(roots[label], [blob.digest]):
                    raise RuntimeError(f"{label}: no stored file named by {blob.digest} to purge (layout changed?)")
        reps += 1
    # One more (untimed) upload per registry: the blob the serving phase reads, checked end to end.
    verified = {}
    for label in labels:
        blob = last[label] = source.blob(s.blob)
        client.submit(timed_upload, targets[label], blob, None).result(_limit(s.blob))
        verified[label] = client.submit(verified_get, targets[label], blob.digest).result(_limit(s.blob)) == blob.digest
    return {
        "reps": reps,
        "blob_bytes": s.blob,
        "chunk_bytes": s.chunk,
        "monolithic_mb_s": _compare(rates["monolithic"]),
        "chunked_mb_s": _compare(rates["chunked"]),
        "monolithic_cpu_s_per_gib": _compare(cpu["monolithic"]),
        "chunked_cpu_s_per_gib": _compare(cpu["chunked"]),
        "sha256_mb_s": summary(sha),
        "page_cache_write_mb_s": summary(page_cache),
        "verified_by_full_get": verified,
        "_last": last,
    }


def serving(s: Settings, targets: dict[str, Target], blobs: dict, client: Executor, deadline: Deadline) -> dict:
    labels = list(targets)
    full = {label: [] for label in labels}
    ranged = {label: [] for label in labels}
    start = (s.blob - s.range_bytes) // 2
    reps = 0
    for rep in range(s.reps):
        if deadline.expired():
            break
        for label in _order(labels, rep):
            digest = blobs[label].digest
            seconds = client.submit(timed_get, targets[label], digest, None, None, s.blob).result(_limit(s.blob))
            full[label].append(rate_mb_s(s.blob, seconds))
            seconds = client.submit(timed_get, targets[label], digest, start, start + s.range_bytes,
                                    s.range_bytes).result(_limit(s.range_bytes))
            ranged[label].append(rate_mb_s(s.range_bytes, seconds))
        reps += 1
    return {"reps": reps, "range_bytes": s.range_bytes, "range_start": start,
            "full_mb_s": _compare(full), "range_mb_s": _compare(ranged)}


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
            for label in _order(labels, rep):
                blob = source.blob(size)
                os.sync()
                with PeakRss(pids[label]) as peak:
                    seconds = client.submit(timed_upload, targets[label], blob, None).result(_limit(size))
                peaks[label].append(peak.peak_mb)
                rates[label].append(rate_mb_s(size, seconds))
                purge_blobs(roots[label], [blob.digest])
        out[f"{size // 2**20}MiB"] = {
            "blob_bytes": size,
            "peak_rss_mb": {label: summary(v) for label, v in peaks.items()},
            "ingest_mb_s": {label: summary(v) for label, v in rates.items()},
        }
    return out


def small(s: Settings, source: BlobSource, targets: dict[str, Target], roots: dict[str, Path], deadline: Deadline) -> dict:
    labels = list(targets)
    runs = {label: [] for label in labels}
    reps = 0
    for rep in range(s.reps):
        if deadline.expired():
            break
        for label in _order(labels, rep):
            os.sync()
            run = small_blobs.run(targets[label], str(source.path), source.sizes[-1],
                                  s.small_clients, s.small_blobs, s.small_size)
            purge_blobs(roots[label], run.pop("digests"))
            runs[label].append(run)
        reps += 1
    return {
        "reps": reps,
        "clients": s.small_clients, "blobs_per_client": s.small_blobs, "blob_bytes": s.small_size,
        "requests_per_s": _compare({label: [r["requests_per_s"] for r in v] for label, v in runs.items()}),
        "mb_per_s": {label: summary([r["mb_per_s"] for r in v]) for label, v in runs.items()},
    }


def push(s: Settings, bench: PushBench, deadline: Deadline) -> dict:
    missing = pipe_missing()
    docker_s, pipe_s, noop_s = [], [], []
    bench.prepare()
    out: dict = {"image_bytes": bench.image_bytes(), "layers": len(s.pipe_layers)}
    for rep in range(s.pipe_reps):
        if deadline.expired():
            break
        steps = ["docker", "pipe"] if rep % 2 == 0 else ["pipe", "docker"]
        for step in steps:
            if step == "docker":
                docker_s.append(bench.docker_push(rep))
            elif missing is None:
                first, again = bench.pipe_push(rep)
                pipe_s.append(first)
                noop_s.append(again)
    out.update({
        "pipe_status": "ran" if missing is None else f"NOT RUN: {missing}",
        "docker_push_s": summary(docker_s),
        "pipe_push_s": summary(pipe_s),
        "pipe_noop_repush_s": summary(noop_s),
    })
    out["pipe_over_docker"] = ratio(out["pipe_push_s"], out["docker_push_s"])
    return out
