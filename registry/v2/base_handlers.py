"""`GET /v2/` and the routes crg.apkg.io does not support."""
from __future__ import annotations

from aiohttp import web

from ..errors import RegistryError
from .request_access import API_VERSION, RequestAccess


class BaseHandlers:
    def __init__(self, access: RequestAccess) -> None:
        self.access = access

    async def ping(self, request: web.Request) -> web.Response:
        self.access.claims(request, None)
        return web.json_response({}, headers=API_VERSION)

    async def unsupported(self, request: web.Request) -> web.Response:
        raise RegistryError(
            "UNSUPPORTED",
            "the Bitbucket container registry does not support this API: "
            "list and delete tags and images through Bitbucket (the management API here)",
        )
