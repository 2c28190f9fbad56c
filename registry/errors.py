"""Errors in the OCI JSON form, the status each code answers with, and the answer to each storage refusal."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .immutable_tags import ImageHoldsImmutableTags, TagDeleteRefused, TagOverwriteRefused
from .storage_errors import (
    ChunkOutOfOrder,
    DigestMismatch,
    ManifestBlobsMissing,
    ManifestInvalid,
    ManifestTooLarge,
    MediaTypeMismatch,
    StorageError,
    UploadTimedOut,
    UploadTooLarge,
    UploadUnknown,
)

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "PAYLOAD_TOO_LARGE": 413,
    "INSUFFICIENT_STORAGE": 507,
    "INTERNAL": 500,
}


class RegistryError(Exception):
    """Raised anywhere below a handler; the error middleware turns it into the JSON answer."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS.get(code, 400)
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return web.Response(
            status=self.status,
            body=json.dumps({"errors": [error]}).encode(),
            content_type="application/json",
            headers=self.headers,
        )


def http_error(exc: RegistryError | StorageError) -> RegistryError:
    """The HTTP answer to an error raised below the handlers: the one place the storage layer's
    refusals become a status, an OCI code and headers (the error middleware and the pages' use it)."""
    if isinstance(exc, RegistryError):
        return exc
    message = str(exc)
    match exc:
        case UploadUnknown():
            return RegistryError("BLOB_UPLOAD_UNKNOWN", message)
        case UploadTooLarge():
            # DENIED, not SIZE_INVALID: docker retries a layer upload five times on codes it does
            # not know to be final, and a layer over the limit will never fit.
            return RegistryError("DENIED", message, status=413, detail={"max_layer_bytes": exc.limit})
        case UploadTimedOut():
            return RegistryError("BLOB_UPLOAD_INVALID", message, status=408)
        case ChunkOutOfOrder():
            # The distribution spec's answer to an out-of-order chunk, with the range the upload holds.
            return RegistryError("BLOB_UPLOAD_INVALID", message, status=416,
                                 headers={"Range": f"0-{max(exc.offset - 1, 0)}"})
        case DigestMismatch():
            return RegistryError("DIGEST_INVALID", message)
        case ManifestTooLarge():
            return RegistryError("MANIFEST_INVALID", message, status=413)
        case MediaTypeMismatch():
            return RegistryError("MANIFEST_INVALID",
                                 f"Content-Type {exc.given!r} does not match the manifest's mediaType {exc.declared!r}")
        case ManifestInvalid(wrong_sizes=None):
            return RegistryError("MANIFEST_INVALID", message)
        case ManifestInvalid():
            return RegistryError("MANIFEST_INVALID", message, detail={"wrong_sizes": exc.wrong_sizes})
        case ManifestBlobsMissing():
            # The spec's code for a missing blob and, for an index, a missing child manifest alike.
            return RegistryError("MANIFEST_BLOB_UNKNOWN", message, detail={"missing": exc.missing})
        case TagOverwriteRefused():
            # ECR's answer to the same push (docker prints "tag invalid: ..."): a 400 no client retries
            # and none reads as a credentials problem, unlike DENIED.
            return RegistryError("TAG_INVALID", exc.overwrite_message(), detail=exc.detail())
        case TagDeleteRefused():
            return RegistryError("DENIED", exc.delete_message(), detail=exc.detail())
        case ImageHoldsImmutableTags():
            return RegistryError("DENIED", exc.delete_message(), detail={"immutable_tags": exc.tags})
    return RegistryError("INTERNAL", message)
