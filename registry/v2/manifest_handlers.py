"""`GET`/`HEAD`/`PUT /v2/<name>/manifests/<reference>`."""
from __future__ import annotations

from aiohttp import web

from ..errors import RegistryError
from ..manifests import MAX_MANIFEST_BYTES
from ..names import NameError_
from ..storage_errors import ManifestTooLarge
from ..store import Store
from .request_access import API_VERSION, RequestAccess, content_length


class ManifestHandlers:
    def __init__(self, store: Store, access: RequestAccess) -> None:
        self.store = store
        self.access = access

    async def get(self, request: web.Request) -> web.Response:
        package, _ = await self.access.package(request, "pull")
        reference = request.match_info["reference"]
        try:
            record = await self.store.resolve(package, reference)
        except NameError_ as exc:
            raise RegistryError(exc.code, str(exc)) from None
        if record is None:
            raise RegistryError(
                "MANIFEST_UNKNOWN", f"manifest {reference} is not in {package.workspace}/{package.name}"
            )
        headers = {
            **API_VERSION,
            "Content-Type": record.media_type,
            "Docker-Content-Digest": record.digest,
            "Content-Length": str(len(record.body)),
            "ETag": f'"{record.digest}"',
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=record.body, headers=headers)

    async def put(self, request: web.Request) -> web.Response:
        package, _ = await self.access.package(request, "push")
        length = content_length(request)
        if length is not None and length > MAX_MANIFEST_BYTES:
            raise ManifestTooLarge(MAX_MANIFEST_BYTES)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_MANIFEST_BYTES:
                raise ManifestTooLarge(MAX_MANIFEST_BYTES)
        try:
            digest, _ = await self.store.put_manifest(
                package, request.match_info["reference"], bytes(body), request.headers.get("Content-Type")
            )
        except NameError_ as exc:
            raise RegistryError(exc.code, str(exc)) from None
        name = request.match_info["name"]
        return web.Response(status=201, headers={
            **API_VERSION, "Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
        })
