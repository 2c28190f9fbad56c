"""Reading the Docker daemon's push stream (`client.api.push(..., stream=True, decode=True)`).

The daemon answers a push with HTTP 200 and then streams JSON records; a failure is just one more
record, so the whole stream must be read to know the outcome. Records seen from dockerd:

    {"status": "The push refers to repository [crg.apkg.io/acme/app]"}
    {"status": "Preparing", "progressDetail": {}, "id": "2a3c2b96d45f"}
    {"status": "Pushing", "progressDetail": {"current": 33280, "total": 300000}, "progress": "[=> ]", "id": "2a3c2b96"}
    {"status": "Pushed", "progressDetail": {}, "id": "2a3c2b96d45f"}
    {"status": "Layer already exists", "progressDetail": {}, "id": "68b98be0b43d"}
    {"status": "Mounted from acme/other", "progressDetail": {}, "id": "68b98be0b43d"}
    {"status": "Retrying in 5 seconds", "progressDetail": {}, "id": "2a3c2b96d45f"}
    {"status": "v1: digest: sha256:b7c3... size: 735"}
    {"progressDetail": {}, "aux": {"Tag": "v1", "Digest": "sha256:b7c3...", "Size": 735}}
    {"errorDetail": {"message": "denied: ..."}, "error": "denied: ..."}

The classic image store reports the digest twice (the status line and the `aux` record); the containerd
image store (Docker 24+) only in the status line: either one is enough.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

PUSHING = "Pushing"
PUSHED = "Pushed"
ALREADY_EXISTS = "Layer already exists"
MOUNTED_FROM = "Mounted from "
RETRYING_IN = "Retrying in "

Record = Mapping[str, Any]
# "<tag>: digest: sha256:<hex> size: <bytes>", the line `docker push` prints last.
DIGEST_LINE = re.compile(r"^(?P<tag>[\w][\w.-]{0,127}): digest: (?P<digest>sha256:[0-9a-f]{64}) size: (?P<size>\d+)$")


@dataclass
class PushOutcome:
    """What one push stream said; `error` is the first error's text, verbatim."""

    tag: str | None = None
    digest: str | None = None
    manifest_size: int | None = None
    error: str | None = None
    # Each layer the daemon pushed (its short ID: the diff ID's on the classic store, the stored blob's on the
    # containerd store) -> the bytes its last progress record showed: only an estimate, as the daemon
    # throttles those records and counts uncompressed bytes on the classic store.
    pushed: dict[str, int] = field(default_factory=dict)
    layers_existing: int = 0

    @property
    def layers_uploaded(self) -> int:
        return len(self.pushed)

    @property
    def uploaded_bytes(self) -> int:
        return sum(self.pushed.values())

    @property
    def uploaded_nothing(self) -> bool:
        return self.layers_uploaded == 0


def error_text(record: Record) -> str | None:
    """The error of a record, if it is one (errorDetail.message preferred, `error` otherwise)."""
    detail = record.get("errorDetail")
    if isinstance(detail, Mapping) and detail.get("message"):
        return str(detail["message"])
    if record.get("error"):
        return str(record["error"])
    if detail:
        return str(detail)
    return None


def _progress_numbers(record: Record) -> tuple[int, int]:
    detail = record.get("progressDetail") or {}
    if not isinstance(detail, Mapping):
        return 0, 0
    return int(detail.get("current") or 0), int(detail.get("total") or 0)


def read_push_stream(records: Iterable[Record], on_record: Callable[[Record], None] | None = None) -> PushOutcome:
    """Consume every record (never stopping at the first error) and return the outcome."""
    outcome = PushOutcome()
    sent: dict[str, int] = {}  # layer id -> bytes sent so far in its current upload
    for record in records:
        if not isinstance(record, Mapping):
            continue
        if on_record is not None:
            on_record(record)
        error = error_text(record)
        if error is not None:
            if outcome.error is None:
                outcome.error = error
            continue
        aux = record.get("aux")
        if isinstance(aux, Mapping) and aux.get("Digest"):
            outcome.tag = aux.get("Tag")
            outcome.digest = str(aux["Digest"])
            outcome.manifest_size = aux.get("Size")
            continue
        status = str(record.get("status") or "")
        layer = record.get("id")
        if not layer:
            line = DIGEST_LINE.match(status)
            if line and outcome.digest is None:
                outcome.tag, outcome.digest = line["tag"], line["digest"]
                outcome.manifest_size = int(line["size"])
            continue
        if status == PUSHING:
            current, total = _progress_numbers(record)
            # `current` is what was sent so far (it may pass `total`: tar framing); a daemon retry restarts it.
            sent[layer] = current or total
        elif status == PUSHED:
            outcome.pushed[str(layer)] = sent.pop(layer, 0)
        elif status == ALREADY_EXISTS or status.startswith(MOUNTED_FROM):
            outcome.layers_existing += 1
    return outcome
