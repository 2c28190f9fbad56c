"""SOURCE_IMAGE: an image already in a registry, copied to the destination without a daemon.

Its manifests (and index) are read once and go up byte for byte, so the digest at the destination is
the source's (unless PLATFORMS leaves platforms out: the index is then rebuilt). Its blobs are stored
blobs to the engine: the plan confirms each at the destination with a HEAD, mounts it when the source
is another package of the same registry, and the transfer streams the rest from the source
(registry_blobs.py). Nothing is read from the source that the destination holds already; for a new
tag of the same package, no blob is read at all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ..client.api import RegistryClient
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure, blob_too_large_message
from ..oci import (
    SCHEMA1_TYPES,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    ManifestError,
    NoConfig,
    NotAnObject,
    NotJSON,
    Schema1,
    digest_of,
    is_distributable,
    is_index,
    parse,
    platform_matches,
)
from ..references import SourceReference
from .image import Layer, LocalImage, PlatformImage, RegistryOrigin, SourceImage, layers_text
from .index_children import Child, select_children
from .registry_blobs import RegistryBlobs

log = logging.getLogger(__name__)

MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended limit for a manifest


@dataclass(frozen=True)
class SourceManifest:
    manifest: Manifest
    platform: str
    attests: str | None = None


class RegistrySource:
    """`client` reads the source repository (pull only); `lend_to_destination`: the source is another
    package of the destination's registry, whose blobs the destination can mount; `promotion`: it is
    the destination package itself, so no blob is read. `describe` words a failure of the source
    registry (never in the destination's terms)."""

    def __init__(self, client: RegistryClient, reference: SourceReference, platforms: tuple[str, ...], *,
                 lend_to_destination: bool, describe: Callable[[RegistryFailure], str],
                 promotion: bool = False) -> None:
        self.client = client
        self.reference = reference
        self.platforms = platforms
        self.lend = lend_to_destination
        self.promotion = promotion
        self.describe = describe
        self.configs: dict[str, bytes] = {}

    def image(self) -> SourceImage:
        try:
            self.client.connect()
            return self._image()
        except RegistryFailure as exc:
            raise PipeFailure(self.describe(exc)) from exc

    def _image(self) -> SourceImage:
        reference = self.reference
        top = self._read(reference.reference)
        notes = []
        index: Index | None = None
        if isinstance(top, Index):
            selection = select_children(top, self.platforms, reference.shown)
            manifests = [self._child(child) for child in selection.children]
            index = top
            if selection.changed:
                index = top.rebuilt([child.descriptor for child in selection.children], top.media_type)
                left = " ".join(selection.left_out) or "attestations of no image kept"
                notes.append(f"Left out by PLATFORMS: {left}; the index is rebuilt, so its digest "
                             f"({index.digest[:19]}) differs from the source's")
            kept = [m.platform for m in manifests if m.attests is None]
            what = f"an index of {len(kept)} platforms ({' '.join(kept)})"
        else:
            manifests = [self._source_manifest(top, "", None)]
            what = f"one image ({manifests[0].platform or 'platform not read'})"
        blobs = {layer.digest: layer for m in manifests for layer in m.manifest.layers}
        lenders = {}
        if self.lend:
            lenders = {digest: reference.repository for digest in blobs}
            lenders.update({m.manifest.config.digest: reference.repository for m in manifests})
        via = f" (via {self.client.registry})" if self.client.registry != reference.registry else ""
        notes.insert(0, f"Source: {reference}{via}, {what}, {layers_text(len(blobs))}")
        return SourceImage("registry", reference.shown, [self._platform(m) for m in manifests],
                           open=lambda: RegistryBlobs(self.client, labelled_blobs(manifests), self.describe),
                           index=index, size=sum(blob.size for blob in blobs.values()),
                           check=lambda limit: self._check(manifests, limit), notes=notes,
                           registry=RegistryOrigin(lenders, self._config))

    # -- reading -----------------------------------------------------------------------------
    def _manifest(self, reference: str) -> tuple[str, bytes]:
        found = self.client.get_manifest(reference)
        if found is None:
            raise PipeFailure(self.describe(missing(reference)))
        media_type, body = found
        if len(body) > MAX_MANIFEST:
            raise PipeFailure(f"The manifest {reference} of {self.reference} is {len(body)} bytes, more than a "
                              f"registry takes ({MAX_MANIFEST}): it cannot be copied")
        if reference.startswith("sha256:") and digest_of(body) != reference:
            raise PipeFailure(f"The source registry {self.client.registry} answered {reference} of "
                              f"{self.reference.repository} with a manifest hashing to {digest_of(body)}: it cannot "
                              "be trusted; try again, or copy from another registry")
        if media_type in SCHEMA1_TYPES:
            raise schema1(self.reference)
        return media_type, body

    def _read(self, reference: str, named_as: str = "") -> Manifest | Index:
        """The manifest or index under `reference`, parsed; `named_as`: the media type its index names it by."""
        media_type, body = self._manifest(reference)
        try:
            return parse(body, media_type or named_as)
        except Schema1 as exc:
            raise schema1(self.reference) from exc
        except NotJSON as exc:
            raise PipeFailure(f"The manifest {reference} of {self.reference} is not JSON: the source registry "
                              "holds something the pipe cannot copy") from exc
        except NotAnObject as exc:
            raise PipeFailure(f"The manifest {reference} of {self.reference} is not a manifest or an index") from exc
        except NoConfig as exc:
            raise PipeFailure(f"The manifest {digest_of(body)[:19]} of {self.reference} {exc}: it cannot be "
                              "copied") from exc
        except ManifestError as exc:
            what = "index" if is_index(media_type) else "manifest"
            raise PipeFailure(f"The {what} {digest_of(body)[:19]} of {self.reference} {exc}") from exc

    def _child(self, child: Child) -> SourceManifest:
        found = self._read(child.descriptor.digest, child.descriptor.media_type)
        if isinstance(found, Index):
            raise PipeFailure(f"The index of {self.reference} holds another index ({child.descriptor.digest}): "
                              "nested indexes are not supported; copy each image of it on its own")
        return self._source_manifest(found, child.platform, child.attests)

    def _source_manifest(self, manifest: Manifest, platform: str, attests: str | None) -> SourceManifest:
        for position, layer in enumerate(manifest.layers):
            if not is_distributable(layer.media_type):
                raise PipeFailure(f"Layer {position + 1} of {len(manifest.layers)} of {self.reference}"
                                  f"{' (' + platform + ')' if platform else ''} is a foreign, non-distributable "
                                  f"layer ({layer.media_type}, {layer.digest[:19]}, served from "
                                  f"{' '.join(layer.urls) or 'no URL'}): registries do not hold it, so the pipe "
                                  "cannot copy it; copy an image built on a base whose layers are all distributable")
        # A config is read for its platform only when PLATFORMS asks, or when it may travel anyway (another
        # registry): a mount or a promotion reads no blob.
        if not platform and (self.platforms or not (self.lend or self.promotion)):
            platform = self._config_platform(manifest.config.digest)
            if self.platforms:
                if not any(platform_matches(platform, want) for want in self.platforms):
                    raise PipeFailure(f"PLATFORMS asks for {' '.join(self.platforms)}, but {self.reference} is "
                                      f"built for {platform or 'an unnamed platform'}: set PLATFORMS to match, or "
                                      "leave it out")
        return SourceManifest(manifest, platform, attests)

    def _config_platform(self, digest: str) -> str:
        """The platform an image config names."""
        try:
            return str(ImageConfig.parse(self._config(digest)).platform)
        except NotJSON as exc:
            raise PipeFailure(f"The manifest {digest} of {self.reference} is not JSON: the source registry "
                              "holds something the pipe cannot copy") from exc
        except ManifestError as exc:
            raise PipeFailure(f"The manifest {digest} of {self.reference} is not a manifest or an index") from exc

    def _config(self, digest: str) -> bytes:
        """A config, read once and checked against its digest (the engine asks for it when the
        destination lacks it)."""
        if digest not in self.configs:
            data = self.client.get_blob(digest)
            if data is None:
                raise PipeFailure(f"The source registry {self.client.registry} has no config {digest} that "
                                  f"{self.reference} names: the source image is incomplete")
            if digest_of(data) != digest:
                raise PipeFailure(f"The config {digest} of {self.reference} hashes to {digest_of(data)}: the source "
                                  "registry answered wrongly; try again")
            self.configs[digest] = data
        return self.configs[digest]

    def _platform(self, source: SourceManifest) -> PlatformImage:
        manifest = source.manifest
        os_, _, rest = source.platform.partition("/")
        arch, _, variant = rest.partition("/")
        identity = LocalImage(f"{self.reference} ({manifest.digest[:19]})", manifest.config.digest, (),
                              os_, arch, variant, sum(layer.size for layer in manifest.layers))
        return PlatformImage(identity, tuple(Layer(layer.digest, layer) for layer in manifest.layers),
                             config=self.configs.get(manifest.config.digest), manifest=manifest,
                             attests=source.attests, config_size=manifest.config.size)

    def _check(self, manifests: list[SourceManifest], limit: int) -> None:
        for source in manifests:
            layers = source.manifest.layers
            for position, layer in enumerate(layers):
                if layer.size > limit:
                    label = f"layer {position + 1} of {len(layers)} of {self.reference}"
                    raise PipeFailure(blob_too_large_message(label, layer.size, limit, "in the source registry")
                                      + "; nothing was copied")


def labelled_blobs(manifests: list[SourceManifest]) -> list[tuple[Descriptor, str]]:
    """Each distinct layer blob, once, with the label it has in messages."""
    blobs: dict[str, tuple[Descriptor, str]] = {}
    for source in manifests:
        where = " of an attestation" if source.attests else (f" of {source.platform}" if len(manifests) > 1 else "")
        layers = source.manifest.layers
        for i, layer in enumerate(layers):
            blobs.setdefault(layer.digest, (layer, f"layer {i + 1} of {len(layers)}{where}"))
    return list(blobs.values())


def missing(reference: str) -> RegistryFailure:
    return RegistryFailure(RegistryError(Kind.NAME_UNKNOWN, f"manifest unknown: {reference}", False), status=404)


def schema1(reference: SourceReference) -> PipeFailure:
    return PipeFailure(f"{reference} is a Docker schema 1 image (a format registries stopped taking in 2019): the "
                       "pipe copies schema 2 and OCI images only; pull it and push it again with a current docker, "
                       "or rebuild it")
