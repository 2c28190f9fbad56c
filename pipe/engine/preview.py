"""DRY_RUN: what a push would do, from the plan alone (nothing read from the layers, nothing written):
each layer's fate, each config's, each tag's change, and whether PROTECT_TAGS would refuse."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..progress import format_bytes
from ..result import Report
from ..sources.image import SourceImage, layers_text
from .push import Survey
from .tags import TagChange

IN_REGISTRY = "already in the registry"
TO_UPLOAD = "to upload"


@dataclass(frozen=True)
class LayerFate:
    label: str
    fate: str  # IN_REGISTRY, TO_UPLOAD, or "to mount from <package>"
    size: int | None  # the blob's bytes when known (stored, or in the registry); None: known once compressed


@dataclass(frozen=True)
class Preview:
    source: str
    source_image: str
    layers: list[LayerFate] | None  # None: the daemon's push decides them (PUSH_ENGINE=docker)
    configs: list[tuple[str, str]]  # (config digest, its fate, as a layer's)
    digest: str | None  # what the tags would point at; None: known once the layers are compressed
    tags: list[TagChange]
    refusal: str | None = None  # PROTECT_TAGS' message when it would refuse
    platforms: list[str] = field(default_factory=list)

    def reported_by(self, report: Report) -> dict[str, Any]:
        return report.planned(self)

    def count(self, fate: str) -> int:
        return sum(1 for layer in self.layers or () if layer.fate.startswith(fate))

    def lines(self) -> list[str]:
        if self.layers is None:
            lines = ["Dry run: layers: the Docker daemon's push sends those the registry lacks, as it finds them"]
        else:
            lines = [f"Dry run: {layer.label}: {layer.fate}" +
                     (f" ({format_bytes(layer.size)})" if layer.size is not None else "") for layer in self.layers]
            lines += [f"Dry run: config {digest[:19]}: {fate}" for digest, fate in self.configs]
            lines.append(f"Dry run: layers: {layers_text(self.count(TO_UPLOAD))} {TO_UPLOAD}, "
                         f"{self.count('to mount')} to mount, {self.count(IN_REGISTRY)} {IN_REGISTRY}")
        target = self.digest or "a new manifest (its digest is known once its layers are compressed)"
        lines.append(f"Dry run: the tags would point at {target}")
        lines += [f"Dry run: tag {change.tag}: {change.state}" + (" (protected)" if change.protected else "") +
                  (" (not written)" if change.state == "unchanged" else "") for change in self.tags]
        moving = [change.tag for change in self.tags if change.previous is not None and change.state != "unchanged"]
        if moving:  # crg.apkg.io has no public API for the workspace's rules: the dry run cannot read them
            lines.append(f"Dry run: {', '.join(moving)} would move: if the workspace's immutable-tag settings "
                         f"protect {'it' if len(moving) == 1 else 'any of them'}, the registry refuses the move "
                         "(a dry run cannot read those settings)")
        return lines


def preview(image: SourceImage, survey: Survey) -> Preview:
    found = survey.plan
    layers: list[LayerFate] = []
    seen: set[str] = set()
    several = len(image.platforms) > 1
    for platform in image.platforms:
        count = len(platform.layers)
        for position, layer in enumerate(platform.layers):
            if layer.key in seen:
                continue
            seen.add(layer.key)
            label = (f"{platform.platform} " if several else "") + f"layer {position + 1} of {count} ({layer.key[:19]})"
            if layer.key in found.have:
                layers.append(LayerFate(label, IN_REGISTRY, found.have[layer.key].size))
            elif layer.key in found.to_mount:
                blob, lender = found.to_mount[layer.key]
                layers.append(LayerFate(label, f"to mount from {lender}", blob.size))
            else:
                layers.append(LayerFate(label, TO_UPLOAD, layer.stored.size if layer.stored else None))
    configs = [(config, IN_REGISTRY if size is not None else
                f"to mount from {found.config_mounts[config][1]}" if config in found.config_mounts else TO_UPLOAD)
               for config, size in found.configs.items()]
    return Preview(image.kind, image.shown, layers, configs, survey.digest, survey.changes, survey.refusal,
                   image.platform_names)
