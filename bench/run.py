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
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from harness.engines import ENGINE_KINDS

from . import report
from .blobs import BlobSource
from .machine import describe
from .phase import Context, Deadline, Phase
from .phases.archive import ArchivePhase
from .phases.copy import CopyPhase
from .phases.engine import EnginePhase
from .phases.image import ImagePhase
from .phases.registry import IngestPhase, MemoryPhase, ServingPhase, SmallPhase
from .phases.ui import UiPhase
from .registries import EmbeddedRegistry, ReferenceRegistry
from .settings import FULL, QUICK

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# In run order (serving reads what ingest left); a run makes one instance of each.
KINDS: tuple[type[Phase], ...] = (IngestPhase, ServingPhase, MemoryPhase, SmallPhase, EnginePhase, ArchivePhase,
                                  CopyPhase, UiPhase, ImagePhase)
NAMES = tuple(kind.name for kind in KINDS)
SIZED = ("engine", "archive", "copy")  # --<phase>-layer-mib, --<phase>-layers, --<phase>-reps


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke test of the harness")
    p.add_argument("--reps", type=int, help="repetitions per registry measurement (default 5)")
    p.add_argument("--phases", type=subset(NAMES), default=NAMES, help=f"comma-separated subset of {','.join(NAMES)}")
    p.add_argument("--workdir", type=Path, default=Path("/tmp"),
                   help="where both registries keep their data (same disk)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (registry roots and logs)")
    for phase in SIZED:
        for option, field, what in (("layer-mib", "layer_bytes", "MiB per layer"), ("layers", "layers", "layers per "
                                    "image"), ("reps", "reps", "repetitions")):
            full, quick = (getattr(s, f"{phase}_{field}") // (2**20 if option == "layer-mib" else 1)
                           for s in (FULL, QUICK))
            p.add_argument(f"--{phase}-{option}", type=int,
                           help=f"{phase} phase: {what} (default {full}; quick {quick})")
    p.add_argument("--engine-daemons", type=subset(ENGINE_KINDS),
                   help=f"engine phase: comma-separated subset of {','.join(ENGINE_KINDS)} (default all)")
    return p.parse_args(argv)


def subset(known: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """An option's type: a comma-separated subset of `known`."""
    def parse(value: str) -> tuple[str, ...]:
        chosen = tuple(v.strip() for v in value.split(",") if v.strip())
        if not chosen or set(chosen) - set(known):
            raise argparse.ArgumentTypeError(f"{value!r} is not a subset of {','.join(known)}")
        return chosen
    return parse


def settings_of(args: argparse.Namespace):
    settings = QUICK if args.quick else FULL
    overrides = {"reps": args.reps, "engine_daemons": args.engine_daemons}
    for phase in SIZED:
        mib = getattr(args, f"{phase}_layer_mib")
        overrides.update({f"{phase}_layer_bytes": mib and mib * 2**20, f"{phase}_reps": getattr(args, f"{phase}_reps"),
                          f"{phase}_layers": getattr(args, f"{phase}_layers")})
    return dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v})


def _kill_client(pool: ProcessPoolExecutor) -> None:
    """Stop the client process this harness started (a hung upload must not outlive the run)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()  # nothing to do for one that has ended
    pool.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, wanted = settings_of(args), args.phases
    started = time.time()
    name = f"bench-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}{'-quick' if args.quick else ''}"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.workdir))
    results: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                     "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
                     "settings": dataclasses.asdict(settings), "machine": describe(workdir)}
    (workdir / "reference").mkdir()
    ctx = Context(settings, workdir, args.quick, EmbeddedRegistry(workdir / "embedded"),
                  ReferenceRegistry(workdir / "reference"), BlobSource(workdir / "data.bin", settings.data_sizes()),
                  ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")), Deadline(settings.deadline_s))
    phases = [kind() for kind in KINDS if kind.name in wanted]
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
        print(f"   embedded registry: pid {ctx.embedded.pid} (to profile: py-spy record --pid {ctx.embedded.pid})",
              flush=True)
        for phase in phases:
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
