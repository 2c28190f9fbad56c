"""The plan: what the registry already holds of the image, learned before any byte is read.

- A blob the source stores as it is (an OCI layout's) is confirmed with a HEAD, or mounted from a
  CACHE_FROM package whose tagged manifests reference it.
- An uncompressed layer's compressed digest is not known until it is compressed, so it is learned
  from the manifests (and their configs' diff IDs) under the target tags and CACHE_FROM, then
  confirmed with a HEAD or mounted.
- A registry source's blobs (and configs) in another package of the same registry are mounted from it.
- Each config is confirmed with a HEAD; a manifest the engine would write, already stored under a
  target tag for exactly this image with all its layers, is reused byte for byte.

The plan only reads (HEAD, GET): a mount is a write, so it is planned here and made by `mount` once
the push is allowed (PROTECT_TAGS) and real (not DRY_RUN); `mount` returns a new plan.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Iterable

from ..client.api import RegistryClient
from ..oci import GZIP_LAYERS, Descriptor, ImageConfig, Index, Manifest, ManifestError, Platform, parse
from ..sources.image import LocalImage, SourceImage
from .session import PushSession

log = logging.getLogger(__name__)

MAX_MANIFESTS_TO_LEND = 64  # an index and its children, read to find what another package can lend


@dataclass
class Plan:
    have: dict[str, Descriptor] = field(default_factory=dict)  # layer key -> blob in the target
    mounted: set[str] = field(default_factory=set)  # keys whose blob was mounted from another package
    to_mount: dict[str, tuple[Descriptor, str]] = field(default_factory=dict)  # key -> (blob, lending package)
    configs: dict[str, int | None] = field(default_factory=dict)  # config digest -> its size in the target
    config_mounts: dict[str, tuple[int | None, str]] = field(default_factory=dict)  # digest -> (size, lender)
    existing: dict[int, Manifest] = field(default_factory=dict)  # platform -> a manifest to reuse


@dataclass
class Learned:
    layers: dict[str, Descriptor] = field(default_factory=dict)  # diff ID -> blob in the target
    to_mount: dict[str, tuple[Descriptor, str]] = field(default_factory=dict)  # diff ID -> (blob, package)
    manifest: Manifest | None = None  # a manifest in the target of exactly this image


def plan(session: PushSession, image: SourceImage) -> Plan:
    client = session.client
    result = Plan()
    stored = {layer.key: layer.stored for p in image.platforms for layer in p.layers if layer.stored is not None}
    # Where a blob the destination lacks can be mounted from: the source's own package (a registry
    # source in the same registry), then CACHE_FROM's.
    own = image.registry.lenders if image.registry is not None else {}
    lenders = dict(own)
    if stored and session.learn_from:
        lenders = {**mountable(client, session.learn_from), **lenders}
    configs = [platform.identity.image_id for platform in image.platforms]
    sizes = client.has_blobs([*stored, *configs])  # every HEAD at once: nothing else can start before them
    for key, blob in stored.items():
        if sizes[key] is not None:
            result.have[key] = blob
        elif key in lenders:
            result.to_mount[key] = (blob, lenders[key])
    for position, platform in enumerate(image.platforms):
        raw = {layer.key for layer in platform.layers if layer.stored is None}
        if not raw or raw <= set(result.have) | set(result.to_mount):
            continue
        learned = learn(client, platform.identity, session.references, raw)
        result.have.update(learned.layers)
        result.to_mount.update({k: v for k, v in learned.to_mount.items() if k not in result.have})
        if platform.manifest is None and learned.manifest is not None:
            result.existing[position] = learned.manifest
    for platform in image.platforms:
        digest = platform.identity.image_id
        if digest not in result.configs:
            result.configs[digest] = sizes[digest]
            if result.configs[digest] is None and digest in own:
                result.config_mounts[digest] = (platform.config_size, own[digest])
    return result


def _platform_manifest(client: RegistryClient, repository: str, reference: str, image: LocalImage) -> Manifest | None:
    """The single-platform manifest under `reference` (the matching child of an index)."""
    found = client.get_manifest(reference, repository)
    if found is None:
        return None
    try:
        stored = parse(found[1], found[0])
    except ManifestError:
        return None
    if isinstance(stored, Manifest):
        return stored
    for child in stored.manifests:
        platform = child.platform or Platform("", "")
        if (platform.os, platform.architecture) == (image.os, image.architecture) and \
                (not image.variant or platform.variant in ("", image.variant)):
            return _platform_manifest(client, repository, child.digest, image)
    return None


def learn(client: RegistryClient, image: LocalImage, references: Iterable[tuple[str, str]],
          wanted: set[str]) -> Learned:
    """Read the manifests under `references` ((repository, tag) pairs): which of the `wanted` diff IDs
    the registry holds compressed, confirmed with a HEAD or to be mounted into the target."""
    learned = Learned()
    known: dict[str, tuple[Descriptor, str]] = {}
    for repository, reference in references:
        manifest = _platform_manifest(client, repository, reference, image)
        if manifest is None:
            log.debug("Nothing to learn from %s:%s", repository, reference)
            continue
        if manifest.config.digest == image.image_id and repository == client.repository and learned.manifest is None:
            learned.manifest = manifest
        diff_ids = config_diff_ids(client.get_blob(manifest.config.digest, repository))
        if len(diff_ids) != len(manifest.layers):
            continue
        for diff_id, layer in zip(diff_ids, manifest.layers, strict=True):
            if diff_id in wanted and layer.media_type in GZIP_LAYERS and diff_id not in known:
                known[diff_id] = (Descriptor(layer.digest, layer.size), repository)
        log.debug("Learned %d layer digests from %s:%s", len(known), repository, reference)
    for diff_id, (blob, repository) in known.items():
        if client.has_blob(blob.digest) is not None:
            learned.layers[diff_id] = blob
        elif repository != client.repository:
            learned.to_mount[diff_id] = (blob, repository)
    if learned.manifest is not None and not all(d in learned.layers or d in learned.to_mount
                                                for d in image.diff_ids):
        learned.manifest = None  # its layers are not all there any more: write a new one
    return learned


def config_diff_ids(config: bytes | None) -> list[str]:
    """An image config's layer diff IDs, in order; none when it is not there or not a config."""
    try:
        return list(ImageConfig.parse(config).diff_ids or ()) if config else []
    except ManifestError:
        return []


def mount(client: RegistryClient, found: Plan, image: SourceImage) -> Plan:
    """Make the planned mounts: the plan as it stands after them (what was mounted is in `have` and
    `mounted`); a blob the registry will not lend is left for the transfer."""
    have, mounted, configs = dict(found.have), set(found.mounted), dict(found.configs)
    for key, (blob, repository) in found.to_mount.items():
        if client.mount(blob.digest, repository):
            have[key] = blob
            mounted.add(key)
    for digest, (size, repository) in found.config_mounts.items():
        if client.mount(digest, repository):
            configs[digest] = size
    # A manifest to reuse names a layer that was not lent: the engine writes a new one.
    existing = {position: manifest for position, manifest in found.existing.items()
                if all(layer.key in have for layer in image.platforms[position].layers)}
    return replace(found, have=have, mounted=mounted, to_mount={}, configs=configs, config_mounts={},
                   existing=existing)


def mountable(client: RegistryClient, learn_from: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Blob digest -> another package of the workspace whose tagged manifests reference it."""
    found: dict[str, str] = {}
    for repository, reference in learn_from:
        if repository == client.repository:
            continue
        pending = [reference]
        for _ in range(MAX_MANIFESTS_TO_LEND):
            if not pending:
                break
            got = client.get_manifest(pending.pop(), repository)
            if got is None:
                continue
            try:
                stored = parse(got[1], got[0])
            except ManifestError:
                continue
            if isinstance(stored, Index):
                pending += [child.digest for child in stored.manifests]
                continue
            for descriptor in (stored.config, *stored.layers):
                found.setdefault(descriptor.digest, repository)
    return found
