"""An image as the Docker daemon holds it: inspect for the layer diff IDs, the export stream for bytes.

Two image stores, two ways to read it. The classic store keeps layers uncompressed: the export hands
them out, the engine compresses them (below). The containerd image store keeps each layer compressed as
it was built and names the image by its manifest's digest (its index's, for a multi-platform image): the
export is then read as an OCI layout (export_files.py), its blobs pushed as they are, so the digest the
tags get is the image ID, as with `docker push`.

The classic store's export:

The export (`GET /images/{id}/get`, what `docker save` reads) is parsed as a tar *stream*
(tar_stream.py): nothing is spooled to disk or kept whole in memory. Both layouts the daemon writes are understood:
- docker <= 24: `<v1-id>/json` then `<v1-id>/layer.tar` per layer (in v1-ID order, see positions.py),
  `<image-id-hex>.json` (the config), `manifest.json` last; a repeated layer is a symlink;
- docker >= 25: an OCI layout, each uncompressed layer at `blobs/sha256/<diff-id-hex>`, the config at
  `blobs/sha256/<image-id-hex>`.
The daemon checks every layer's bytes against its diff ID as it writes them into the export (moby's
`roLayer.TarStream` wraps the layer in a reader that fails on a digest mismatch, and `save` fails with it),
so a layer whose position is certain is not hashed again here: that second sha256 was a sixth of the
pipe's CPU on a cold push. A layer whose position the stream has not settled yet is hashed, and its diff
ID says which layer it is. The config must hash to the image ID. A mismatch stops the push before any
manifest is put.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterator

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound

from ..daemon.api import StreamErrors, find_image
from ..errors import PipeFailure, daemon_lost_message, image_missing_message
from ..oci import digest_of, platform_matches
from . import tar_stream
from .archive import layout_source
from .archive_images import layout_image
from .export_files import ExportFiles
from .image import (
    Layer,
    LayerEntry,
    LocalImage,
    PlatformImage,
    SourceImage,
    check_diff_id,
    layers_text,
    position_label,
)
from .positions import ChainPositions

READ_SIZE = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 8 * 1024 * 1024


def inspect(client: docker.DockerClient, reference: str) -> LocalImage:
    attrs = find_image(client, reference).attrs
    rootfs = attrs.get("RootFS") or {}
    return LocalImage(
        reference=reference,
        image_id=attrs["Id"],
        diff_ids=tuple(rootfs.get("Layers") or ()),
        os=attrs.get("Os") or "linux",
        architecture=attrs.get("Architecture") or "amd64",
        variant=attrs.get("Variant") or "",
        size=int(attrs.get("Size") or 0),
    )


def _guarded(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The SDK's chunks; a daemon that goes away becomes the pipe's message."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except (DockerException, *StreamErrors) as exc:
            raise PipeFailure(daemon_lost_message(what, str(exc))) from exc
        yield chunk


@dataclass
class ExportStream:
    """Iterate `layers()`; afterwards `config` holds the config bytes and `seen` the diff IDs met."""

    image: LocalImage
    chunks: Iterator[bytes]
    config: bytes | None = None
    parallel_reads = False  # the daemon sends one stream
    seen: dict[str, str] = field(default_factory=dict)  # entry key -> diff ID
    bytes_read: int = 0

    def layers(self) -> Iterator[LayerEntry]:
        image = self.image
        chain = ChainPositions(list(image.diff_ids))
        by_diff_id: dict[str, frozenset[int]] = {}
        for position, diff_id in enumerate(image.diff_ids):
            by_diff_id[diff_id] = by_diff_id.get(diff_id, frozenset()) | {position}
        config_hex = image.image_id.split(":", 1)[1]
        seen_any = False
        try:
            for info, member in tar_stream.members(self.chunks):  # export_chunks: a lost daemon is worded there
                seen_any = True
                name = info.name.lstrip("./")
                parts = name.split("/")
                if not info.isreg():
                    continue
                if name in (f"{config_hex}.json", f"blobs/sha256/{config_hex}"):
                    self.config = self._read_config(member)
                elif len(parts) == 2 and parts[1] == "json":
                    self._learn_chain(chain, member, parts[0])
                elif len(parts) == 2 and parts[1] == "layer.tar":
                    entry = self._entry(member, info.size, parts[0], chain.candidates(parts[0]))
                    yield entry
                    self._finish(entry)
                    chain.learn(parts[0], entry.diff_id or "")
                elif len(parts) == 3 and parts[:2] == ["blobs", "sha256"] and f"sha256:{parts[2]}" in by_diff_id:
                    entry = self._entry(member, info.size, name, by_diff_id[f"sha256:{parts[2]}"])
                    yield entry
                    self._finish(entry)
        except tar_stream.TarStreamError as exc:
            if not seen_any:
                raise PipeFailure(f"The Docker daemon's export of {image.reference} is not a tar stream ({exc}): "
                                  "check the docker service of this step") from exc
            raise self._damaged(exc) from exc
        missing = set(image.diff_ids) - set(self.seen.values())
        if missing:
            raise PipeFailure(f"The Docker daemon's export of {image.reference} lacks {len(missing)} of its layers "
                              f"(e.g. {sorted(missing)[0]}): this export layout is not understood")
        if self.config is None:
            raise PipeFailure(f"The Docker daemon's export of {image.reference} has no image config "
                              f"{image.image_id}: this export layout is not understood")

    def _damaged(self, exc: BaseException) -> PipeFailure:
        return PipeFailure(f"The Docker daemon's export of {self.image.reference} ended early or is damaged ({exc}): "
                           "check the docker service of this step and run it again")

    def _read_config(self, member: tar_stream.Member) -> bytes:
        data = member.read_all(MAX_CONFIG_BYTES)
        digest = digest_of(data)
        if digest != self.image.image_id:
            raise PipeFailure(f"The image config exported by the daemon hashes to {digest}, not to the image ID "
                              f"{self.image.image_id}: the image changed or the export is damaged")
        return data

    @staticmethod
    def _learn_chain(chain: ChainPositions, member: tar_stream.Member, v1_id: str) -> None:
        try:
            doc = json.loads(member.read_all(MAX_CONFIG_BYTES))
        except ValueError:
            return
        if isinstance(doc, dict):
            chain.add(v1_id, doc.get("parent") or None, "config" in doc, doc)

    def _entry(self, member: tar_stream.Member, size: int, key: str, candidates: frozenset[int]) -> LayerEntry:
        diff_ids = self.image.diff_ids

        def read(n: int) -> memoryview:
            try:
                data = member.read(n)
            except tar_stream.TarStreamError as exc:
                raise self._damaged(exc) from exc
            self.bytes_read += len(data)
            return data

        return LayerEntry.certain(key, size, frozenset(diff_ids[p] for p in candidates),
                                  position_label(candidates, len(diff_ids), key), read, candidates)

    def _finish(self, entry: LayerEntry) -> None:
        """Drain what the engine left unread and check the diff ID."""
        while entry.read(READ_SIZE):
            pass
        check_diff_id(entry, self.image.diff_ids, f"the Docker daemon's export of {self.image.reference}")
        assert entry.diff_id is not None
        self.seen[entry.key] = entry.diff_id


def export_chunks(client: docker.DockerClient, image: LocalImage) -> Iterator[bytes]:
    """The export of `image` (by ID: a tag moved meanwhile cannot change what is read), as chunks."""
    try:
        chunks = client.api.get_image(image.image_id, chunk_size=READ_SIZE)
    except ImageNotFound as exc:
        raise PipeFailure(image_missing_message(image.reference)) from exc
    except (APIError, requests.RequestException) as exc:
        raise PipeFailure(daemon_lost_message(f"exporting {image.reference}", str(exc))) from exc
    return _guarded(iter(chunks), f"exporting {image.reference}")


def export(client: docker.DockerClient, image: LocalImage) -> ExportStream:
    return ExportStream(image, export_chunks(client, image))


class DaemonSource:
    """The image in the step's Docker daemon, found now (a missing image fails before the login) and
    read from its export only when something must be sent."""

    def __init__(self, client: docker.DockerClient, reference: str, containerd_store: bool = False,
                 platforms: tuple[str, ...] = ()) -> None:
        self.client = client
        self.containerd_store = containerd_store
        self.platforms = platforms
        self.identity = inspect(client, reference)
        if platforms and not containerd_store and not any(platform_matches(self.identity.platform, want)
                                                          for want in platforms):
            raise PipeFailure(f"PLATFORMS asks for {' '.join(platforms)}, but the image {reference} in the Docker "
                              f"daemon is built for {self.identity.platform}: set PLATFORMS to match, or leave it out")

    def image(self) -> SourceImage:
        identity = self.identity
        if self.containerd_store:
            return self._stored()
        platform = PlatformImage(identity, tuple(Layer(diff_id) for diff_id in identity.diff_ids), config=None)
        return SourceImage("daemon", identity.reference, [platform], open=lambda: export(self.client, identity),
                           size=identity.size, details=[f"Local image {identity.reference} is {identity.image_id} "
                                                        f"({layers_text(len(identity.diff_ids))})"])

    def _stored(self) -> SourceImage:
        """The containerd store's image: its export read as an OCI layout, every blob as it is stored."""
        identity = self.identity
        files = ExportFiles(lambda: export_chunks(self.client, identity),
                            f"the Docker daemon's export of {identity.reference}")
        layout = layout_image(files, identity.reference, "", "", identity.reference, self.platforms)
        if layout.named is None or layout.named.digest != identity.image_id:
            found = layout.named.digest if layout.named is not None else "no single image"
            raise PipeFailure(f"The Docker daemon's export of {identity.reference} holds {found}, not the image "
                              f"{identity.image_id}: the image changed during the push; run it again")
        what = f"an index of {len(layout.platforms)} platforms" if layout.is_index else "one image"
        notes = [f"Local image {identity.reference} is {identity.image_id}, {what}: {' '.join(layout.platforms)}"]
        return layout_source("daemon", identity.reference, files, layout, notes, [])
