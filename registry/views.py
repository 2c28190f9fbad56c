"""What the management API and the pages show of images, tags and storage: figures shaped as JSON.

Pure shaping: the figures come from the storage layer (`Store`), the checks from `management`.
"""
from __future__ import annotations

import time

from .manifests import ParsedManifest
from .metadata import ManifestRecord, Package, PackageContents, PackageFigures, StorageFigures

PLATFORM_KEYS = ("os", "architecture", "variant")


def iso_time(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


def package_summary(package: Package, figures: PackageFigures, project: str | None) -> dict:
    """`size` counts each blob the package's manifests reference once, plus the manifests' bodies."""
    return {
        "name": package.name,
        "workspace": package.workspace,
        "repository": package.repository,
        "project": project,
        "reference": f"crg.apkg.io/{package.workspace}/{package.name}",
        "tags": figures.tags,
        "size": figures.size,
        "created_at": iso_time(package.created_at),
        "updated_at": iso_time(figures.updated_at),
    }


def package_details(package: Package, contents: PackageContents, project: str | None) -> dict:
    by_digest: dict[str, list[str]] = {}
    for tag in contents.tags:
        by_digest.setdefault(tag.digest, []).append(tag.name)
    return {
        **package_summary(package, contents.figures, project),
        "tags": [
            {"name": t.name, "digest": t.digest, "size": t.size, "updated_at": iso_time(t.updated_at)}
            for t in contents.tags
        ],
        "manifests": [
            {"digest": m.digest, "media_type": m.media_type, "size": m.size,
             "tags": by_digest.get(m.digest, []), "created_at": iso_time(m.created_at)}
            for m in contents.manifests
        ],
    }


def platform(config: dict | None) -> dict | None:
    """An image config's os, architecture and variant."""
    return {k: config[k] for k in PLATFORM_KEYS if k in config} if config is not None else None


def platform_name(found: dict) -> str:
    """`os/architecture[/variant]`."""
    return "/".join(str(found[k]) for k in PLATFORM_KEYS if found.get(k))


def config_summary(config: dict | None) -> dict | None:
    if config is None:
        return None
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    return {
        **(platform(config) or {}),
        "created": config.get("created"),
        "entrypoint": inner.get("Entrypoint"),
        "cmd": inner.get("Cmd"),
        "working_dir": inner.get("WorkingDir") or None,
        "user": inner.get("User") or None,
    }


def image_tag_details(tag: str, record: ManifestRecord, parsed: ParsedManifest, config: dict | None) -> dict:
    """A tag of an image manifest: its platform, config and layers (`config` None when unreadable)."""
    return {
        **_tag_basics(tag, record, parsed),
        "platform": platform(config),
        "config": config_summary(config),
        "layers": [{"digest": d.digest, "size": d.size, "media_type": d.media_type} for d in parsed.layers],
    }


def index_tag_details(tag: str, record: ManifestRecord, parsed: ParsedManifest) -> dict:
    """A tag of an index: the manifests it lists, with their platforms."""
    return {
        **_tag_basics(tag, record, parsed),
        "platforms": [
            {"digest": d.digest, "size": d.size, "media_type": d.media_type, "platform": d.platform}
            for d in parsed.manifests
        ],
    }


def _tag_basics(tag: str, record: ManifestRecord, parsed: ParsedManifest) -> dict:
    return {
        "name": tag,
        "digest": record.digest,
        "media_type": record.media_type,
        "size": len(record.body) + sum(d.size for d in parsed.blobs),
        "created_at": iso_time(record.created_at),
    }


def storage_report(workspace: str, figures: StorageFigures, grace_seconds: float) -> dict:
    """What the workspace stores, and what a collection would free (now, and once the grace period passes)."""
    return {
        "workspace": workspace,
        "stored_bytes": figures.blob_bytes + figures.manifest_bytes,
        "blob_bytes": figures.blob_bytes,
        "blobs": figures.blobs,
        "manifests": figures.manifests,
        "reclaimable_bytes": figures.reclaimable_bytes,
        "reclaimable_blobs": figures.reclaimable_blobs,
        "reclaimable_now_bytes": figures.reclaimable_now_bytes,
        "grace_seconds": grace_seconds,
    }
