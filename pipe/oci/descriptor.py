"""A descriptor and a platform, as go-containerregistry's `v1.Descriptor` and `v1.Platform`: typed, read
once from a manifest's or an index's JSON, each keeping the JSON object it was read from so that a
manifest rewritten around it keeps every other field, in its order."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping


class ManifestError(ValueError):
    """Bytes that are not the manifest or index they should be. The message says what is wrong and follows
    its subject: "<the manifest X> is not JSON"."""


class NotJSON(ManifestError):
    pass


class NotAnObject(ManifestError):
    """JSON, but not an object (a list, a string): neither a manifest nor an index."""


class Schema1(ManifestError):
    """A Docker schema 1 manifest, which registries stopped taking in 2019."""


class BadDescriptor(ManifestError):
    """A descriptor (a config, a layer, an index entry) without a digest and a size, or with a platform,
    annotations or URLs of the wrong shape."""


class NoConfig(ManifestError):
    """An image manifest must name its config."""


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Platform:
        """An index entry's `platform`, or the top of an image config (which names the same three)."""
        doc = doc or {}
        return cls(*(str(doc.get(name) or "") for name in ("os", "architecture", "variant")))

    def __str__(self) -> str:
        """`os/architecture[/variant]`; a part left unsaid is left out."""
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def platform_of(doc: Mapping[str, Any] | None) -> str:
    """`os/architecture[/variant]` of an index entry's platform or an image config."""
    return str(Platform.from_json(doc))


def platform_matches(platform: str, wanted: str) -> bool:
    """`linux/arm64` asks for any arm64 variant; `linux/arm64/v8` for that one only."""
    have, want = platform.split("/"), wanted.split("/")
    return have[:2] == want[:2] and (len(want) < 3 or have[2:3] == want[2:3])


@dataclass(frozen=True)
class Descriptor:
    """Content as a registry stores it: a blob or a manifest, by digest, size and media type (equal when
    those are). One read from JSON also has what the entry says beside them, and that JSON object."""

    digest: str
    size: int
    media_type: str = ""
    platform: Platform | None = field(default=None, compare=False)
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)
    urls: tuple[str, ...] = field(default=(), compare=False)
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)  # the JSON object, as read

    @classmethod
    def from_json(cls, doc: Any) -> Descriptor:
        if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str) or not isinstance(doc.get("size"), int):
            raise BadDescriptor(f"has a descriptor without a digest and size: {doc!r:.200}")
        platform, annotations, urls = doc.get("platform"), doc.get("annotations") or {}, doc.get("urls") or []
        if platform is not None and not isinstance(platform, dict):
            raise BadDescriptor(f"has a descriptor whose platform is not an object: {doc!r:.200}")
        if not isinstance(annotations, dict) or not isinstance(urls, list):
            raise BadDescriptor(f"has a descriptor whose annotations or URLs are malformed: {doc!r:.200}")
        return cls(doc["digest"], doc["size"], str(doc.get("mediaType") or ""),
                   Platform.from_json(platform) if platform is not None else None,
                   {str(k): str(v) for k, v in annotations.items()}, tuple(str(u) for u in urls), doc)

    def rewritten(self, digest: str, size: int, media_type: str | None = None) -> Descriptor:
        """This entry naming another blob (the engine's compressed layer, a rebuilt manifest): what it
        says beside digest, size and (when given) media type is kept, in its place."""
        changes: dict[str, Any] = {"mediaType": media_type} if media_type is not None else {}
        changes.update(digest=digest, size=size)
        raw = {**self.raw, **changes} if self.raw is not None else None
        return replace(self, digest=digest, size=size, media_type=self.media_type if media_type is None else media_type,
                       raw=raw)

    def to_json(self) -> Mapping[str, Any]:
        """The entry as read (or rewritten); one made here is `mediaType`, `digest`, `size`."""
        if self.raw is not None:
            return self.raw
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @property
    def platform_text(self) -> str:
        """`os/architecture[/variant]`, "" when the entry names no platform."""
        return str(self.platform) if self.platform is not None else ""
