"""The native push of an OCI layout's image: one platform's manifest or a whole index, blobs as stored.

check    every blob the manifests name is in the layout with its declared size, none over the limit;
plan     each stored blob is confirmed in the target with a HEAD (skip) or mounted from a CACHE_FROM
         package that references it; uncompressed layers learn their compressed digest like the
         daemon's (engine.learn);
transfer the layout's blobs in the order they stand, through the engine's uploaders: stored blobs as
         they are (hashed on the way, so a blob that does not match its digest is never finished),
         uncompressed ones compressed on every core;
publish  the configs, then each platform's manifest by digest, then the index (or the one manifest)
         under each tag. Manifests go up byte for byte unless a layer had to be compressed or
         PLATFORMS left platforms out: then they are rebuilt, and their digests change.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from . import engine
from .engine import Blob, EngineOptions, PushResult, blob_too_large, publish
from .errors import PipeFailure, capital
from .progress import TransferProgress
from .registry_client import RegistryClient
from .sources.archive_files import ArchiveFiles
from .sources.archive_images import INDEX_TYPES, LayoutImage, LayoutManifest, sha256
from .sources.archive_layers import LayoutLayers

log = logging.getLogger(__name__)

COMPRESSED_TYPE = {
    "application/vnd.oci.image.layer.v1.tar": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def check_blobs(files: ArchiveFiles, layout: LayoutImage, limit: int) -> None:
    """Before anything is sent: every layer blob is there, whole, and within the registry's limit."""
    for manifest in layout.manifests:
        for i, layer in enumerate(manifest.layers):
            label = f"layer {i + 1} of {len(manifest.layers)} ({layer.blob.digest[:19]})"
            if layer.blob.size > limit:
                raise PipeFailure(blob_too_large(label, layer.blob.size, limit, "as stored") + "; nothing was uploaded")
            size = files.size(layer.path)
            if size is None:
                raise PipeFailure(f"{capital(files.description)} lacks {label} ({layer.path}) that its manifest names: the "
                                  "layout is incomplete; copy or save the image again")
            if size != layer.blob.size:
                raise PipeFailure(f"{capital(label)} in {files.description} holds {size} bytes, but its "
                                  f"manifest names {layer.blob.size}: the layout is damaged")


def mountable(client: RegistryClient, learn_from: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Blob digest -> another package of the workspace whose tagged manifests reference it."""
    found: dict[str, str] = {}
    for repository, reference in learn_from:
        if repository == client.repository:
            continue
        pending = [reference]
        for _ in range(64):  # an index and its children, bounded
            if not pending:
                break
            got = client.get_manifest(pending.pop(), repository)
            if got is None:
                continue
            try:
                doc = json.loads(got[1])
            except ValueError:
                continue
            pending += [str(c.get("digest")) for c in doc.get("manifests") or [] if isinstance(c, dict)]
            for descriptor in [doc.get("config") or {}] + list(doc.get("layers") or []):
                if isinstance(descriptor, dict) and descriptor.get("digest"):
                    found.setdefault(str(descriptor["digest"]), repository)
    return found


def rebuilt_manifest(manifest: LayoutManifest, compressed: dict[str, Blob]) -> tuple[Blob, bytes]:
    """The manifest with its uncompressed layers replaced by their compressed blobs."""
    doc: dict[str, Any] = json.loads(manifest.body)
    for descriptor in doc.get("layers") or []:
        blob = compressed.get(descriptor.get("digest"))
        if blob is not None:
            descriptor.update(mediaType=COMPRESSED_TYPE[descriptor["mediaType"]], digest=blob.digest, size=blob.size)
    body = json.dumps(doc, indent=2).encode()
    return Blob(sha256(body), len(body), manifest.descriptor.media_type), body


def rebuilt_index(body: bytes, media_type: str, replaced: dict[str, Blob]) -> tuple[Blob, bytes]:
    doc: dict[str, Any] = json.loads(body)
    for child in doc.get("manifests") or []:
        blob = replaced.get(child.get("digest"))
        if blob is not None:
            child.update(digest=blob.digest, size=blob.size)
    new = json.dumps(doc, indent=2).encode()
    return Blob(sha256(new), len(new), media_type), new


def push(
    client: RegistryClient,
    files: ArchiveFiles,
    layout: LayoutImage,
    tags: list[str],
    learn_from: list[tuple[str, str]],
    options: EngineOptions,
    progress: TransferProgress,
    on_tag: Callable[[str, str], None],
    remembered: dict[str, Blob] | None = None,
) -> PushResult:
    remembered = {} if remembered is None else remembered
    check_blobs(files, layout, options.max_blob_bytes)

    # plan: what the target has, what another package can lend, what the uncompressed layers map to
    have: dict[str, Blob] = dict(remembered)
    stored = {layer.blob.digest: layer.blob for m in layout.manifests for layer in m.layers if not layer.raw}
    raw = {layer.blob.digest for m in layout.manifests for layer in m.layers if layer.raw}
    lenders = mountable(client, learn_from) if learn_from else {}
    mounted: set[str] = set()
    for digest, blob in stored.items():
        if digest in have:
            continue
        if client.has_blob(digest) is not None:
            have[digest] = blob
        elif digest in lenders and client.mount(digest, lenders[digest]):
            have[digest] = blob
            mounted.add(digest)
    references = [(client.repository, tag) for tag in tags] + learn_from
    for manifest in layout.manifests:
        if any(layer.raw and layer.blob.digest not in have for layer in manifest.layers):
            plan = engine.learn(client, manifest.raw_image, references, remembered)
            have.update({d: b for d, b in plan.layers.items() if d in raw})
            mounted |= plan.mounted & raw
    blobs = set(stored) | raw
    missing = blobs - set(have)
    skipped = len(blobs & set(have) - mounted)
    progress.plan(len(blobs), len(missing), skipped, len(mounted))

    transfer = engine.Transfer(client, options, progress, have)
    if missing:
        engine.transfer_all(transfer, lambda: LayoutLayers(files, layout), remembered)
    done = {**have, **transfer.uploaded}
    if missing - set(done):
        raise PipeFailure(f"{len(missing - set(done))} blob(s) were neither found in the registry nor uploaded: "
                          "this is a bug")
    pushed = sum(blob.size for blob in transfer.uploaded.values())

    # publish: configs, the platforms' manifests by digest, then what goes under the tags
    for manifest in {m.config.digest: m for m in layout.manifests}.values():
        if client.has_blob(manifest.config.digest) is None:
            client.finish_upload(client.start_upload(), manifest.config.digest, manifest.config_bytes,
                                 manifest.config.size)
            pushed += manifest.config.size
    compressed = {d: done[d] for d in raw}
    replaced: dict[str, Blob] = {}
    published: list[tuple[str, str]] = []
    top, top_body = layout.top, layout.top_body
    for manifest in layout.manifests:
        descriptor, body = manifest.descriptor, manifest.body
        if any(layer.raw for layer in manifest.layers):
            descriptor, body = rebuilt_manifest(manifest, compressed)
            replaced[manifest.descriptor.digest] = descriptor
        if manifest.attests is None:
            published.append((manifest.platform, descriptor.digest))
        if layout.is_index:
            publish(client, [descriptor.digest], descriptor.media_type, body, lambda reference, digest: None)
        else:
            top, top_body = descriptor, body
    if layout.is_index and replaced:
        top, top_body = rebuilt_index(layout.top_body, layout.top.media_type, replaced)
    if replaced:
        log.info("%d manifest(s) were rebuilt with compressed layers: their digests differ from the layout's",
                 len(replaced))
    digest = publish(client, tags, top.media_type, top_body, on_tag)
    if digest != top.digest:
        raise PipeFailure(f"The manifest pushed hashes to {digest}, not {top.digest}: this is a bug")
    uploaded = len(transfer.uploaded)
    return PushResult(digest, uploaded, len(mounted), skipped, pushed, exported=bool(missing),
                      manifests=tuple(published), index_digest=digest if top.media_type in INDEX_TYPES else None)
