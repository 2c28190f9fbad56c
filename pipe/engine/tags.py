"""The target tags as the registry holds them before a push: what each points at (one HEAD per tag),
how the push would change it (`new`, `unchanged`, `moves from <digest>`), and PROTECT_TAGS.

The rule of PROTECT_TAGS: a target tag matching a pattern that already points at a digest is refused
unless the push is known to give it that same digest. The plan (reads only: no layer is read, nothing
is written) knows the digest whenever the registry already holds every layer and config of the image,
or the source stores its manifest as it goes up (an OCI layout). When it does not, some layer of the
image is not in the registry, so the tag cannot hold this image's manifest: its blobs would be there,
and the plan would have found them through the tag's own manifest. Either way the answer comes before
any layer is read or sent, and then nothing at all is pushed. `publish` checks the final digest once
more before the first tag is put, for a blob the registry would not lend after all.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable

from ..client.api import RegistryClient
from ..errors import IMMUTABLE_FIX, PipeFailure
from ..oci import Manifest, ManifestError, parse


class ProtectedTags(PipeFailure):
    """PROTECT_TAGS refuses the push: the message names each tag, what it holds and what it would get."""


@dataclass(frozen=True)
class TagChange:
    tag: str
    previous: str | None  # what the tag points at before the push; None: a new tag
    digest: str | None  # what the push gives it; None: known only once a layer is compressed
    protected: bool

    @property
    def state(self) -> str:
        if self.previous is None:
            return "new"
        if self.previous == self.digest:
            return "unchanged"
        return f"moves from {self.previous}"

    @property
    def done(self) -> str:
        """The state once pushed, for the log: `new`, `unchanged` or `moved from <digest>`."""
        return self.state.replace("moves from", "moved from")

    @property
    def refused(self) -> bool:
        return self.protected and self.previous is not None and self.previous != self.digest


def write_order(previous: dict[str, str | None], digest: str | None) -> list[str]:
    """The tags to write, in order: those that would move first, then the new ones (a tag the registry
    could not be asked about counts as new), so that a registry refusing to move a tag (an immutable tag)
    refuses before any new tag is written. A tag already holding `digest` is not written at all: an
    immutable tag takes no PUT, and a re-run writes nothing. `digest` None: not known yet."""
    moving = [tag for tag, held in previous.items() if held is not None and held != digest]
    return moving + [tag for tag, held in previous.items() if held is None]


class TagRefused(Exception):
    """The registry refused to write a tag it holds as immutable: `digest` is what the tag would have got
    (None: not known), `written` the tags written before it."""

    def __init__(self, tag: str, said: str, digest: str | None, written: list[str], holds: str | None = None) -> None:
        super().__init__(said)
        self.tag, self.said, self.digest, self.written = tag, said, digest, written
        self.holds = holds  # what the tag holds now, when it is not what it held before the push


class ImmutableTagRefused(PipeFailure):
    """The one line for a tag the registry refused to move: what it holds, what it would have got, the
    registry's words, which tags were written and which not, and what to do. `previous` is what each target
    tag held before the push, in TAGS order."""

    def __init__(self, refused: TagRefused, previous: dict[str, str | None], note: str = "") -> None:
        digest, held = refused.digest, refused.holds or previous.get(refused.tag)
        self.tag, self.digest, self.written = refused.tag, digest, list(refused.written)
        self.not_written = [tag for tag in previous if tag not in refused.written
                            and (digest is None or previous[tag] != digest)]
        holds = f"it holds {held}" if held else "it exists already"
        would = f", this push would have given it {digest}" if digest else ""
        written = (f"Written: {', '.join(self.written)}; not written: {', '.join(self.not_written)}. "
                   if self.written else "No tag holds this image. " if refused.holds else "No tag was written. ")
        super().__init__(f"The registry refused to move tag {refused.tag}: {holds}{would}, and the workspace's "
                         f"immutable-tag settings protect it (registry said: {refused.said}). {written}{note}To "
                         f"publish this image, {IMMUTABLE_FIX}")


def previous_digests(client: RegistryClient, tags: Iterable[str]) -> dict[str, str | None]:
    return {tag: client.head_manifest(tag) for tag in tags}


def config_digest(client: RegistryClient, digest: str) -> str | None:
    """The config an image manifest names (None for an index or an unreadable answer)."""
    found = client.get_manifest(digest)
    try:
        stored = parse(found[1], found[0]) if found else None
    except ManifestError:
        return None
    return stored.config.digest if isinstance(stored, Manifest) else None


def is_protected(tag: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(tag, pattern) for pattern in patterns)


def changes(previous: dict[str, str | None], digest: str | None, patterns: Iterable[str]) -> list[TagChange]:
    patterns = tuple(patterns)
    return [TagChange(tag, held, digest, is_protected(tag, patterns)) for tag, held in previous.items()]


def refusal(found: list[TagChange], image_id: str, reason: str = "") -> str | None:
    """The one line that refuses the push, or None when PROTECT_TAGS allows it."""
    refused = [change for change in found if change.refused]
    if not refused:
        return None
    would = (refused[0].digest if refused[0].digest is not None else
             f"a new manifest of image {image_id} (its digest is known only once {reason})")
    held = ", ".join(f"{change.tag} holds {change.previous}" for change in refused)
    return (f"PROTECT_TAGS refuses the push: {held}, and this push would give "
            f"{'it' if len(refused) == 1 else 'them'} {would}. Nothing was pushed. A protected tag never moves: "
            "push a new tag, or leave this one out of PROTECT_TAGS if it is meant to move")
