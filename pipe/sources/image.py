"""What every source hands the engine, and the one protocol a source implements.

A `Source` (the daemon's export, an archive) finds its image and returns a `SourceImage`: one
`PlatformImage` per platform (its config, its layers in order, its manifest when the source stores
one) and the index over them, if any. The engine plans with that alone; then, only if something must
be sent, it calls `SourceImage.open()` for a `LayerPass`: one sweep over the layer blobs in the order
the source holds them, each a `LayerEntry` to read or skip. Sources know nothing of the destination.

A source that is itself in a registry (SOURCE_IMAGE) offers more: `SourceImage.registry`, a
`RegistryOrigin`, None for every other source.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Protocol

from ..errors import PipeFailure
from ..oci import Descriptor, Index, Manifest, hex_digest


@dataclass(frozen=True)
class LocalImage:
    """A single-platform image's identity, before any byte of a layer is read."""

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
class Layer:
    """One position of a platform image. `key` names its content for the engine: the diff ID of an
    uncompressed layer (the engine compresses it), or the digest of a blob pushed as it is stored."""

    key: str
    stored: Descriptor | None = None


@dataclass(frozen=True)
class PlatformImage:
    identity: LocalImage
    layers: tuple[Layer, ...]
    config: bytes | None  # None: the source's pass gives it (the daemon's export)
    manifest: Manifest | None = None  # as stored; None: the engine writes a Docker manifest
    attests: str | None = None  # the digest of the manifest this attestation describes
    config_size: int | None = None  # as the stored manifest names it, when `config` is not read yet

    @property
    def platform(self) -> str:
        return self.identity.platform


@dataclass(frozen=True)
class RegistryOrigin:
    """What only a source in a registry offers: `lenders`, its blobs (and configs) that a package of the
    destination's registry holds, which the destination can mount rather than be sent; `config`, a
    config read on its own (checked against its digest) rather than by a sweep over the layers."""

    lenders: Mapping[str, str]  # blob digest -> a package of the destination's registry
    config: Callable[[str], bytes]


@dataclass
class SourceImage:
    kind: str  # daemon, docker-archive, oci-layout or oci-archive: the output file's `source`
    shown: str  # the output file's `source_image`
    platforms: list[PlatformImage]
    open: Callable[[], LayerPass]  # a sweep over the layers; called again for a blob the registry forgot
    index: Index | None = None  # what goes under the tags of a multi-platform image
    size: int = 0  # bytes a full sweep reads, for the progress lines
    check: Callable[[int], None] = lambda limit: None  # before anything is sent: blobs present and under `limit`
    notes: list[str] = field(default_factory=list)  # what the source holds, for the log
    details: list[str] = field(default_factory=list)  # the same for the DEBUG log
    warnings: list[str] = field(default_factory=list)  # what the source holds that is pushed, but is not right
    registry: RegistryOrigin | None = None  # a source in a registry (SOURCE_IMAGE): what only it offers

    @property
    def platform_names(self) -> list[str]:
        # An unread platform (a registry source's config not fetched) is left out, not named "".
        return [p.platform for p in self.platforms if p.attests is None and p.platform not in ("", "unknown/unknown")]


class LayerPass(Protocol):
    """One sweep over the source's layers; `config` is the config's bytes once the sweep is done."""

    config: bytes | None
    parallel_reads: bool  # its blobs open independently (a registry's): the engine reads several at once

    def layers(self) -> Iterator[LayerEntry]: ...


class Source(Protocol):
    """Where an image comes from. `image()` is called after the login: reading may wait for it."""

    def image(self) -> SourceImage: ...


@dataclass
class LayerRead:
    """What a sweep learns of one entry as it reads it, the one part of an entry that changes: the sha256
    of its bytes, not computed once its identity is certain (`hashing` False), and the diff ID it holds,
    once checked."""

    hashing: bool = True
    hasher: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    diff_id: str | None = None


@dataclass(frozen=True)
class LayerEntry:
    """One layer (or stored blob) as a sweep meets it.

    `keys`: what it may stand for, as the engine counts what the registry has and what was uploaded:
    the diff IDs of the positions it may hold (an uncompressed layer, compressed by the engine), or
    its own digest (`stored`: a blob uploaded as it is, checked against that digest on the way).
    `media_type`, when the source declares one, is checked against the first bytes as they stream.
    Read it with `read` (hashed on the way), or `skip` it; `diff_id` is known once the source has checked it.
    """

    key: str
    size: int
    keys: frozenset[str]
    label: str
    source: Callable[[int], bytes]  # the source's bytes, as they come
    candidates: frozenset[int] = frozenset()
    stored: Descriptor | None = None
    media_type: str = ""  # what the source's manifest says it is; its content is checked against it
    state: LayerRead = field(default_factory=LayerRead, compare=False, repr=False)

    @classmethod
    def certain(cls, key: str, size: int, keys: frozenset[str], label: str, source: Callable[[int], bytes],
                candidates: frozenset[int]) -> LayerEntry:
        """An entry whose identity its source has checked already (the daemon's export): not hashed."""
        return cls(key, size, keys, label, source, candidates, state=LayerRead(hashing=len(keys) != 1))

    def read(self, n: int) -> bytes:
        data = self.source(n)
        if self.state.hashing:
            self.state.hasher.update(data)
        return data

    def skip(self) -> None:
        # A layer skipped whose identity is certain needs no check: its bytes are not used.
        if self.stored is not None or len(self.keys) == 1:
            self.state.hashing = False

    def checked(self, diff_id: str) -> None:
        """The source has checked what this entry holds: the layer with `diff_id`."""
        self.state.diff_id = diff_id

    @property
    def unhashed(self) -> bool:
        return not self.state.hashing

    @property
    def hasher(self) -> hashlib._Hash:
        return self.state.hasher

    @property
    def diff_id(self) -> str | None:
        return self.state.diff_id

    @property
    def result_key(self) -> str | None:
        """Under which key the engine records this entry's upload."""
        return self.stored.digest if self.stored is not None else self.diff_id


def layers_text(count: int) -> str:
    return f"{count} layer{'' if count == 1 else 's'}"


def position_label(candidates: frozenset[int], count: int, key: str) -> str:
    return (f"layer {min(candidates) + 1} of {count}" if len(candidates) == 1
            else f"a layer of {count} ({key[:12]})")


def check_diff_id(entry: LayerEntry, diff_ids: tuple[str, ...], what: str) -> None:
    """After an entry was read to its end: its content must be a layer of the image where it stands."""
    if entry.unhashed:
        entry.checked(diff_ids[min(entry.candidates)])
        return
    diff_id = hex_digest(entry.hasher)
    if not any(diff_ids[p] == diff_id for p in entry.candidates):
        raise PipeFailure(f"A layer in {what} hashes to {diff_id}, which is not a layer of the image where it "
                          "stands: the image changed during the push or is damaged")
    entry.checked(diff_id)
