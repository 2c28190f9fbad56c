"""What every source hands the engine: the image's identity (config digest, diff IDs, platform) and,
per layer, an entry to read or skip. Sources know nothing of registries."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable

from ..errors import PipeFailure


@dataclass(frozen=True)
class LocalImage:
    """A single-platform image as a source holds it, before any byte of a layer is read."""

    reference: str  # how the user named it, for messages
    image_id: str  # sha256:... of the config
    diff_ids: tuple[str, ...]
    os: str
    architecture: str
    variant: str
    size: int  # uncompressed layer bytes

    @property
    def platform(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Blob:
    """A blob as a registry stores it: what a manifest descriptor names."""

    digest: str
    size: int
    media_type: str = ""


@dataclass
class LayerEntry:
    """One layer (or stored blob) as a source meets it.

    `keys`: what it may stand for, as the engine counts what the registry has and what was uploaded:
    the diff IDs of the positions it may hold (an uncompressed layer, compressed by the engine), or
    its own digest (`stored`: a blob uploaded as it is, checked against that digest on the way).
    Read it with `read`, or `skip` it; `diff_id` is known once the source has checked it.
    """

    key: str
    size: int
    keys: frozenset[str]
    label: str
    read: Callable[[int], bytes]
    candidates: frozenset[int] = frozenset()
    stored: Blob | None = None
    diff_id: str | None = None
    unhashed: bool = False
    hasher: "hashlib._Hash" = field(default_factory=hashlib.sha256, repr=False)

    def skip(self) -> None:
        # A layer skipped whose identity is certain needs no check: its bytes are not used.
        self.unhashed = self.stored is not None or len(self.keys) == 1

    @property
    def result_key(self) -> str | None:
        """Under which key the engine records this entry's upload."""
        return self.stored.digest if self.stored is not None else self.diff_id


def position_label(candidates: frozenset[int], count: int, key: str) -> str:
    return (f"layer {min(candidates) + 1} of {count}" if len(candidates) == 1
            else f"a layer of {count} ({key[:12]})")


def check_diff_id(entry: LayerEntry, diff_ids: tuple[str, ...], what: str) -> None:
    """After an entry was read to its end: its content must be a layer of the image where it stands."""
    if entry.unhashed:
        entry.diff_id = diff_ids[min(entry.candidates)]
        return
    diff_id = "sha256:" + entry.hasher.hexdigest()
    if not any(diff_ids[p] == diff_id for p in entry.candidates):
        raise PipeFailure(f"A layer in {what} hashes to {diff_id}, which is not a layer of the image where it "
                          "stands: the image changed during the push or is damaged")
    entry.diff_id = diff_id
