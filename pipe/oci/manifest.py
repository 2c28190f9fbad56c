"""An image manifest and an index, as go-containerregistry's `v1.Manifest` and `v1.IndexManifest`: parsed
and checked once from their bytes, which they keep, so that one stored goes up byte for byte (its digest
stays the source's). One the pipe changes (a layer it compressed, platforms PLATFORMS left out) is
written here, and only here, keeping every field it does not change in its place.

Only this module reads the JSON of a manifest, an index or an image config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Self

from .descriptor import BadDescriptor, Descriptor, NoConfig, NotAnObject, NotJSON, Platform, Schema1
from .media import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    digest_of,
    is_image,
    is_index,
)


def _object(body: bytes, what: str = "a manifest or an index") -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise NotJSON(f"is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise NotAnObject(f"is not {what} (not a JSON object)")
    return doc


def _document(body: bytes) -> dict[str, Any]:
    doc = _object(body)
    if doc.get("schemaVersion") == 1:
        raise Schema1("is a Docker schema 1 manifest")
    return doc


def _descriptors(doc: Mapping[str, Any], key: str) -> tuple[Descriptor, ...]:
    entries = doc.get(key) or []
    if not isinstance(entries, list):
        raise BadDescriptor(f"has {key} that are not a list: {entries!r:.200}")
    return tuple(Descriptor.from_json(entry) for entry in entries)


def _stated(doc: Mapping[str, Any]) -> str:
    return str(doc.get("mediaType") or "")


def stated_media_type(body: bytes) -> str:
    """The `mediaType` a manifest or index says it is ("" when it says none, or is not one)."""
    try:
        return _stated(_object(body))
    except ValueError:
        return ""


class _Parsed:
    """What a manifest and an index share: each is parsed from its bytes (`_of` builds it), and is named by
    a descriptor of its own."""

    media_type: str
    digest: str
    body: bytes

    @classmethod
    def parse(cls, body: bytes, media_type: str = "") -> Self:
        return cls._of(_document(body), bytes(body), media_type)

    @classmethod
    def _of(cls, doc: dict[str, Any], body: bytes, media_type: str) -> Self:
        raise NotImplementedError

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.digest, len(self.body), self.media_type)


@dataclass(frozen=True)
class Manifest(_Parsed):
    """An image manifest: its config and its layers, in order. `media_type` is what the registry (or the
    descriptor naming it) said, else what it says itself, else OCI's."""

    media_type: str
    digest: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    body: bytes = field(repr=False)
    doc: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def _of(cls, doc: dict[str, Any], body: bytes, media_type: str) -> Manifest:
        if "config" not in doc:
            raise NoConfig("is not an image manifest (it names no config)")
        return cls(media_type or _stated(doc) or OCI_MANIFEST, digest_of(body), Descriptor.from_json(doc["config"]),
                   _descriptors(doc, "layers"), body, doc)

    def rebuilt(self, layers: Iterable[Descriptor]) -> Manifest:
        """This manifest naming other layer blobs, every other field kept."""
        doc = dict(self.doc)
        doc["layers"] = [layer.to_json() for layer in layers]
        return Manifest.parse(json.dumps(doc, indent=2).encode(), self.media_type)


@dataclass(frozen=True)
class Index(_Parsed):
    """An index of manifests (an OCI index, a Docker manifest list); `media_type` as for `Manifest`."""

    media_type: str
    digest: str
    manifests: tuple[Descriptor, ...]
    body: bytes = field(repr=False)
    doc: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def _of(cls, doc: dict[str, Any], body: bytes, media_type: str) -> Index:
        return cls(media_type or _stated(doc) or OCI_INDEX, digest_of(body), _descriptors(doc, "manifests"), body, doc)

    @classmethod
    def new(cls, manifests: Iterable[Descriptor], media_type: str = OCI_INDEX) -> Index:
        """An index of `manifests` alone (an OCI layout's index.json, which is no blob of its own)."""
        return _written({"schemaVersion": 2, "mediaType": media_type}, manifests, media_type)

    def rebuilt(self, manifests: Iterable[Descriptor], media_type: str | None = None) -> Index:
        """This index naming `manifests` (some of its own entries, or entries `rewritten` to name rebuilt
        manifests), its other fields kept. `media_type`: state it in the index (and a schemaVersion), as a
        source does that names the index by a descriptor of its own."""
        return _written(self.doc, manifests, media_type, self.media_type)


def _written(base: Mapping[str, Any], manifests: Iterable[Descriptor], media_type: str | None,
             known_type: str = "") -> Index:
    """The one place an index is written: `base`'s fields, `manifests` as given, two-space indented."""
    doc = dict(base)
    doc["manifests"] = [manifest.to_json() for manifest in manifests]
    if media_type is not None:
        doc.setdefault("schemaVersion", 2)
        doc["mediaType"] = media_type
    return Index.parse(json.dumps(doc, indent=2).encode(), media_type or known_type)


def parse(body: bytes, media_type: str = "") -> Manifest | Index:
    """A manifest or an index, told apart by `media_type` (what the registry or a descriptor says); with
    none, or one that is neither (`application/json`), by what the JSON holds."""
    doc = _document(body)
    if is_index(media_type) or (not is_image(media_type) and "manifests" in doc):
        return Index._of(doc, bytes(body), media_type)
    return Manifest._of(doc, bytes(body), media_type)


@dataclass(frozen=True)
class ImageConfig:
    """An image config (`v1.ConfigFile`), as far as the pipe reads it: its platform and its layers' diff IDs
    (None when it names no list of them)."""

    platform: Platform
    diff_ids: tuple[str, ...] | None

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        doc = _object(data, "an image config")
        rootfs = doc.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
        valid = isinstance(diff_ids, list) and all(isinstance(d, str) for d in diff_ids)
        return cls(Platform.from_json(doc), tuple(diff_ids) if valid else None)


def docker_manifest(config: Descriptor, layers: Iterable[Descriptor]) -> bytes:
    """A Docker v2 schema 2 manifest of gzip layers, laid out as `docker push` writes it (3-space indent),
    for an image whose source stores no manifest (a daemon's, a docker save's)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": config.size, "digest": config.digest},
        "layers": [{"mediaType": DOCKER_LAYER_GZIP, "size": blob.size, "digest": blob.digest} for blob in layers],
    }
    return json.dumps(doc, indent=3).encode()
