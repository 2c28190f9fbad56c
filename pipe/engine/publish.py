"""Publishing: the configs, each platform's manifest, then what goes under the tags.

A manifest the source stores goes up byte for byte, so its digest stays the source's; it is rebuilt
only when the engine compressed one of its layers (the layer's descriptor changes), and an index
only when one of its manifests was rebuilt. A manifest the engine writes (a daemon's or a docker
save's image) is a Docker v2 schema 2 manifest laid out as `docker push` writes it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..client.api import RegistryClient
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure
from ..oci import COMPRESSED_TYPE, DOCKER_MANIFEST, Descriptor, Index, Manifest, digest_of, docker_manifest
from ..sources.image import PlatformImage, SourceImage
from .plan import Plan
from .tags import TagRefused, write_order

log = logging.getLogger(__name__)


def rebuilt_manifest(stored: Manifest, compressed: dict[str, Descriptor]) -> Manifest:
    """A stored manifest with its uncompressed layers replaced by their compressed blobs."""
    return stored.rebuilt(layer.rewritten(blob.digest, blob.size, COMPRESSED_TYPE[layer.media_type])
                          if (blob := compressed.get(layer.digest)) is not None else layer for layer in stored.layers)


def rebuilt_index(stored: Index, replaced: dict[str, Descriptor]) -> Index:
    """A stored index pointing at the manifests that were rebuilt."""
    return stored.rebuilt(child.rewritten(blob.digest, blob.size) if (blob := replaced.get(child.digest)) is not None
                          else child for child in stored.manifests)


def put(client: RegistryClient, references: Iterable[str], descriptor: Descriptor, body: bytes,
        on_put: Callable[[str, str], None] = lambda reference, digest: None) -> None:
    """PUT a manifest under each reference; the registry must store it under the digest it has. A tag the
    registry holds as immutable stops the others (TagRefused says which were written)."""
    written: list[str] = []
    for reference in references:
        try:
            reported = client.put_manifest(reference, descriptor.media_type, body)
        except RegistryFailure as exc:
            if exc.error.kind is Kind.TAG_IMMUTABLE:
                raise TagRefused(reference, exc.error.detail, descriptor.digest, written) from exc
            raise
        written.append(reference)
        if reported and reported != descriptor.digest:
            raise RegistryFailure(RegistryError(Kind.OTHER, f"the registry stored the manifest as {reported}, "
                                                            f"not {descriptor.digest}", False))
        on_put(reference, descriptor.digest)


def upload_configs(client: RegistryClient, plan: Plan, configs: dict[str, bytes]) -> int:
    """The configs the registry lacks; the bytes sent."""
    sent = 0
    for digest, size in plan.configs.items():
        if size is None:
            client.upload_whole(configs[digest], digest)
            sent += len(configs[digest])
    return sent


def platform_manifest(platform: PlatformImage, position: int, plan: Plan, done: dict[str, Descriptor],
                      config_sizes: dict[str, int]) -> tuple[Descriptor, bytes, bool]:
    """The manifest that goes up for one platform, and whether it differs from the source's own."""
    if platform.manifest is None:
        existing = plan.existing.get(position)
        if existing is not None:
            return existing.descriptor, existing.body, False
        config = Descriptor(platform.identity.image_id, config_sizes[platform.identity.image_id])
        body = docker_manifest(config, [done[layer.key] for layer in platform.layers])
        return Descriptor(digest_of(body), len(body), DOCKER_MANIFEST), body, False
    if any(layer.stored is None for layer in platform.layers):
        compressed = {layer.key: done[layer.key] for layer in platform.layers if layer.stored is None}
        rebuilt = rebuilt_manifest(platform.manifest, compressed)
        return rebuilt.descriptor, rebuilt.body, True
    return platform.manifest.descriptor, platform.manifest.body, False


@dataclass
class Composed:
    """Every manifest a push puts: each platform's (by digest, under an index) and the top, under the tags."""

    top: tuple[Descriptor, bytes]
    children: list[tuple[Descriptor, bytes]] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)  # (platform, digest) of each image manifest
    rebuilt: int = 0


def compose(image: SourceImage, plan: Plan, done: dict[str, Descriptor], config_sizes: dict[str, int]) -> Composed:
    """The manifests, from the blobs alone: pure, so a dry run and PROTECT_TAGS know the digest the tags
    would get before any layer is read, whenever the registry already holds every layer."""
    replaced: dict[str, Descriptor] = {}
    children: list[tuple[Descriptor, bytes]] = []
    published: list[tuple[str, str]] = []
    top = (image.index.descriptor, image.index.body) if image.index is not None else None
    for position, platform in enumerate(image.platforms):
        descriptor, body, rebuilt = platform_manifest(platform, position, plan, done, config_sizes)
        if rebuilt and platform.manifest is not None:
            replaced[platform.manifest.digest] = descriptor
        if platform.attests is None:
            published.append((platform.platform, descriptor.digest))
        if image.index is not None:
            children.append((descriptor, body))
        else:
            top = (descriptor, body)
    assert top is not None
    if image.index is not None and replaced:
        index = rebuilt_index(image.index, replaced)
        top = (index.descriptor, index.body)
    return Composed(top, children, published, len(replaced))


def planned_digest(image: SourceImage, plan: Plan) -> str | None:
    """The digest the tags would get, when the plan alone tells it: every layer in the registry or to be
    mounted, every config's size known. None when a layer must be compressed first."""
    known = {**plan.have, **{key: blob for key, (blob, _) in plan.to_mount.items()}}
    if any(layer.key not in known for p in image.platforms for layer in p.layers
           if p.manifest is None or layer.stored is None):
        return None
    sizes = known_config_sizes(image, plan)
    if any(p.manifest is None and p.identity.image_id not in sizes for p in image.platforms):
        return None
    return compose(image, plan, known, sizes).top[0].digest


def known_config_sizes(image: SourceImage, plan: Plan, configs: dict[str, bytes] | None = None) -> dict[str, int]:
    """Each config's size, as the registry holds it or as the source (or its sweep) gave it."""
    sizes = {digest: size for digest, size in plan.configs.items() if size is not None}
    for platform in image.platforms:
        if platform.config is not None:
            sizes.setdefault(platform.identity.image_id, len(platform.config))
        elif platform.config_size is not None:
            sizes.setdefault(platform.identity.image_id, platform.config_size)
    for digest, body in (configs or {}).items():
        sizes.setdefault(digest, len(body))
    return sizes


def composed_for(image: SourceImage, plan: Plan, done: dict[str, Descriptor], configs: dict[str, bytes]) -> Composed:
    """The manifests a push puts, once every blob is in the registry: what the tags will get, before any
    manifest goes up (PROTECT_TAGS' last word is asked with it)."""
    composed = compose(image, plan, done, known_config_sizes(image, plan, configs))
    descriptor, body = composed.top
    if digest_of(body) != descriptor.digest:
        raise PipeFailure(f"The manifest pushed hashes to {digest_of(body)}, not {descriptor.digest}: this is a bug")
    return composed


def publish(client: RegistryClient, composed: Composed, previous: dict[str, str | None],
            on_tag: Callable[[str, str], None]) -> str:
    """Each platform's manifest (by digest, under an index), then the top under the target tags (`previous`:
    what each held) in `write_order`. Returns the top's digest."""
    descriptor, body = composed.top
    for child, child_body in composed.children:
        put(client, [child.digest], child, child_body)
    if composed.rebuilt:
        log.info("%d manifest(s) were rebuilt with compressed layers: their digests differ from the layout's",
                 composed.rebuilt)
    put(client, write_order(previous, descriptor.digest), descriptor, body, on_tag)
    return descriptor.digest
