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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

PUSHING = "Pushing"
PUSHED = "Pushed"
ALREADY_EXISTS = "Layer already exists"
MOUNTED_FROM = "Mounted from "
RETRYING_IN = "Retrying in "

Record = Mapping[str, Any]


@dataclass
class PushOutcome:
    """What one push stream said; `error` is the first error's text, verbatim."""

    tag: str | None = None
    digest: str | None = None
    manifest_size: int | None = None
    error: str | None = None
    uploaded_bytes: int = 0
    layers_uploaded: int = 0
    layers_existing: int = 0

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
            continue
        if status == PUSHING:
            current, total = _progress_numbers(record)
            # `current` is what was sent so far (it may pass `total`: tar framing); a daemon retry restarts it.
            sent[layer] = current or total
        elif status == PUSHED:
            outcome.layers_uploaded += 1
            outcome.uploaded_bytes += sent.pop(layer, 0)
        elif status == ALREADY_EXISTS or status.startswith(MOUNTED_FROM):
            outcome.layers_existing += 1
    return outcome
