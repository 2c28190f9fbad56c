"""Which manifests of a multi-platform index a push takes, for every source that stores one (an OCI
layout, a registry): PLATFORMS keeps some platforms, each attestation BuildKit put in the index travels
with the image it describes, and an index that lost entries is rebuilt around the ones kept.

Pure functions over the index's JSON: the caller reads the children.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import PipeFailure
from ..oci import ATTESTATION_SUBJECT, Descriptor, digest_of, platform_matches, platform_of


@dataclass(frozen=True)
class Child:
    descriptor: Descriptor
    platform: str  # os/architecture[/variant]; "unknown/unknown" for an attestation
    attests: str | None = None  # the digest of the manifest an attestation describes


@dataclass
class Selection:
    children: list[Child] = field(default_factory=list)  # images first, then their attestations
    left_out: list[str] = field(default_factory=list)  # platforms PLATFORMS did not ask for
    changed: bool = False  # something was left out: the index must be rebuilt


def descriptor_of(doc: Any, where: str) -> Descriptor:
    if not isinstance(doc, dict) or not isinstance(doc.get("digest"), str) or not isinstance(doc.get("size"), int):
        raise PipeFailure(f"{where} has a descriptor without a digest and size: {doc!r:.200}")
    return Descriptor(doc["digest"], doc["size"], str(doc.get("mediaType") or ""))


def select_children(index: dict[str, Any], platforms: tuple[str, ...], shown: str, where: str) -> Selection:
    """The children of `index` to push; refused when PLATFORMS keeps none of its images."""
    entries = [c for c in index.get("manifests") or [] if isinstance(c, dict)]
    selection = Selection()
    kept: set[str] = set()
    attestations: list[Child] = []
    for entry in entries:
        child = Child(descriptor_of(entry, where), platform_of(entry.get("platform")),
                      (entry.get("annotations") or {}).get(ATTESTATION_SUBJECT))
        if child.attests:
            attestations.append(child)
        elif platforms and not any(platform_matches(child.platform, want) for want in platforms):
            selection.left_out.append(child.platform or child.descriptor.digest)
        else:
            selection.children.append(child)
            kept.add(child.descriptor.digest)
    if not selection.children:
        available = ", ".join(platform_of(e.get("platform")) or str(e.get("digest", "?")) for e in entries
                              if not (e.get("annotations") or {}).get(ATTESTATION_SUBJECT))
        raise PipeFailure(f"PLATFORMS asks for {' '.join(platforms)}, but the image in {shown} is built for "
                          f"{available or 'no platform'}: set PLATFORMS to some of these, or leave it out to push "
                          "them all")
    following = [a for a in attestations if a.attests in kept]
    selection.children += following
    selection.changed = bool(selection.left_out) or len(following) < len(attestations)
    return selection


def rebuilt_index(index: dict[str, Any], media_type: str, kept: list[Descriptor]) -> tuple[Descriptor, bytes]:
    """An index of just `kept`, keeping the original's other fields and each child's own descriptor."""
    by_digest = {str(c.get("digest")): c for c in index.get("manifests") or [] if isinstance(c, dict)}
    new = dict(index)
    new["manifests"] = [by_digest.get(d.digest) or {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
                        for d in kept]
    new.setdefault("schemaVersion", 2)
    new["mediaType"] = media_type
    body = json.dumps(new, indent=2).encode()
    return Descriptor(digest_of(body), len(body), media_type), body
