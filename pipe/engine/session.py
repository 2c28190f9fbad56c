"""What one native push carries from its start to its report: the registry client, the tags, the
tuning, the progress lines, and the blobs uploaded so far (a later pass over the source, for a blob
the registry forgot, sends only what is still missing)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..client.api import RegistryClient
from ..oci import Descriptor
from ..progress import TransferProgress

MAX_BLOB_BYTES = 32 * 1024 ** 3  # the registry's limit for one layer ("32 GB")


@dataclass(frozen=True)
class EngineOptions:
    chunk_size: int = 16 * 1024 * 1024
    parallel: int = 3
    level: int = 1
    threads: int | None = None
    max_blob_bytes: int = MAX_BLOB_BYTES


@dataclass
class PushSession:
    client: RegistryClient
    tags: list[str]
    progress: TransferProgress
    options: EngineOptions = field(default_factory=EngineOptions)
    learn_from: list[tuple[str, str]] = field(default_factory=list)  # CACHE_FROM: (repository, tag) pairs
    on_tag: Callable[[str, str], None] = lambda tag, digest: None  # each tag as it is published
    uploaded: dict[str, Descriptor] = field(default_factory=dict)  # layer key -> blob sent by this push

    @property
    def references(self) -> list[tuple[str, str]]:
        """Where the registry may already hold this image's layers: the target tags, then CACHE_FROM."""
        return [(self.client.repository, tag) for tag in self.tags] + self.learn_from
