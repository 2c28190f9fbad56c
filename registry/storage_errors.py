"""What the storage layer refuses, in its own terms: typed errors carrying the facts, no HTTP.

The store, the upload code, the metadata and manifest validation raise these (the immutable-tag
refusals, in `immutable_tags.py`, are of the same family); `errors.http_error` turns each into its
HTTP answer (status, OCI code, headers) in one place, for the /v2/ API, the management API and the
pages alike, as distribution's storage returns typed errors that its handlers map.
"""
from __future__ import annotations


class StorageError(Exception):
    """A refusal of the storage layer; `str()` is the message a client is told."""


def in_binary_units(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


# -- uploads ----------------------------------------------------------------------------
class UploadUnknown(StorageError):
    """No live session of that id for this package and member: unknown, finished, closed or expired."""


class UploadTooLarge(StorageError):
    """The upload would take a layer past the registry's limit; the session is discarded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"layer exceeds the registry's limit of {limit} bytes ({in_binary_units(limit)}) per layer")
        self.limit = limit


class UploadTimedOut(StorageError):
    """The session outlived the registry's time limit while a body was arriving."""

    def __init__(self) -> None:
        super().__init__("upload exceeded the registry's time limit for one upload session")


class ChunkOutOfOrder(StorageError):
    """A chunk that does not start where the upload ends; the upload keeps its `offset` bytes."""

    def __init__(self, start: int, offset: int) -> None:
        super().__init__(
            f"chunk starts at {start} but the upload has {offset} bytes: send the next chunk from {offset}"
        )
        self.start, self.offset = start, offset


class DigestMismatch(StorageError):
    """Content whose digest is not the one the client gave; nothing was stored."""


# -- manifests --------------------------------------------------------------------------
class ManifestInvalid(StorageError):
    """A manifest that does not validate; `wrong_sizes` lists declared sizes that are not the content's."""

    def __init__(self, message: str, wrong_sizes: list[str] | None = None) -> None:
        super().__init__(message)
        self.wrong_sizes = wrong_sizes


class MediaTypeMismatch(ManifestInvalid):
    """The media type given with a manifest is not the one its body declares."""

    def __init__(self, given: str, declared: str) -> None:
        super().__init__(f"media type {given!r} given with the manifest does not match its mediaType {declared!r}")
        self.given, self.declared = given, declared


class ManifestTooLarge(ManifestInvalid):
    def __init__(self, limit: int) -> None:
        super().__init__(f"manifest is larger than {limit} bytes")
        self.limit = limit


class ManifestBlobsMissing(StorageError):
    """A manifest references blobs (or, for an index, child manifests) the package does not have."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            f"manifest references content this package does not have: {', '.join(missing)}; push those first"
        )
        self.missing = missing
