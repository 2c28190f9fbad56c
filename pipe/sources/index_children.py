"""Which manifests of a multi-platform index a push takes, for every source that stores one (an OCI
layout, a registry): PLATFORMS keeps some platforms, and each attestation BuildKit put in the index
travels with the image it describes. An index that lost entries is rebuilt around the ones kept
(`Index.rebuilt`).

A pure function over the parsed index: the caller reads the children.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PipeFailure
from ..oci import ATTESTATION_SUBJECT, Descriptor, Index, platform_matches


@dataclass(frozen=True)
class Child:
    descriptor: Descriptor  # the index's entry, as it stands in the index
    platform: str  # os/architecture[/variant]; "unknown/unknown" for an attestation
    attests: str | None = None  # the digest of the manifest an attestation describes


@dataclass
class Selection:
    children: list[Child] = field(default_factory=list)  # images first, then their attestations
    left_out: list[str] = field(default_factory=list)  # platforms PLATFORMS did not ask for
    changed: bool = False  # something was left out: the index must be rebuilt


def select_children(index: Index, platforms: tuple[str, ...], shown: str) -> Selection:
    """The children of `index` to push; refused when PLATFORMS keeps none of its images."""
    selection = Selection()
    kept: set[str] = set()
    attestations: list[Child] = []
    for entry in index.manifests:
        child = Child(entry, entry.platform_text, entry.annotations.get(ATTESTATION_SUBJECT))
        if child.attests:
            attestations.append(child)
        elif platforms and not any(platform_matches(child.platform, want) for want in platforms):
            selection.left_out.append(child.platform or child.descriptor.digest)
        else:
            selection.children.append(child)
            kept.add(child.descriptor.digest)
    if not selection.children:
        available = ", ".join(e.platform_text or e.digest for e in index.manifests
                              if not e.annotations.get(ATTESTATION_SUBJECT))
        raise PipeFailure(f"PLATFORMS asks for {' '.join(platforms)}, but the image in {shown} is built for "
                          f"{available or 'no platform'}: set PLATFORMS to some of these, or leave it out to push "
                          "them all")
    following = [a for a in attestations if a.attests in kept]
    selection.children += following
    selection.changed = bool(selection.left_out) or len(following) < len(attestations)
    return selection
