"""What a run ends with, whichever engine: what a push did (the summary line and the output file are written
from it), or a dry run's preview (engine/preview.py); report.py tells each."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class PushResult:
    engine: str  # native, or docker (the daemon's push)
    source: str  # daemon, docker-archive, oci-layout or oci-archive
    source_image: str  # the local image, or the archive's path as given
    digest: str  # what the tags point at: the manifest, or the index of a multi-platform image
    tags: tuple[str, ...]
    platforms: tuple[str, ...]
    pushed_bytes: int  # blob bytes this run uploaded
    layers_uploaded: int
    layers_skipped: int  # already in the registry
    layers_mounted: int = 0  # made visible from another package of the workspace
    layers_read: bool = True  # whether any layer was read from the source
    manifests: tuple[tuple[str, str], ...] = ()  # (platform, manifest digest) under an index
    index_digest: str | None = None
    previous: tuple[tuple[str, str | None], ...] = ()  # (tag, what it pointed at before; None: new)

    @property
    def uploaded_nothing(self) -> bool:
        return self.layers_uploaded == 0

    def reported_by(self, report: Report) -> dict[str, Any]:
        return report.pushed(self)


class Report(Protocol):
    """How the run ends, in one place (report.py): a push's result, or a dry run's preview."""

    def pushed(self, result: PushResult) -> dict[str, Any]: ...

    def planned(self, preview: Any) -> dict[str, Any]: ...  # engine/preview.Preview


class Ending(Protocol):
    """What either engine ends with, for the report: a PushResult, or a dry run's Preview."""

    def reported_by(self, report: Report) -> dict[str, Any]: ...
