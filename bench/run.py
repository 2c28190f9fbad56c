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
from contextlib import nullcontext
from pathlib import Path

from harness.engines import ENGINE_KINDS

from . import report
from .blobs import BlobSource
from .machine import describe
from .phase import Context, Deadline, Phase
from .phases import NAMES, new_phases
from .profiling import Profiler
from .registries import EmbeddedRegistry, ReferenceRegistry
from .settings import FULL, QUICK

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MERGED = {"push": "engine"}  # a phase that asked another's question: its cold and re-push cases
SIZED = ("engine", "archive", "copy")  # --<phase>-layer-mib, --<phase>-layers, --<phase>-reps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test of the harness")
    p.add_argument("--reps", type=int, help="repetitions per registry measurement (default 5)")
    p.add_argument("--phases", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp"),
                   help="where both registries keep their data (same disk)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (registry roots and logs)")
    p.add_argument("--profile", action="store_true",
                   help="sample the embedded registry with py-spy during ingest (diagnosis: it slows the registry)")
    for phase in SIZED:
        for option, field, what in (("layer-mib", "layer_bytes", "MiB per layer"), ("layers", "layers", "layers per "
                                    "image"), ("reps", "reps", "repetitions")):
            full, quick = (getattr(s, f"{phase}_{field}") // (2**20 if option == "layer-mib" else 1)
                           for s in (FULL, QUICK))
            p.add_argument(f"--{phase}-{option}", type=int,
                           help=f"{phase} phase: {what} (default {full}; quick {quick})")
    p.add_argument("--engine-daemons", type=_daemons,
                   help=f"engine phase: comma-separated subset of {','.join(ENGINE_KINDS)} (default all)")
    return p.parse_args(argv)


def _daemons(value: str) -> tuple[str, ...]:
    daemons = tuple(d.strip() for d in value.split(",") if d.strip())
    unknown = sorted(set(daemons) - set(ENGINE_KINDS))
    if unknown or not daemons:
        raise argparse.ArgumentTypeError(f"not among {','.join(ENGINE_KINDS)}: {','.join(unknown)}")
    return daemons


def settings_of(args: argparse.Namespace):
    settings = QUICK if args.quick else FULL
    overrides = {"reps": args.reps, "engine_daemons": args.engine_daemons}
    for phase in SIZED:
        mib = getattr(args, f"{phase}_layer_mib")
        overrides.update({f"{phase}_layer_bytes": mib and mib * 2**20, f"{phase}_reps": getattr(args, f"{phase}_reps"),
                          f"{phase}_layers": getattr(args, f"{phase}_layers")})
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v})


def wanted_phases(value: str) -> list[str]:
    wanted = []
    for name in (p.strip() for p in value.split(",") if p.strip()):
        if name in MERGED:
            print(f"phase {name} is part of phase {MERGED[name]} now", file=sys.stderr)
        wanted.append(MERGED.get(name, name))
    return wanted


def _kill_client(pool: ProcessPoolExecutor) -> None:
    """Stop the client process this harness started (a hung upload must not outlive the run)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, wanted = settings_of(args), wanted_phases(args.phases)
    if unknown := set(wanted) - set(NAMES):
        print(f"unknown phases: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = time.time()
    name = f"bench-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}"
    name += f"{'-quick' if args.quick else ''}{'-profiled' if args.profile else ''}"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir))
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                     "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "settings": dataclasses.asdict(settings), "machine": describe(workdir)}
    (workdir / "reference").mkdir()
    ctx = Context(settings, workdir, args.quick, EmbeddedRegistry(workdir / "embedded"),
                  ReferenceRegistry(workdir / "reference"), BlobSource(workdir / "data.bin", settings.data_sizes()),
                  ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")), Deadline(settings.deadline_s))
    phases = [phase for phase in new_phases() if phase.name in wanted]
    failed = False
    try:
        # The random data and the reference registry serve the registry phases only.
        both = any(phase.needs_reference for phase in phases)
        print(f"== preparing {'random data and both registries' if both else 'the embedded registry'} in {workdir}",
              flush=True)
        if both:
            ctx.source.prepare()
            ctx.reference.start()
        ctx.embedded.start()
        for phase in phases:
            profiled = args.profile and phase.profiled
            with Profiler(ctx.embedded.pid, RESULTS_DIR / f"{name}-{phase.name}-profile.txt") if profiled \
                    else nullcontext():
                results[phase.name], broke = run_phase(phase, ctx)
            failed = failed or broke
    except Exception as exc:
        failed = True
        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        _kill_client(ctx.client)
        ctx.embedded.stop()
        ctx.reference.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"], results["deadline_hit"] = round(time.time() - started, 1), ctx.deadline.expired()
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    table = report.markdown(results)
    for line, broke in report.chart_lines(results, settings, RESULTS_DIR, name):
        table, failed = table + line, failed or broke
    (RESULTS_DIR / f"{name}.md").write_text(table)
    print(f"\n{table}\nresults: {RESULTS_DIR / name}.json ({results['elapsed_s']} s)")
    return 1 if failed else 0


def run_phase(phase: Phase, ctx: Context) -> tuple[dict, bool]:
    """Its section of the results (its figures, or why it could not run or failed), and whether it failed: by an
    exception, or in measurements that failed while the others went on. A phase that cannot run here has not."""
    if unmet := phase.unmet(ctx):
        return {"error": unmet}, False
    print(f"== {phase.name}", flush=True)
    t0 = time.monotonic()
    try:
        section, failed = phase.run(ctx), False
    except Exception as exc:
        traceback.print_exc()
        section, failed = {"error": f"{type(exc).__name__}: {exc}"}, True
    section["phase_seconds"] = round(time.monotonic() - t0, 1)
    return section, failed or bool(section.get("errors"))
