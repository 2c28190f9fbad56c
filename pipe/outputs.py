"""The pipe's output file, for later commands and steps.

When BITBUCKET_PIPE_SHARED_STORAGE_DIR is set (Bitbucket sets it for every pipe), a successful run
writes `bbc-packages-push-container-image.json` into that directory (created if missing):

    {
      "registry": "crg.apkg.io",
      "workspace": "acme",
      "image": "my-container-app",                        # the package name
      "source_image": "my-container-app:latest",          # the local image that was pushed
      "digest": "sha256:...",                             # manifest digest, same for every tag
      "tags": ["latest", "1.2.0"],
      "references": ["crg.apkg.io/acme/my-container-app:latest", "crg.apkg.io/acme/my-container-app:1.2.0"],
      "reference_by_digest": "crg.apkg.io/acme/my-container-app@sha256:...",
      "pushed_bytes": 12345,                              # layer bytes uploaded by this run (0: nothing new)
      "duration_seconds": 3.2,
      "engine": "native",                                 # native, or docker (the daemon's push)
      "layers_uploaded": 1, "layers_mounted": 0, "layers_skipped": 7,
      "source": "daemon",                                 # or docker-archive, oci-layout, oci-archive (IMAGE_ARCHIVE)
      "platforms": ["linux/amd64"],                       # every platform pushed
      "index_digest": null,                               # the index under the tags, for a multi-platform image
      "manifests": [],                                    # under an index: [{"platform", "digest"}] per platform
      "previous_digests": {"latest": "sha256:...", "1.2.0": null},  # what each tag pointed at before (null: new)
      "tags_written": ["1.2.0"],                          # the tags this run wrote (moved or new)
      "tags_unchanged": ["latest"]                        # already held the digest: not written
    }

When the registry refuses to move a tag it holds as immutable, the run fails and the file says how far
it went: `registry`, `workspace`, `image`, `digest` (what the tags would have got, or null), `tags`,
`tags_written` (before the refusal), `tags_not_written`, `refused_tag` and `error` (the failure's line).

The file is written atomically (temporary file in the same directory, then rename), so a reader
never sees half of it. It never contains credentials.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from .engine.tags import ImmutableTagRefused
from .references import Destination
from .result import PushResult

OUTPUT_FILE_NAME = "bbc-packages-push-container-image.json"


def build_output(destination: Destination, result: PushResult, duration_seconds: float) -> dict[str, Any]:
    previous = dict(result.previous)
    return {
        "registry": destination.registry,
        "workspace": destination.workspace,
        "image": destination.name,
        "source_image": result.source_image,
        "digest": result.digest,
        "tags": list(result.tags),
        "references": [destination.reference(tag) for tag in result.tags],
        "reference_by_digest": destination.reference_by_digest(result.digest),
        "pushed_bytes": int(result.pushed_bytes),
        "duration_seconds": round(float(duration_seconds), 3),
        "engine": result.engine,
        "layers_uploaded": int(result.layers_uploaded),
        "layers_mounted": int(result.layers_mounted),
        "layers_skipped": int(result.layers_skipped),
        "source": result.source,
        "platforms": list(result.platforms),
        "index_digest": result.index_digest,
        "manifests": [{"platform": platform, "digest": digest} for platform, digest in result.manifests],
        "previous_digests": dict(result.previous),
        "tags_written": [tag for tag in result.tags if previous.get(tag, "") != result.digest],
        "tags_unchanged": [tag for tag in result.tags if previous.get(tag, "") == result.digest],
    }


def refusal_output(destination: Destination, refused: ImmutableTagRefused, tags: list[str]) -> dict[str, Any]:
    return {
        "registry": destination.registry,
        "workspace": destination.workspace,
        "image": destination.name,
        "digest": refused.digest,
        "tags": tags,
        "tags_written": refused.written,
        "tags_not_written": refused.not_written,
        "refused_tag": refused.tag,
        "error": str(refused),
    }


def write_output(directory: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write `data` as OUTPUT_FILE_NAME in `directory`, atomically; return the file's path."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / OUTPUT_FILE_NAME
    fd, temporary = tempfile.mkstemp(prefix=f".{OUTPUT_FILE_NAME}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it 0600; later steps may run as another user
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return target
