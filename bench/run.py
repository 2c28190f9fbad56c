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
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from harness.engines import ENGINE_KINDS

from . import report
from .blobs.data import BlobSource
from .machine import describe
from .phase import Context, Deadline, Phase
from .phases import NAMES, new_phases
from .profiling import Profiler
from .registries.embedded import BLOB_PACKAGE, SMALL_PACKAGE, WORKSPACE, EmbeddedRegistry
from .registries.reference import ReferenceRegistry
from .report import chart, copy_chart, daemons_chart
from .report.format import chart_line
from .settings import FULL, QUICK

RESULTS_DIR = Path(__file__).resolve().parent / "results"
ALL_PHASES = NAMES


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test of the harness")
    p.add_argument("--reps", type=int, help="repetitions per measurement (default 5; pipe 3)")
    p.add_argument("--phases", default=",".join(ALL_PHASES), help=f"comma-separated subset of {','.join(ALL_PHASES)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp"),
                   help="where both registries keep their data (same disk)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (registry roots and logs)")
    p.add_argument("--profile", action="store_true",
                   help="sample the embedded registry with py-spy during ingest (diagnosis: it slows the registry)")
    p.add_argument("--engine-layer-mib", type=int, help="engine phase: MiB per layer (default 128; quick 8)")
    p.add_argument("--engine-layers", type=int, help="engine phase: layers per image (default 8)")
    p.add_argument("--engine-reps", type=int, help="engine phase: repetitions (default 2; quick 1)")
    p.add_argument("--engine-daemons", type=_daemons,
                   help=f"engine phase: comma-separated subset of {','.join(ENGINE_KINDS)} (default all)")
    p.add_argument("--archive-layer-mib", type=int, help="archive phase: MiB per layer (default 128; quick 8)")
    p.add_argument("--archive-layers", type=int, help="archive phase: layers of the image (default 8)")
    p.add_argument("--archive-reps", type=int, help="archive phase: repetitions (default 3; quick 1)")
    p.add_argument("--copy-layer-mib", type=int, help="copy phase: MiB per layer (default 128; quick 8)")
    p.add_argument("--copy-layers", type=int, help="copy phase: layers per image (default 8)")
    p.add_argument("--copy-reps", type=int, help="copy phase: repetitions (default 3; quick 1)")
    return p.parse_args(argv)


def _daemons(value: str) -> tuple[str, ...]:
    daemons = tuple(d.strip() for d in value.split(",") if d.strip())
    unknown = sorted(set(daemons) - set(ENGINE_KINDS))
    if unknown or not daemons:
        raise argparse.ArgumentTypeError(f"not among {','.join(ENGINE_KINDS)}: {','.join(unknown)}")
    return daemons


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
    engine_overrides = {k: v for k, v in (
        ("engine_layer_bytes", args.engine_layer_mib and args.engine_layer_mib * 2**20),
        ("engine_layers", args.engine_layers), ("engine_reps", args.engine_reps),
        ("engine_daemons", args.engine_daemons),
        ("archive_layer_bytes", args.archive_layer_mib and args.archive_layer_mib * 2**20),
        ("archive_layers", args.archive_layers), ("archive_reps", args.archive_reps),
        ("copy_layer_bytes", args.copy_layer_mib and args.copy_layer_mib * 2**20),
        ("copy_layers", args.copy_layers), ("copy_reps", args.copy_reps)) if v}
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
    deadline = Deadline(settings.deadline_s)
    embedded = EmbeddedRegistry(workdir / "embedded")
    reference = ReferenceRegistry(workdir / "reference")
    (workdir / "reference").mkdir()
    client = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
    phases = new_phases()
    failed = False

    def step(phase: Phase, ctx: Context) -> None:
        nonlocal failed
        if phase.name not in wanted:
            return
        unmet = phase.unmet(ctx)
        if unmet:
            results[phase.name] = {"error": unmet}
            return
        print(f"== {phase.name}", flush=True)
        t0 = time.monotonic()
        try:
            results[phase.name] = phase.run(ctx)
        except Exception as exc:
            failed = True
            traceback.print_exc()
            results[phase.name] = {"error": f"{type(exc).__name__}: {exc}"}
        results.setdefault(phase.name, {})["phase_seconds"] = round(time.monotonic() - t0, 1)
        if results[phase.name].get("errors"):  # measurements that failed while the others went on
            failed = True

    def profiled(phase: Phase) -> AbstractContextManager:
        if args.profile and phase.profiled:
            return Profiler(embedded.pid, RESULTS_DIR / f"{name}-{phase.name}-profile.txt")
        return nullcontext()

    try:
        # The random data and the reference registry serve the registry phases only (not push, engine).
        both = any(phase.needs_reference for phase in phases if phase.name in wanted)
        print(f"== preparing {'random data and both registries' if both else 'the embedded registry'} in {workdir}",
              flush=True)
        source = BlobSource(workdir / "data.bin", settings.data_sizes())
        if both:
            source.prepare()
        embedded.start()
        if both:
            reference.start()
        ctx = Context(
            settings, workdir, args.quick, embedded, reference, source, client, deadline,
            pids={"embedded": embedded.pid, "reference": reference.pid if both else 0},
            roots={"embedded": embedded.process.root, "reference": reference.root},
            blob_targets={"embedded": embedded.target(BLOB_PACKAGE),
                          "reference": reference.target(f"{WORKSPACE}/{BLOB_PACKAGE}")},
            small_targets={"embedded": embedded.target(SMALL_PACKAGE),
                           "reference": reference.target(f"{WORKSPACE}/{SMALL_PACKAGE}")},
        )
        for phase in phases:
            with profiled(phase):
                step(phase, ctx)
    except Exception as exc:
        failed = True
        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _kill_client(client)
        for phase in phases:
            phase.cleanup()
        embedded.stop()
        reference.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    results["elapsed_s"] = round(time.time() - started, 1)
    results["deadline_hit"] = deadline.expired()
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = report.markdown(results)
    eng, arc = results.get("engine") or {}, results.get("archive") or {}
    if eng.get("summary") or arc.get("summary"):
        def push_chart() -> tuple[Path | None, bool]:
            publish = chart.publishes(settings, eng, arc)
            return chart.draw(eng, RESULTS_DIR / f"{name}-push.png", f"Push, {name}", publish, arc), publish
        line, broke = chart_line("chart", push_chart, chart.STABLE_PATH)
        table, failed = table + line, failed or broke
    if eng.get("summary"):
        def daemons_figure() -> tuple[Path | None, bool]:
            publish = chart.publishes(settings, eng, {})
            png = daemons_chart.draw(eng, RESULTS_DIR / f"{name}-push-26.png", f"Push from Docker 26, {name}", publish)
            return png, publish
        line, broke = chart_line("Docker 26 chart", daemons_figure, daemons_chart.STABLE_PATH)
        table, failed = table + line, failed or broke
    cop = results.get("copy") or {}
    if cop.get("summary"):
        def copy_figure() -> tuple[Path | None, bool]:
            publish = copy_chart.publishes(settings)
            png = copy_chart.draw(cop, RESULTS_DIR / f"{name}-copy.png", f"Copy from a registry, {name}", publish)
            return png, publish
        line, broke = chart_line("copy chart", copy_figure, copy_chart.STABLE_PATH)
        table, failed = table + line, failed or broke
    (RESULTS_DIR / f"{name}.md").write_text(table)
    print()
    print(table)
    print(f"results: {RESULTS_DIR / name}.json ({results['elapsed_s']} s)")
    return 1 if failed else 0
