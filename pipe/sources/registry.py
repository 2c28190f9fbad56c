"""SOURCE_IMAGE: an image already in a registry, copied to the destination without a daemon.

Its manifests (and index) are read once and go up byte for byte, so the digest at the destination is
the source's (unless PLATFORMS leaves platforms out: the index is then rebuilt). Its blobs are stored
blobs to the engine: the plan confirms each at the destination with a HEAD, mounts it when the source
is another package of the same registry, and the transfer streams the rest from the source
(registry_blobs.py). Nothing is read from the source that the destination holds already; for a new
tag of the same package, no blob is read at all.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Callable

from ..client.api import RegistryClient
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure, blob_too_large_message
from ..oci import (
    FOREIGN_LAYERS,
    INDEX_TYPES,
    OCI_MANIFEST,
    SCHEMA1_TYPES,
    Descriptor,
    digest_of,
    platform_matches,
    platform_of,
)
from ..references import SourceReference
from .image import Layer, LocalImage, PlatformImage, SourceImage, layers_text
from .index_children import Child, descriptor_of, rebuilt_index, select_children
from .registry_blobs import RegistryBlobs

log = logging.getLogger(__name__)

MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended limit for a manifest


@dataclass(frozen=True)
class SourceManifest:
    descriptor: Descriptor
    body: bytes
    platform: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
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
        top_type, top_body = self._manifest(reference.reference)
        top_doc = self._json(top_body, reference.reference)
        notes = []
        if top_type in INDEX_TYPES or "manifests" in top_doc:
            selection = select_children(top_doc, self.platforms, reference.shown, f"The index of {reference}")
            manifests = [self._child(child) for child in selection.children]
            top = Descriptor(digest_of(top_body), len(top_body), top_type)
            if selection.changed:
                top, top_body = rebuilt_index(top_doc, top_type, [m.descriptor for m in manifests])
                left = " ".join(selection.left_out) or "attestations of no image kept"
                notes.append(f"Left out by PLATFORMS: {left}; the index is rebuilt, so its digest ({top.digest[:19]}) "
                             "differs from the source's")
            index: tuple[Descriptor, bytes] | None = (top, top_body)
            kept = [m.platform for m in manifests if m.attests is None]
            what = f"an index of {len(kept)} platforms ({' '.join(kept)})"
        else:
            manifest = self._image_manifest(Descriptor(digest_of(top_body), len(top_body), top_type), top_body,
                                            top_doc, "", None)
            manifests, index = [manifest], None
            what = f"one image ({manifest.platform or 'platform not read'})"
        platforms = [self._platform(m) for m in manifests]
        blobs = {layer.digest: layer for m in manifests for layer in m.layers}
        lenders = {}
        if self.lend:
            lenders = {digest: reference.repository for digest in blobs}
            lenders.update({m.config.digest: reference.repository for m in manifests})
        via = f" (via {self.client.registry})" if self.client.registry != reference.registry else ""
        notes.insert(0, f"Source: {reference}{via}, {what}, {layers_text(len(blobs))}")
        return SourceImage("registry", reference.shown, platforms,
                           open=lambda: RegistryBlobs(self.client, manifests, self.describe),
                           index=index, size=sum(blob.size for blob in blobs.values()),
                           check=lambda limit: self._check(manifests, limit), notes=notes,
                           lenders=lenders, config_of=self._config)

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

    def _json(self, body: bytes, reference: str) -> dict[str, Any]:
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise PipeFailure(f"The manifest {reference} of {self.reference} is not JSON: the source registry "
                              "holds something the pipe cannot copy") from exc
        if not isinstance(doc, dict):
            raise PipeFailure(f"The manifest {reference} of {self.reference} is not a manifest or an index")
        if doc.get("schemaVersion") == 1:
            raise schema1(self.reference)
        return doc

    def _child(self, child: Child) -> SourceManifest:
        media_type, body = self._manifest(child.descriptor.digest)
        doc = self._json(body, child.descriptor.digest)
        if "manifests" in doc or media_type in INDEX_TYPES:
            raise PipeFailure(f"The index of {self.reference} holds another index ({child.descriptor.digest}): "
                              "nested indexes are not supported; copy each image of it on its own")
        descriptor = Descriptor(child.descriptor.digest, len(body), media_type or child.descriptor.media_type)
        return self._image_manifest(descriptor, body, doc, child.platform, child.attests)

    def _image_manifest(self, descriptor: Descriptor, body: bytes, doc: dict[str, Any], platform: str,
                        attests: str | None) -> SourceManifest:
        where = f"The manifest {descriptor.digest[:19]} of {self.reference}"
        if "config" not in doc:
            raise PipeFailure(f"{where} is not an image manifest (it names no config): it cannot be copied")
        config = descriptor_of(doc.get("config"), where)
        layers = tuple(descriptor_of(layer, where) for layer in doc.get("layers") or [])
        for position, layer in enumerate(layers):
            if layer.media_type in FOREIGN_LAYERS:
                raw = (doc.get("layers") or [])[position]
                urls = " ".join(raw.get("urls") or []) or "no URL"
                raise PipeFailure(f"Layer {position + 1} of {len(layers)} of {self.reference}"
                                  f"{' (' + platform + ')' if platform else ''} is a foreign, non-distributable "
                                  f"layer ({layer.media_type}, {layer.digest[:19]}, served from {urls}): registries "
                                  "do not hold it, so the pipe cannot copy it; copy an image built on a base whose "
                                  "layers are all distributable")
        # A config is read for its platform only when PLATFORMS asks, or when it may travel anyway (another
        # registry): a mount or a promotion reads no blob.
        if not platform and (self.platforms or not (self.lend or self.promotion)):
            platform = platform_of(self._json(self._config(config.digest), config.digest))
            if self.platforms:
                if not any(platform_matches(platform, want) for want in self.platforms):
                    raise PipeFailure(f"PLATFORMS asks for {' '.join(self.platforms)}, but {self.reference} is "
                                      f"built for {platform or 'an unnamed platform'}: set PLATFORMS to match, or "
                                      "leave it out")
        if not descriptor.media_type:
            descriptor = Descriptor(descriptor.digest, descriptor.size, str(doc.get("mediaType") or OCI_MANIFEST))
        return SourceManifest(descriptor, body, platform, config, layers, attests)

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

    def _platform(self, manifest: SourceManifest) -> PlatformImage:
        os_, _, rest = manifest.platform.partition("/")
        arch, _, variant = rest.partition("/")
        identity = LocalImage(f"{self.reference} ({manifest.descriptor.digest[:19]})", manifest.config.digest, (),
                              os_, arch, variant, sum(layer.size for layer in manifest.layers))
        return PlatformImage(identity, tuple(Layer(layer.digest, layer) for layer in manifest.layers),
                             config=self.configs.get(manifest.config.digest),
                             manifest=(manifest.descriptor, manifest.body), attests=manifest.attests,
                             config_size=manifest.config.size)

    def _check(self, manifests: list[SourceManifest], limit: int) -> None:
        for manifest in manifests:
            for position, layer in enumerate(manifest.layers):
                if layer.size > limit:
                    label = f"layer {position + 1} of {len(manifest.layers)} of {self.reference}"
                    raise PipeFailure(blob_too_large_message(label, layer.size, limit, "in the source registry")
                                      + "; nothing was copied")


def missing(reference: str) -> RegistryFailure:
    return RegistryFailure(RegistryError(Kind.NAME_UNKNOWN, f"manifest unknown: {reference}", False), status=404)


def schema1(reference: SourceReference) -> PipeFailure:
    return PipeFailure(f"{reference} is a Docker schema 1 image (a format registries stopped taking in 2019): the "
                       "pipe copies schema 2 and OCI images only; pull it and push it again with a current docker, "
                       "or rebuild it")
