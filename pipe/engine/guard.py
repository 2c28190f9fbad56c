"""PROTECT_TAGS and DRY_RUN, decided here for both engines (the rule itself: tags.py).

- A real push: push access is checked with an upload that is started and cancelled (none for a new tag
  of the same package: its manifest PUT says it all); a protected tag that would move refuses the push
  before any layer is read, and once more, with the digest the push really made, before the first tag.
- A dry run: push access is read off the registry's token, without starting an upload; a refusal ends
  it in its preview instead of failing it; the daemon's push on the classic image store chooses its own
  layers, so a dry run of it is planned by the native engine.
- The daemon's push writes its manifest itself: on the containerd store the image ID is the digest the
  tags get, so the rule applies exactly; on the classic store a protected tag is compared by image
  config.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ..client.api import RegistryClient
from ..errors import (
    PipeFailure,
    RegistryError,
    RegistryFailure,
    no_push_granted_message,
    protect_unknown_message,
    worded,
)
from ..references import Destination
from .tags import ProtectedTags, TagChange, changes, config_digest, is_protected, previous_digests, refusal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Guard:
    protect: tuple[str, ...] = ()  # PROTECT_TAGS patterns
    dry_run: bool = False  # DRY_RUN: log in, check access, plan, preview; write nothing

    def allow(self, previous: dict[str, str | None], digest: str | None, image_id: str,
              reason: str = "") -> tuple[list[TagChange], str | None]:
        """Before anything is written: each tag's change and PROTECT_TAGS' refusal (None: allowed). A push
        that would be refused stops here; a dry run's preview says it."""
        found = changes(previous, digest, self.protect)
        refused = refusal(found, image_id, reason)
        if refused and not self.dry_run:
            raise ProtectedTags(refused)
        return found, refused

    def before_tags(self, previous: dict[str, str | None], image_id: str, digest: str) -> None:
        """The last check, with the digest the push really made, before the first tag is put."""
        message = refusal(changes(previous, digest, self.protect), image_id)
        if message:
            raise ProtectedTags(message.replace("Nothing was pushed", "No tag was pushed"))

    def plans_natively(self, engine: str, containerd_store: bool) -> bool:
        """Whether a dry run of the daemon's push (PUSH_ENGINE=docker) is planned by the native engine."""
        if self.dry_run and engine == "docker" and not containerd_store:
            log.info("DRY_RUN plans with the native engine: the daemon's push (PUSH_ENGINE=docker) chooses its "
                     "own layers, so the layers it would upload may differ")
            return True
        return False

    def check_access(self, registry: RegistryClient, destination: Destination, username: str, new_tag_only: bool,
                     describe: Callable[[RegistryError], str], fallback: bool = True) -> None:
        """Push access, before anything is read (`new_tag_only`: a promotion, which reads nothing)."""
        if self.dry_run:
            self._check_unwritten(registry, destination, username)
        elif not new_tag_only:
            worded(registry.check_push_access, describe, fallback)

    @staticmethod
    def _check_unwritten(registry: RegistryClient, destination: Destination, username: str) -> None:
        """A dry run starts no upload: push access is read off the registry's token when it says."""
        granted = registry.granted_push()
        if granted is None:
            log.info(f"Dry run: push access is not checked: {destination.registry} tells it only when an upload "
                     "starts, which a dry run does not do")
        elif not granted:
            raise PipeFailure(no_push_granted_message(registry=destination.registry, username=username,
                                                      workspace=destination.workspace, package=destination.name))
        else:
            log.info(f"Dry run: push access to {destination.workspace}/{destination.name} granted")

    def before_daemon_push(self, registry: RegistryClient, tags: tuple[str, ...], image_id: str, exact: bool,
                           registry_name: str) -> dict[str, str | None]:
        """What each tag points at before the daemon pushes (one HEAD each), and PROTECT_TAGS: `exact` when
        the image ID is the digest the tags will get (the containerd store); otherwise a protected tag is
        compared by image, refused when it holds another image config than the local image's ID. Without
        PROTECT_TAGS a registry that cannot be asked only costs the record."""
        try:
            previous = previous_digests(registry, tags)
            if exact:
                self.allow(previous, image_id, image_id)
            elif any(held is not None and is_protected(tag, self.protect) for tag, held in previous.items()):
                self._check_by_image(registry, previous, image_id)
            return previous
        except RegistryFailure as exc:
            if self.protect:
                raise PipeFailure(protect_unknown_message(registry_name, exc)) from exc
            log.warning(f"Could not ask {registry_name} what the tags pointed at before the push ({exc})")
            return {}

    def _check_by_image(self, client: RegistryClient, previous: dict[str, str | None], image_id: str) -> None:
        """PROTECT_TAGS for a push whose manifest is written by someone else (the daemon's push), so its
        digest is unknown beforehand: a protected tag is refused when it holds another image config."""
        found = [TagChange(tag, digest, None, True) for tag, digest in previous.items()
                 if digest is not None and is_protected(tag, self.protect)
                 and config_digest(client, digest) != image_id]
        message = refusal(found, image_id, "the daemon has pushed it")
        if message:
            raise ProtectedTags(message)
