"""The native push of any source, in one direction: survey, then a preview (DRY_RUN) or the push.

survey    what each target tag points at now (one HEAD each; tags.py) and what the registry holds
          already (plan.py): nothing is read from the source yet, nothing is written, and when every
          layer and config is there, nothing is read at all; PROTECT_TAGS decides here (guard.py);
preview   a dry run ends with the survey's preview (preview.py);
mount     the blobs another package of the workspace lends (a new plan: what was mounted);
transfer  one sweep over the source for what is missing (transfer.py);
publish   configs; the manifests composed, PROTECT_TAGS' last word on their digest (guard.py); then the
          manifests and the tags (publish.py).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import PipeFailure
from ..result import PushResult
from ..sources.image import SourceImage, layers_text
from .guard import Guard
from .plan import Plan, mount, plan
from .publish import composed_for, planned_digest, publish, upload_configs
from .session import PushSession
from .tags import ImmutableTagRefused, TagChange, TagRefused, previous_digests
from .transfer import transfer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Survey:
    """What the registry holds before anything is written, and what the push would do to each tag."""

    previous: dict[str, str | None]  # what each target tag points at, in TAGS order (None: new)
    plan: Plan
    digest: str | None  # what the tags would point at; None: known once a layer is compressed
    changes: list[TagChange]
    refusal: str | None  # PROTECT_TAGS' message (only a dry run gets this far with one)


def _keys(image: SourceImage) -> list[str]:
    return list(dict.fromkeys(layer.key for p in image.platforms for layer in p.layers))


def survey(session: PushSession, image: SourceImage, guard: Guard) -> Survey:
    """Reads only: what each tag holds, the plan, the digest the tags would get, PROTECT_TAGS' word."""
    image.check(session.options.max_blob_bytes)
    session.progress.total = image.size
    previous = previous_digests(session.client, session.tags)
    found = plan(session, image)
    would = planned_digest(image, found)
    unknown = [key for key in _keys(image) if key not in found.have and key not in found.to_mount]
    changes, refused = guard.allow(previous, would, image.platforms[0].identity.image_id,
                                   f"{layers_text(len(unknown))} not found in the registry "
                                   f"{'is' if len(unknown) == 1 else 'are'} compressed")
    return Survey(previous, found, would, changes, refused)


def push(session: PushSession, image: SourceImage, surveyed: Survey, guard: Guard) -> PushResult:
    """Mount, transfer what is still missing, publish: what the survey allowed."""
    found = mount(session.client, surveyed.plan, image)
    keys = _keys(image)
    missing = [key for key in keys if key not in found.have]
    skipped = len([key for key in keys if key in found.have and key not in found.mounted])
    configs, read = _configs(session, image, found, (len(keys), len(missing), skipped))
    done = {**found.have, **session.uploaded}
    if set(keys) - set(done):
        raise PipeFailure(f"{len(set(keys) - set(done))} layer(s) were neither found in the registry nor uploaded: "
                          "this is a bug")
    pushed = sum(blob.size for blob in session.uploaded.values()) + upload_configs(session.client, found, configs)
    previous, composed = surveyed.previous, composed_for(image, found, done, configs)
    guard.before_tags(previous, image.platforms[0].identity.image_id, composed.top[0].digest)
    try:
        digest = publish(session.client, composed, previous, session.on_tag)
    except TagRefused as refused:
        raise ImmutableTagRefused(refused, previous) from refused
    return PushResult(
        engine="native", source=image.kind, source_image=image.shown, digest=digest, tags=tuple(session.tags),
        platforms=tuple(image.platform_names), pushed_bytes=pushed, layers_uploaded=len(session.uploaded),
        layers_skipped=skipped, layers_mounted=len(found.mounted), layers_read=read,
        manifests=tuple(composed.published) if image.index is not None else (),
        index_digest=digest if image.index is not None else None,
        previous=tuple(previous.items()),
    )


def _configs(session: PushSession, image: SourceImage, found: Plan,
             counts: tuple[int, int, int]) -> tuple[dict[str, bytes], bool]:
    """Each config's bytes, and whether the source was read: one sweep over it for the missing layers (the
    daemon's export brings the config with them; a registry's configs are read on their own). `counts`:
    the layers, those missing, those already in the registry."""
    configs = {p.identity.image_id: p.config for p in image.platforms if p.config is not None}
    unread = [p for p in image.platforms if p.config is None and found.configs[p.identity.image_id] is None]
    if image.registry is not None:
        configs.update({p.identity.image_id: image.registry.config(p.identity.image_id) for p in unread})
        unread = []
    read = bool(counts[1] or unread)
    if read:
        session.progress.plan(*counts, len(found.mounted))
        swept = transfer(session, found.have, image.open)
        for platform in unread:
            if swept.config is None:
                raise PipeFailure(f"{platform.identity.reference} was read without its image config: this is a bug")
            configs[platform.identity.image_id] = swept.config
    elif found.existing:
        log.info("The registry already holds this image (config %s): no layer to read",
                 image.platforms[0].identity.image_id[:19])
    else:
        log.info("Every layer and the config are in the registry already: no layer to read")
    return configs, read
