"""Errors in the OCI JSON form, and the status each code answers with."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

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
