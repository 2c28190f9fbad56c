"""What a blob's bytes are checked against as they stream to the registry: the media type its manifest
declares (`LabelCheck`) and, for a blob sent as stored, the digest and size its manifest names
(`check_stored`). Both fail the push before the upload is finished (nothing is tagged)."""
from __future__ import annotations

from ..errors import PipeFailure, capital
from ..oci import LABEL_BYTES, content_problem, hex_digest
from ..sources.image import LayerEntry


class LabelCheck:
    """A blob's first bytes against the media type its manifest declares, as it streams: a manifest
    must not say gzip of a plain tar (docker's pull copes by sniffing; tools that trust it fail)."""

    def __init__(self, entry: LayerEntry) -> None:
        self.entry = entry
        self.head = b""
        self.decided = not entry.media_type

    def see(self, data: bytes) -> None:
        if not self.decided:
            self.head += data[:LABEL_BYTES - len(self.head)]
            if len(self.head) >= LABEL_BYTES:
                self.end()

    def end(self) -> None:
        if self.decided:
            return
        self.decided = True
        why = content_problem(self.entry.media_type, self.head)
        if why:
            name = f" ({self.entry.stored.digest[:19]})" if self.entry.stored is not None else ""
            raise PipeFailure(f"{capital(self.entry.label)}{name} is refused: {why}. Its manifest states something "
                              "false; build or save the image again with a tool that labels its layers (nothing was "
                              "tagged)")


def check_stored(entry: LayerEntry, size: int, remedy: str) -> None:
    """A stored blob's `size` bytes, hashed by its reader (`entry.hasher`), against the digest and size
    its manifest names; before its upload is finished."""
    assert entry.stored is not None
    blob, digest = entry.stored, hex_digest(entry.hasher)
    if (digest, size) != (blob.digest, blob.size):
        raise PipeFailure(f"{capital(entry.label)} does not match its digest: it holds {size} bytes hashing to "
                          f"{digest}, but its manifest names {blob.size} bytes {blob.digest}. {remedy}")
