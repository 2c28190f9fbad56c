"""Every phase of `python -m bench`, in the order they run (the Phase protocol: bench/phase.py; what each asks:
BENCHMARKS.md)."""
from __future__ import annotations

from ..phase import Phase
from .archive import ArchivePhase
from .copy import CopyPhase
from .engine import EnginePhase
from .image import ImagePhase
from .registry import IngestPhase, MemoryPhase, ServingPhase, SmallPhase
from .ui import UiPhase

KINDS: tuple[type[Phase], ...] = (IngestPhase, ServingPhase, MemoryPhase, SmallPhase, EnginePhase,
                                  ArchivePhase, CopyPhase, UiPhase, ImagePhase)
NAMES = tuple(kind.name for kind in KINDS)


def new_phases() -> list[Phase]:
    """One instance of each, for one run (a phase may keep what its cleanup removes)."""
    return [kind() for kind in KINDS]
