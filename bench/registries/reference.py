"""The reference registry for the benchmarks: distribution 2.8 on loopback, no auth, quiet logs.

The process handling lives in harness/reference_registry.py, shared with the integration tests.
"""
from __future__ import annotations

from pathlib import Path

from harness.reference_registry import DistributionRegistry

from ..blobs.client import Target


class ReferenceRegistry(DistributionRegistry):
    label = "reference"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, quiet=True)

    def target(self, repository: str) -> Target:
        return Target(self.label, "127.0.0.1", self.port, repository)
