"""What a phase is: one named part of `python -m bench`, run in a fixed order, each writing one section of the
results; what every phase is given (the Context) and bounded by (a Deadline); and what the push phases share
(PushPhase: the measurements of each case and tool, their repetitions, the section they write)."""
from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from .blobs import Blob, BlobSource
from .pushes.engine_push import EngineBench
from .registries import EmbeddedRegistry, ReferenceRegistry
from .settings import Settings
from .stats import summarize_runs


class Deadline:
    """A phase stops starting repetitions once it has passed."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def expired(self) -> bool:
        return time.monotonic() > self.end


@dataclass
class Context:
    """The run as the phases see it; the registries are started (the reference only for phases that need it)."""
    settings: Settings
    workdir: Path  # temporary, on the disk both registries write to; a phase works under workdir / its name
    quick: bool
    embedded: EmbeddedRegistry
    reference: ReferenceRegistry
    source: BlobSource  # the random data, prepared when a phase that needs the reference runs
    client: Executor  # one spawned process that does the blob transfers, so the harness is never the client
    deadline: Deadline  # shared by the registry phases; started before the data and the registries
    ingested: dict[str, Blob] = field(default_factory=dict)  # the blob ingest left in each, read by serving

    @property
    def registries(self) -> dict[str, EmbeddedRegistry | ReferenceRegistry]:
        """By label (a registry's pid, root, and `target(package)`: where the blob phases send a package's blobs)."""
        return {"embedded": self.embedded, "reference": self.reference}


class Phase(Protocol):
    """A phase: `run` returns its section of the results (JSON-ready); a failure is recorded, the others go on."""

    name: ClassVar[str]  # its key in the results and its name in --phases
    needs_reference: ClassVar[bool] = False  # compares with distribution: the random data and the reference start

    def unmet(self, ctx: Context) -> str | None:
        """Why this phase cannot run in this run (recorded as its error, without running it), or None."""
        return None

    def run(self, ctx: Context) -> dict:
        ...


class PushPhase(Phase):
    """A phase of the pipe's pushes (engine, archive, copy): tools measured per case, interleaved, in
    repetitions; one failed measurement is recorded under `errors` and the others go on. `measure` does the
    phase's work under workdir / its name, with `bench` (the tools) pushing to the embedded registry."""

    def run(self, ctx: Context) -> dict:
        self.s, self.registry = ctx.settings, ctx.embedded
        self.workdir = ctx.workdir / self.name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bench = EngineBench(ctx.embedded, self.workdir)
        self.runs: dict[str, dict[str, list[dict]]] = {}
        self.errors: list[str] = []
        self.reps = 0
        self.deadline_s = getattr(ctx.settings, f"{self.name}_deadline_s")  # its own, from its start
        self.deadline = Deadline(self.deadline_s)
        return self.measure()

    def measure(self) -> dict:
        ...

    def record(self, case: str, tool: str, fn: Callable[[], dict]) -> dict | None:
        """One measurement, with the load on the machine as it started (the same-run ratios are what compare)."""
        print(f"   {case} {tool}", flush=True)
        load = os.getloadavg()[0]
        try:
            out = fn()
        except Exception as exc:
            self.failed(f"{case} {tool}", exc)
            return None
        out["load_1m"] = round(load, 2)
        self.runs.setdefault(case, {}).setdefault(tool, []).append(out)
        return out

    def failed(self, what: str, exc: Exception) -> None:
        self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
        traceback.print_exc()

    def repetitions(self, reps: int) -> Iterator[int]:
        """0 .. reps-1, until the phase's deadline has passed; `self.reps` counts those that ended."""
        for rep in range(reps):
            if self.deadline.expired():
                self.errors.append(f"deadline ({self.deadline_s:.0f} s) reached before rep {rep}")
                return
            yield rep
            self.reps += 1

    def section(self, layers: int, layer_bytes: int, **facts) -> dict:
        return {"layers": layers, "layer_bytes": layer_bytes, "image_bytes": layers * layer_bytes, "reps": self.reps,
                **facts, "summary": summarize_runs(self.runs), "runs": self.runs, "errors": self.errors}
