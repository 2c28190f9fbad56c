"""The native push of any source, in one direction: tags, plan, transfer, publish, result.

tags      what each target tag points at now (one HEAD each; tags.py);
plan      what the registry holds already (plan.py); nothing is read from the source yet, nothing is
          written, and when every layer and config is there, nothing is read at all;
          PROTECT_TAGS decides here, and a dry run (DRY_RUN) ends here with its preview (preview.py);
mount     the blobs another package of the workspace lends;
transfer  one sweep over the source for what is missing (transfer.py);
publish   configs, manifests, then the tags (publish.py).
"""
from __future__ import annotations

import logging

from ..errors import PipeFailure
from ..result import PushResult
from ..sources.image import SourceImage, layers_text
from .plan import mount, plan
from .preview import Preview, preview
from .publish import planned_digest, publish, upload_configs
from .session import PushSession
from .tags import ImmutableTagRefused, ProtectedTags, TagRefused, changes, check_before_tags, previous_digests, refusal
from .transfer import transfer

log = logging.getLogger(__name__)


def push(session: PushSession, image: SourceImage) -> PushResult | Preview:
    image.check(session.options.max_blob_bytes)
    progress = session.progress
    progress.total = image.size
    previous = previous_digests(session.client, session.tags)
    found = plan(session, image)
    keys = list(dict.fromkeys(layer.key for p in image.platforms for layer in p.layers))
    would = planned_digest(image, found)
    tag_changes = changes(previous, would, session.protect)
    unknown = [key for key in keys if key not in found.have and key not in found.to_mount]
    image_id = image.platforms[0].identity.image_id
    refused = refusal(tag_changes, image_id, f"{layers_text(len(unknown))} not found in the registry "
                                              f"{'is' if len(unknown) == 1 else 'are'} compressed")
    if session.options.dry_run:
        return preview(image, found, would, tag_changes, refused)
    if refused:
        raise ProtectedTags(refused)

    mount(session.client, found, image)
    missing = [key for key in keys if key not in found.have]
    mounted = len(found.mounted)
    skipped = len([key for key in keys if key in found.have and key not in found.mounted])
    configs = {p.identity.image_id: p.config for p in image.platforms if p.config is not None}
    unread = [p for p in image.platforms if p.config is None and found.configs[p.identity.image_id] is None]
    if image.registry is not None:  # a registry's configs are read on their own, when needed
        configs.update({p.identity.image_id: image.registry.config(p.identity.image_id) for p in unread})
        unread = []

    read = bool(missing or unread)
    if read:
        progress.plan(len(keys), len(missing), skipped, mounted)
        swept = transfer(session, found.have, image.open)
        for platform in unread:  # the daemon's export: the config comes with the layers
            if swept.config is None:
                raise PipeFailure(f"{platform.identity.reference} was read without its image config: this is a bug")
            configs[platform.identity.image_id] = swept.config
    elif found.existing:
        log.info("The registry already holds this image (config %s): no layer to read", image_id[:19])
    else:
        log.info("Every layer and the config are in the registry already: no layer to read")

    done = {**found.have, **session.uploaded}
    if set(keys) - set(done):
        raise PipeFailure(f"{len(set(keys) - set(done))} layer(s) were neither found in the registry nor uploaded: "
                          "this is a bug")
    pushed = sum(blob.size for blob in session.uploaded.values()) + upload_configs(session.client, found, configs)
    try:
        digest, manifests = publish(session.client, image, found, done, configs, previous, session.on_tag,
                                    check_before_tags(previous, session.protect, image_id))
    except TagRefused as refused:
        raise ImmutableTagRefused(refused, previous) from refused
    return PushResult(
        engine="native", source=image.kind, source_image=image.shown, digest=digest, tags=tuple(session.tags),
        platforms=tuple(image.platform_names), pushed_bytes=pushed, layers_uploaded=len(session.uploaded),
        layers_skipped=skipped, layers_mounted=mounted, layers_read=read,
        manifests=tuple(manifests) if image.index is not None else (),
        index_digest=digest if image.index is not None else None,
        previous=tuple(previous.items()),
    )
