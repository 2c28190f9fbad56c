"""Every phase of `python -m bench`, in the order they run (the Phase protocol: bench/phase.py).

Registry against distribution 2.8: ingest, serving, memory, small. The pipe's pushes, one question each: engine
(from a daemon: the pipe's engines against `docker push` and the export floor, and the re-push), archive
(IMAGE_ARCHIVE against `skopeo copy`), copy (SOURCE_IMAGE against `skopeo copy`, `docker pull` + `docker push`
and the GET -> PUT floor). The registry's pages: ui. The pipe image: image.
"""
from __future__ import annotations

from ..phase import Phase
from .archive import ArchivePhase
from .copy import CopyPhase
from .engine import EnginePhase
from .image import ImagePhase
from .ingest import IngestPhase
from .memory import MemoryPhase
from .serving import ServingPhase
from .small import SmallPhase
from .ui import UiPhase

KINDS: tuple[type[Phase], ...] = (IngestPhase, ServingPhase, MemoryPhase, SmallPhase, EnginePhase,
                                  ArchivePhase, CopyPhase, UiPhase, ImagePhase)
NAMES = tuple(kind.name for kind in KINDS)


def new_phases() -> list[Phase]:
    """One instance of each, for one run (a phase may keep what its cleanup removes)."""
    return [kind() for kind in KINDS]
