"""The layers of an archive's image as the engine reads them: one entry per distinct blob, in the
order they stand in the archive (one forward sweep, or the only order a gzip stream has).

Whatever is read is hashed on the way. An uncompressed layer must hash to its diff ID (checked once
the engine is done with it, before any manifest is put); a stored blob to its digest (checked by the
engine before its upload is finished). A layer the engine skips is not read at all where the archive
can be read in place.
"""
from __future__ import annotations

from typing import Iterator

from ..errors import PipeFailure, capital
from ..oci import Descriptor, hex_digest
from .archive_files import READ_SIZE, ArchiveFiles
from .archive_images import DockerArchiveImage, LayoutImage
from .image import LayerEntry, check_diff_id, position_label


def _drain(entry: LayerEntry) -> None:
    while entry.read(READ_SIZE):
        pass


class DockerArchiveLayers:
    """A docker-archive image for the engine: `config` now, `layers()` as the archive holds them."""

    def __init__(self, files: ArchiveFiles, archive: DockerArchiveImage) -> None:
        self.files = files
        self.image = archive.image
        self.config: bytes | None = archive.config
        self.parallel_reads = False  # one forward sweep of the archive
        diff_ids = archive.image.diff_ids
        # One entry per distinct layer (docker save links a repeated layer to its first copy).
        self.paths: dict[str, frozenset[int]] = {}
        first: dict[str, str] = {}
        for position, (path, diff_id) in enumerate(zip(archive.layer_paths, diff_ids, strict=True)):
            path = first.setdefault(diff_id, path)
            self.paths[path] = self.paths.get(path, frozenset()) | {position}

    def layers(self) -> Iterator[LayerEntry]:
        diff_ids = self.image.diff_ids
        what = self.files.description
        for path, reader in self.files.stream(list(self.paths)):
            candidates = self.paths[path]
            size = self.files.size(path) or 0
            entry = LayerEntry(path, size, frozenset(diff_ids[p] for p in candidates),
                               position_label(candidates, len(diff_ids), path), reader.read, candidates)
            yield entry
            if not entry.unhashed:
                _drain(entry)
            check_diff_id(entry, diff_ids, what)


class LayoutLayers:
    """An OCI layout's layer blobs for the engine, each distinct blob once, across all its platforms."""

    config: bytes | None = None  # every config of a layout is known before the sweep
    parallel_reads = False  # one forward sweep (the only order a gzip tar has)

    def __init__(self, files: ArchiveFiles, layout: LayoutImage) -> None:
        self.files = files
        self.blobs: dict[str, tuple[Descriptor, str, str]] = {}  # path -> (blob, label, stored or raw)
        for manifest in layout.manifests:
            count = len(manifest.layers)
            where = f" of {manifest.platform}" if layout.is_index and manifest.platform else ""
            if manifest.attests is not None:
                where = " of an attestation"
            for i, layer in enumerate(manifest.layers):
                if layer.path not in self.blobs:
                    kind = "raw" if layer.raw else "stored"
                    self.blobs[layer.path] = (layer.blob, f"layer {i + 1} of {count}{where}", kind)

    def layers(self) -> Iterator[LayerEntry]:
        for path, reader in self.files.stream(list(self.blobs)):
            blob, label, kind = self.blobs[path]
            keys = frozenset({blob.digest})
            if kind == "stored":
                yield LayerEntry(path, blob.size, keys, label, reader.read, stored=blob, media_type=blob.media_type)
                continue
            # An uncompressed layer: its digest is its diff ID, the engine compresses it.
            entry = LayerEntry(path, blob.size, keys, label, reader.read, frozenset({0}), media_type=blob.media_type)
            yield entry
            if not entry.unhashed:
                _drain(entry)
                found = hex_digest(entry.hasher)
                if found != blob.digest:
                    raise PipeFailure(f"{capital(label)} ({path}) in {self.files.description} hashes to "
                                      f"{found}, not to its digest {blob.digest}: the layout is damaged")
            entry.checked(blob.digest)
