"""`python -m bench`: start both registries, run every phase interleaved, write bench/results/, print the table."""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import archive_report, chart, engine_report, phases, report, ui_pages
from .archive_phase import archive as archive_phase
from .blob_data import BlobSource
from .embedded_registry import BLOB_PACKAGE, SMALL_PACKAGE, WORKSPACE, EmbeddedRegistry
from .engine_phase import engine as engine_phase
from .machine import describe
from .pipe_push import PushBench
from .profiling import Profiler
from .reference_registry import ReferenceRegistry
from .settings import FULL, QUICK

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ALL_PHASES = ("ingest", "serving", "memory", "small", "push", "engine", "archive", "ui")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test of the harness")
    p.add_argument("--reps", type=int, help="repetitions per measurement (default 5; pipe 3)")
    p.add_argument("--phases", default=",".join(ALL_PHASES), help=f"comma-separated subset of {','.join(ALL_PHASES)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp"), help="where both registries keep their data (same disk)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (registry roots and logs)")
    p.add_argument("--profile", action="store_true",
                   help="sample the embedded registry with py-spy during ingest (diagnosis: it slows the registry)")
    p.add_argument("--engine-layer-mib", type=int, help="engine phase: MiB per layer (default 128; quick 8)")
    p.add_argument("--engine-layers", type=int, help="engine phase: layers per image (default 8)")
    p.add_argument("--engine-reps", type=int, help="engine phase: repetitions (default 2; quick 1)")
    p.add_argument("--archive-layer-mib", type=int, help="archive phase: MiB per layer (default 128; quick 8)")
    p.add_argument("--archive-layers", type=int, help="archive phase: layers of the image (default 8)")
    p.add_argument("--archive-reps", type=int, help="archive phase: repetitions (default 3; quick 1)")
    return p.parse_args(argv)


def _kill_client(pool: ProcessPoolExecutor) -> None:
    """Stop the client process this harness started (a hung upload must not outlive the run)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.reps:
        settings = dataclasses.replace(settings, reps=args.reps, pipe_reps=min(args.reps, settings.pipe_reps) or 1)
    engine_overrides = {k: v for k, v in (("engine_layer_bytes", args.engine_layer_mib and args.engine_layer_mib * 2**20),
                                          ("engine_layers", args.engine_layers), ("engine_reps", args.engine_reps),
                                          ("archive_layer_bytes", args.archive_layer_mib and args.archive_layer_mib * 2**20),
                                          ("archive_layers", args.archive_layers), ("archive_reps", args.archive_reps)) if v}
    settings = dataclasses.replace(settings, **engine_overrides)
    wanted = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(wanted) - set(ALL_PHASES)
    if unknown:
        print(f"unknown phases: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    name = f"bench-{stamp}{'-quick' if args.quick else ''}{'-profiled' if args.profile else ''}"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir))
    results: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": dataclasses.asdict(settings),
        "machine": describe(workdir),
    }
    deadline = phases.Deadline(settings.deadline_s)
    embedded = EmbeddedRegistry(workdir / "embedded")
    reference = ReferenceRegistry(workdir / "reference")
    (workdir / "reference").mkdir()
    client = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
    pusher: PushBench | None = None
    failed = False

    def step(name: str, fn) -> None:
        nonlocal failed
        if name not in wanted:
            return
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except Exception as exc:
            failed = True
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        results.setdefault(name, {})["phase_seconds"] = round(time.monotonic() - t0, 1)
        if results[name].get("errors"):  # measurements that failed while the others went on
            failed = True

    try:
        # The random data and the reference registry serve the registry phases only (not push, engine).
        both = bool({"ingest", "serving", "memory", "small"} & set(wanted))
        print(f"== preparing {'random data and both registries' if both else 'the embedded registry'} in {workdir}",
              flush=True)
        source = BlobSource(workdir / "data.bin", settings.data_sizes())
        if both:
            source.prepare()
        embedded.start()
        if both:
            reference.start()
        pids = {"embedded": embedded.pid, "reference": reference.pid if both else 0}
        roots = {"embedded": embedded.process.root, "reference": reference.root}
        blob_targets = {"embedded": embedded.target(BLOB_PACKAGE), "reference": reference.target(f"{WORKSPACE}/{BLOB_PACKAGE}")}
        small_targets = {"embedded": embedded.target(SMALL_PACKAGE), "reference": reference.target(f"{WORKSPACE}/{SMALL_PACKAGE}")}

        if args.profile:
            with Profiler(embedded.pid, RESULTS_DIR / f"{name}-ingest-profile.txt"):
                step("ingest", lambda: phases.ingest(settings, source, blob_targets, roots, pids, client, deadline, workdir))
        else:
            step("ingest", lambda: phases.ingest(settings, source, blob_targets, roots, pids, client, deadline, workdir))
        last = (results.get("ingest") or {}).pop("_last", None)
        if "serving" in wanted and not last:
            results["serving"] = {"error": "needs the blobs of the ingest phase"}
        elif last:
            step("serving", lambda: phases.serving(settings, blob_targets, last, client, deadline))
        step("memory", lambda: phases.memory(settings, source, blob_targets, roots, pids, client, deadline))
        step("small", lambda: phases.small(settings, source, small_targets, roots, deadline))
        pusher = PushBench(embedded, workdir / "push", list(settings.pipe_layers))
        step("push", lambda: phases.push(settings, pusher, deadline))
        step("engine", lambda: engine_phase(settings, embedded, workdir / "engine"))
        step("archive", lambda: archive_phase(settings, embedded, workdir / "archive"))
        step("ui", lambda: ui_pages.run(workdir / "ui", quick=args.quick))
    except Exception as exc:
        failed = True
        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _kill_client(client)
        if pusher is not None:
            pusher.cleanup()
        embedded.stop()
        reference.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    results["elapsed_s"] = round(time.time() - started, 1)
    results["deadline_hit"] = deadline.expired()
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    eng, arc = results.get("engine") or {}, results.get("archive") or {}
    table = report.markdown(results) + engine_report.markdown(eng) + archive_report.markdown(arc)
    if eng.get("summary") or arc.get("summary"):
        try:
            # Only runs at the sizes replace the chart that BENCHMARKS.md and the README show, and
            # only with the engine phase in them (the chart's main figures).
            publish = bool(eng.get("summary")) and (
                (settings.engine_layers, settings.engine_layer_bytes) == (FULL.engine_layers, FULL.engine_layer_bytes)
                and (not arc.get("summary") or (settings.archive_layers, settings.archive_layer_bytes)
                     == (FULL.archive_layers, FULL.archive_layer_bytes)))
            png = chart.draw(eng, RESULTS_DIR / f"{name}-push.png", f"Push, {name}", publish, arc)
            if png:
                table += f"\nchart: {png}{f' (copied to {chart.STABLE_PATH})' if publish else ''}\n"
        except Exception as exc:  # the figures are written either way
            failed = True
            traceback.print_exc()
            table += f"\n**chart failed**: {type(exc).__name__}: {exc}\n"
    (RESULTS_DIR / f"{name}.md").write_text(table)
    print()
    print(table)
    print(f"results: {RESULTS_DIR / name}.json ({results['elapsed_s']} s)")
    return 1 if failed else 0
