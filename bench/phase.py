"""What a phase is: one named part of `python -m bench`, run in a fixed order, each writing one section of
the results; and what every phase is given (the Context) and bounded by (a Deadline)."""
from __future__ import annotations

import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from .blobs.client import Target
from .blobs.data import Blob, BlobSource
from .registries.embedded import EmbeddedRegistry
from .registries.reference import ReferenceRegistry
from .settings import Settings


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
    # Per registry label ("embedded", "reference"): pids, roots and where the blob phases send their blobs.
    pids: dict[str, int]
    roots: dict[str, Path]
    blob_targets: dict[str, Target]
    small_targets: dict[str, Target]
    ingested: dict[str, Blob] = field(default_factory=dict)  # the blob ingest left in each, read by serving


class Phase(Protocol):
    """A phase: `run` returns its section of the results (JSON-ready); a failure is recorded, the others go on."""

    name: ClassVar[str]  # its key in the results and its name in --phases
    needs_reference: ClassVar[bool] = False  # compares with distribution: the random data and the reference start
    profiled: ClassVar[bool] = False  # `--profile` samples the embedded registry with py-spy around it

    def unmet(self, ctx: Context) -> str | None:
        """Why this phase cannot run in this run (recorded as its error, without running it), or None."""
        return None

    def run(self, ctx: Context) -> dict:
        ...

    def cleanup(self) -> None:
        """Remove what `run` left for the end of the whole run (called once the client process is stopped)."""
