"""IMAGE_ARCHIVE: a docker-archive (plain or gzip), an OCI layout directory or an OCI archive, read in
place after the login (a wrong token fails before the archive is read); no daemon.

The kind is told by content (archive_images.py); a docker-archive's layers are uncompressed and
compressed by the engine, an OCI layout's blobs go up as they are stored.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import PipeFailure, blob_too_large_message, capital
from ..oci import Index
from ..references import ImageName
from .archive_files import ArchiveFiles, open_files
from .archive_images import Archive, DockerArchiveImage, LayoutImage, read_archive
from .archive_layers import DockerArchiveLayers, LayoutLayers
from .image import Layer, PlatformImage, SourceImage, layers_text


class ArchiveSource:
    def __init__(self, path: str, shown: str, image_name: ImageName, platforms: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.shown = shown
        self.image_name = image_name
        self.platforms = platforms

    def image(self) -> SourceImage:
        files = open_files(self.path, self.shown)
        name = self.image_name
        archive = read_archive(files, self.shown, name.name, name.tag, str(name), self.platforms)
        if archive.docker is not None:
            return self._docker(archive, archive.docker)
        assert archive.layout is not None
        return self._layout(archive, archive.layout)

    def _docker(self, archive: Archive, docker: DockerArchiveImage) -> SourceImage:
        image = docker.image
        names = ", ".join(docker.names) or "no name"
        note = (f"Archive: {archive.kind} ({archive.files.container}), image {names}, {image.platform}, "
                f"{layers_text(len(image.diff_ids))}")
        platform = PlatformImage(image, tuple(Layer(diff_id) for diff_id in image.diff_ids), config=docker.config)
        return SourceImage(archive.kind, self.shown, [platform],
                           open=lambda: DockerArchiveLayers(archive.files, docker), size=image.size, notes=[note])

    def _layout(self, archive: Archive, layout: LayoutImage) -> SourceImage:
        what = f"index of {len(layout.platforms)} platforms" if layout.is_index else "one image"
        names = ", ".join(layout.names) or "no name"
        notes = [f"Archive: {archive.kind} ({archive.files.container}), {what} ({names}): "
                 f"{' '.join(layout.platforms) or 'platform not stated'}"]
        warnings = []
        if archive.files.size("oci-layout") is None:
            warnings.append(f"{capital(archive.files.description)} has no oci-layout file, which the OCI image layout "
                            "spec requires: pushing it as a layout anyway; write it with a current tool")
        return layout_source(archive.kind, self.shown, archive.files, layout, notes, warnings)


def layout_source(kind: str, shown: str, files: ArchiveFiles, layout: LayoutImage, notes: list[str],
                  warnings: list[str]) -> SourceImage:
    """An OCI layout's image for the engine (an archive's, or the containerd store's export): its blobs
    go up as they are stored, so every digest stays the layout's."""
    if layout.left_out:
        notes = [*notes, f"Left out by PLATFORMS: {' '.join(layout.left_out)}"]
    if layout.unattested:
        notes = [*notes, f"Left out: the attestation manifests of {' '.join(layout.unattested)}, which "
                         f"{files.description} does not hold (`docker pull` does not fetch them); the index is "
                         "rebuilt without them, so its digest differs"]
    platforms = [PlatformImage(m.raw_image, tuple(Layer(layer.blob.digest, None if layer.raw else layer.blob)
                                                  for layer in m.layers),
                               config=m.config_bytes, manifest=m.manifest, attests=m.attests)
                 for m in layout.manifests]
    return SourceImage(kind, shown, platforms, open=lambda: LayoutLayers(files, layout),
                       index=layout.top if isinstance(layout.top, Index) else None,
                       size=sum(layer.blob.size for m in layout.manifests for layer in m.layers),
                       check=lambda limit: check_blobs(files, layout, limit), notes=notes, warnings=warnings)


def check_blobs(files: ArchiveFiles, layout: LayoutImage, limit: int) -> None:
    """Before anything is sent: every layer blob is there, whole, and within the registry's limit."""
    for manifest in layout.manifests:
        for i, layer in enumerate(manifest.layers):
            label = f"layer {i + 1} of {len(manifest.layers)} ({layer.blob.digest[:19]})"
            if layer.blob.size > limit:
                raise PipeFailure(blob_too_large_message(label, layer.blob.size, limit, "as stored")
                                  + "; nothing was uploaded")
            size = files.size(layer.path)
            if size is None:
                raise PipeFailure(f"{capital(files.description)} lacks {label} ({layer.path}) that its manifest "
                                  "names: the layout is incomplete; copy or save the image again")
            if size != layer.blob.size:
                raise PipeFailure(f"{capital(label)} in {files.description} holds {size} bytes, but its "
                                  f"manifest names {layer.blob.size}: the layout is damaged")
