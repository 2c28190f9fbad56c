"""The OCI Distribution API under /v2/: one handler module per resource, as distribution has them."""
from __future__ import annotations

from aiohttp import web

from ..auth import TokenIssuer
from ..store import Store
from .base_handlers import BaseHandlers, unknown_route
from .blob_handlers import BlobHandlers
from .manifest_handlers import ManifestHandlers
from .request_access import RequestAccess
from .upload_handlers import UploadHandlers

__all__ = ["unknown_route", "v2_routes"]

NAME = "{name:[a-z0-9][a-z0-9._/-]*}"


def v2_routes(store: Store, issuer: TokenIssuer) -> list[web.RouteDef]:
    access = RequestAccess(store, issuer)
    base, blobs = BaseHandlers(access), BlobHandlers(store, access)
    uploads, manifests = UploadHandlers(store, access), ManifestHandlers(store, access)
    n = NAME
    return [
        web.get("/v2/", base.ping),
        web.get("/v2/_catalog", base.unsupported),
        web.get(f"/v2/{n}/tags/list", base.unsupported),
        web.post(f"/v2/{n}/blobs/uploads/", uploads.start),
        web.get(f"/v2/{n}/blobs/uploads/{{upload_id}}", uploads.status),
        web.patch(f"/v2/{n}/blobs/uploads/{{upload_id}}", uploads.chunk),
        web.put(f"/v2/{n}/blobs/uploads/{{upload_id}}", uploads.finish),
        web.delete(f"/v2/{n}/blobs/uploads/{{upload_id}}", uploads.cancel),
        web.get(f"/v2/{n}/blobs/{{digest}}", blobs.get, allow_head=False),
        web.head(f"/v2/{n}/blobs/{{digest}}", blobs.head),
        web.delete(f"/v2/{n}/blobs/{{digest}}", base.unsupported),
        web.get(f"/v2/{n}/manifests/{{reference}}", manifests.get, allow_head=False),
        web.head(f"/v2/{n}/manifests/{{reference}}", manifests.get),
        web.put(f"/v2/{n}/manifests/{{reference}}", manifests.put),
        web.delete(f"/v2/{n}/manifests/{{reference}}", base.unsupported),
    ]
