"""`HEAD` and `GET /v2/<name>/blobs/<digest>`."""
from __future__ import annotations

from aiohttp import web

from ..errors import RegistryError
from ..store import Store
from .request_access import API_VERSION, RequestAccess, digest_param

BLOB_TYPE = "application/octet-stream"  # what a blob is served as, whatever its media type in a manifest


class BlobHandlers:
    def __init__(self, store: Store, access: RequestAccess) -> None:
        self.store = store
        self.access = access

    async def _blob(self, request: web.Request, confirm: bool):
        package, _ = await self.access.package(request, "pull")
        digest = digest_param(request.match_info["digest"])
        blob = await self.store.blob(package, digest, confirm=confirm)
        if blob is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in {package.workspace}/{package.name}")
        return package, blob

    async def head(self, request: web.Request) -> web.Response:
        _, blob = await self._blob(request, confirm=True)
        return web.Response(headers={
            **API_VERSION,
            "Content-Length": str(blob.size),
            "Content-Type": BLOB_TYPE,
            "Docker-Content-Digest": blob.digest,
            "Accept-Ranges": "bytes",
        })

    async def get(self, request: web.Request) -> web.StreamResponse:
        package, blob = await self._blob(request, confirm=False)
        return web.FileResponse(
            self.store.blob_path(package, blob.digest),
            chunk_size=1024 * 1024,
            headers={**API_VERSION, "Content-Type": BLOB_TYPE, "Docker-Content-Digest": blob.digest},
        )
