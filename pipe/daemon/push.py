"""The daemon's own push (PUSH_ENGINE=docker, and `auto` on the containerd image store), with the pipe's
checks around it.

Before it the pipe has logged in with its own client and checked push access, recorded what each tag
held and decided PROTECT_TAGS (engine_choice.py, engine/guard.py). Here: tag the local image under the first
target tag, push it through the daemon reading the whole stream (push_stream.py), untag it (also on
failure); then write every other tag by copying the manifest the registry now holds (0 bytes: one GET,
one PUT per tag), and read back what the tags point at (the index and its platforms, or the manifest
and its config's platform) for the log and the output file. The daemon's push is opaque, so this is the one place the
pipe retries a whole operation (retry.py, `DAEMON_RETRIES`).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from ..client.api import RegistryClient
from ..engine.publish import put
from ..engine.tags import ImmutableTagRefused, TagRefused, write_order
from ..errors import Kind, PipeFailure, RegistryError, RegistryFailure, attempts_suffix, push_failure_message
from ..oci import INDEX_TYPES, Descriptor, Index, Manifest, ManifestError, parse, platform_of
from ..progress import PushProgress, format_bytes
from ..references import Destination
from ..result import PushResult
from ..retry import DAEMON_RETRIES, RetriesExhausted, RetryPolicy, call_with_retries
from ..scrubbing import Secret
from ..sources.image import layers_text
from ..sources.index_children import select_children
from . import api as daemon
from .push_stream import PushOutcome

T = TypeVar("T")
log = logging.getLogger(__name__)

# A new tag refused to the daemon's push: on the containerd image store Docker puts each platform's manifest
# under the tag before the index (containerd's pusher; buildx had the same, moby/buildkit#2004), so the
# tag's first write makes it immutable and the next one is refused.
OWN_ORDER = ("The Docker daemon's push writes each platform's manifest under the tag before the index, so the new "
             "tag took one platform's manifest and, immutable from then on, refused the rest: push with "
             "PUSH_ENGINE: native (it writes them by digest, the index under the tags). ")
# On the containerd store Docker passes on only the status of a refused manifest PUT, not the registry's words.
MANIFEST_REFUSED = re.compile(r"PUT request to \S*/manifests/[^\s/:]+: 400\b")

# The daemon's words when an image of the containerd store lacks the content of some platform.
MISSING_CONTENT = ("missing content", "content digest")


@dataclass(frozen=True)
class Login:
    """Who the daemon pushes as (the pipe's own credentials), and how a refusal is worded."""

    username: str
    token: Secret = field(repr=False)

    def describe(self, destination: Destination, reference: str) -> Callable[[RegistryError], str]:
        return lambda error: push_failure_message(
            error, reference=reference, registry=destination.registry, workspace=destination.workspace,
            package=destination.name, username=self.username)


@dataclass
class DaemonPush:
    client: Any  # docker.DockerClient
    registry: RegistryClient  # the pipe's own, logged in: manifests are copied and read back with it
    image: str  # the local image, as IMAGE_NAME names it
    found: Any  # docker.models.images.Image: the local image as the daemon inspected it
    destination: Destination
    tags: list[str]
    login: Login
    explain_missing: Callable[[], None] = lambda: None  # raises the line naming the platforms without content
    policy: RetryPolicy = DAEMON_RETRIES
    sleep: Callable[[float], None] = time.sleep
    previous: dict[str, str | None] = field(default_factory=dict)  # what each tag held ({}: not known)
    known_digest: str | None = None  # the digest the tags get, when known before the push (containerd store)

    def run(self) -> PushResult:
        log.debug(f"Local image {self.image} is {self.found.id}")
        order = write_order(self.previous, self.known_digest) if self.previous else list(self.tags)
        if not order:  # every tag already holds the image: no daemon push, no PUT (an immutable tag takes none)
            assert self.known_digest is not None
            digest, outcome, written = self.known_digest, PushOutcome(), []
            log.info(f"Every tag already holds {digest}: nothing to push")
        else:
            first = order[0]
            temporary_tags = daemon.TemporaryTags(self.client, log.warning)
            try:
                temporary_tags.add(self.found, self.destination.repository, first)
                outcome = self._push(first)
            finally:
                temporary_tags.remove()
            assert outcome.digest is not None
            digest, written = outcome.digest, [first]
            self._on_tag(first, digest)
        held = self.registry.get_manifest(digest)
        if held is None:
            raise PipeFailure(f"The Docker daemon pushed {self.destination.reference(self.tags[0])} as {digest}, but "
                              f"{self.registry.registry} does not hold that manifest: run the step again")
        media_type, body = held
        # The same manifest under the other tags (no daemon push, no layer), moving ones first; none that holds it.
        others = [tag for tag in order[1:] if self.previous.get(tag) != digest]
        try:
            put(self.registry, others, Descriptor(digest, len(body), media_type), body, self._on_tag)
        except TagRefused as refused:
            raise ImmutableTagRefused(TagRefused(refused.tag, refused.said, digest, written + refused.written),
                                      self._held) from refused
        platforms, manifests, sizes = self._pushed(media_type, body)
        # What went up, as the registry holds it: the progress records only estimate it.
        pushed = sum(next((size for key, size in sizes.items() if key[7:].startswith(layer)), estimate)
                     for layer, estimate in outcome.pushed.items())
        is_index = media_type in INDEX_TYPES
        return PushResult(
            engine="docker", source="daemon", source_image=self.image, digest=digest, tags=tuple(self.tags),
            platforms=tuple(platforms), pushed_bytes=pushed,
            layers_uploaded=outcome.layers_uploaded, layers_skipped=outcome.layers_existing,
            manifests=tuple(manifests) if is_index else (), index_digest=digest if is_index else None,
            previous=tuple(self.previous.items()),
        )

    def _on_tag(self, tag: str, digest: str) -> None:
        log.info(f"Pushed {self.destination.reference(tag)} digest: {digest}")

    def _push(self, tag: str) -> PushOutcome:
        reference = self.destination.reference(tag)
        log.info(f"Pushing {reference} through the Docker daemon")
        progress = PushProgress(log.info, log.debug)
        try:
            outcome = self._with_retries(
                lambda: daemon.push(self.client, self.destination.repository, tag, self.login.username,
                                    self.login.token, progress),
                f"Push of {reference}",
                self.login.describe(self.destination, reference),
                tag,
            )
        except TagRefused as refused:
            own_order = self.known_digest is not None and self.previous.get(tag, "") is None
            raise ImmutableTagRefused(refused, self._held,
                                      OWN_ORDER if own_order else "") from refused
        except PipeFailure as exc:
            if any(words in str(exc).lower() for words in MISSING_CONTENT):
                self.explain_missing()
            raise
        if outcome.uploaded_nothing:
            detail = f"nothing new uploaded, {layers_text(outcome.layers_existing)} already in the registry"
        else:
            detail = (f"{layers_text(outcome.layers_uploaded)} uploaded ({format_bytes(outcome.uploaded_bytes)}), "
                      f"{outcome.layers_existing} already in the registry")
        log.info(f"The Docker daemon pushed {reference} ({detail})")
        return outcome

    def _pushed(self, media_type: str, body: bytes) -> tuple[list[str], list[tuple[str, str]], dict[str, int]]:
        """What the tags point at, as the registry holds it: the platforms, each image manifest of an index
        with its platform (attestations left out), and the size of every layer of every manifest, by its
        digest and (a single image's) by its diff ID, as the classic store names a pushed layer."""
        if media_type not in INDEX_TYPES:
            attrs = self.found.attrs or {}
            platform = platform_of({"os": attrs.get("Os"), "architecture": attrs.get("Architecture"),
                                    "variant": attrs.get("Variant")})
            layers = _layers((media_type, body))
            diff_ids = (attrs.get("RootFS") or {}).get("Layers") or []
            by_diff_id = ({str(d): layer.size for d, layer in zip(diff_ids, layers, strict=True)}
                          if len(diff_ids) == len(layers) else {})
            return ([platform] if platform else []), [], {**_sizes(layers), **by_diff_id}
        sizes: dict[str, int] = {}
        try:
            index = Index.parse(body, media_type)
        except ManifestError:
            index = Index.new(())  # an index of nothing: select_children says so
        children = select_children(index, (), self.image).children
        for child in children:
            sizes.update(_sizes(_layers(self.registry.get_manifest(child.descriptor.digest))))
        images = [c for c in children if not c.attests]
        return [c.platform for c in images], [(c.platform, c.descriptor.digest) for c in images], sizes

    def _with_retries(self, operation: Callable[[], T], what: str, describe: Callable[[RegistryError], str],
                      tag: str) -> T:
        policy = self.policy

        def on_retry(attempt: int, wait: float, exc: BaseException) -> None:
            log.warning(f"{what} failed ({exc}); retrying in {wait:.0f} s (attempt {attempt + 1} of "
                         f"{policy.attempts})")

        try:
            return call_with_retries(
                operation,
                policy,
                is_transient=lambda exc: getattr(exc, "transient", False),
                retry_after=lambda exc: getattr(exc, "retry_after", None),
                on_retry=on_retry,
                sleep=self.sleep,
                retry_on=(RegistryFailure,),
            )
        except RetriesExhausted as exc:
            assert isinstance(exc.last, RegistryFailure)
            if exc.last.error.kind is Kind.TAG_IMMUTABLE:  # the daemon's words: the tag it pushed is immutable
                raise TagRefused(tag, exc.last.error.detail, self.known_digest, []) from exc.last
            refused = self._refused_manifest(tag, exc.last.error.detail)
            if refused is not None:
                raise refused from exc.last
            raise PipeFailure(describe(exc.last.error) + attempts_suffix(exc.attempts)) from exc.last

    @property
    def _held(self) -> dict[str, str | None]:
        """What each target tag held before the push, in TAGS order (None everywhere when not known)."""
        return self.previous or dict.fromkeys(self.tags)

    def _refused_manifest(self, tag: str, said: str) -> TagRefused | None:
        """A manifest PUT refused with a bare 400 on the containerd store, read off what the tag holds now: a new
        tag that holds something took the push's first manifest and refused the next (only an immutable tag
        does that); a tag that still holds another digest refused to move."""
        if self.known_digest is None or not MANIFEST_REFUSED.search(said):
            return None
        try:
            now = self.registry.head_manifest(tag)
        except RegistryFailure:
            return None
        before = self.previous.get(tag, "")
        said = f"{said} (Docker passes on only the status)"
        if before is None and now is not None:
            return TagRefused(tag, said, self.known_digest, [], holds=now)
        if before and now == before != self.known_digest:
            return TagRefused(tag, said, self.known_digest, [])
        return None


def _layers(found: tuple[str, bytes] | None) -> tuple[Descriptor, ...]:
    """The layers of a manifest the registry holds ((media type, bytes)); none when it is not one."""
    try:
        manifest = parse(found[1], found[0]) if found else None
    except ManifestError:
        return ()
    return manifest.layers if isinstance(manifest, Manifest) else ()


def _sizes(layers: tuple[Descriptor, ...]) -> dict[str, int]:
    return {layer.digest: layer.size for layer in layers}
