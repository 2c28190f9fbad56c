"""`GET /v2/`, the routes crg.apkg.io does not support, and the answer to a path no route serves."""
from __future__ import annotations

import re

from aiohttp import web

from ..errors import RegistryError
from ..names import NameError_, parse_repository
from .request_access import API_VERSION, RequestAccess

# A path shaped like one of the API's resources (the last resource word wins): that no route took it
# means its name broke the grammar the routes' pattern follows.
_RESOURCE_PATH = re.compile(r"^/v2/(?P<name>.+)/(?:manifests|blobs|tags)/", re.DOTALL)


def unknown_route(method: str, path: str) -> RegistryError:
    """The answer to a path under /v2/ that no route serves: 404, never NAME_UNKNOWN.

    NAME_UNKNOWN says the repository does not exist, and clients believe it: oras-go reads it on
    `GET /v2/<name>/referrers/<digest>` as "no such repository" and fails, where any other 404 makes
    it fall back to the referrers tag schema, as the distribution spec asks of a registry without
    the referrers API. UNSUPPORTED is the spec's code for an operation a registry does not offer.
    A resource path with a name the grammar refuses is NAME_INVALID, as on the routes themselves.
    """
    match = _RESOURCE_PATH.match(path)
    if match:
        try:
            parse_repository(match["name"])
        except NameError_ as exc:
            return RegistryError(exc.code, str(exc))
    message = f"{method} {path} is not part of the API this registry serves"
    if "/referrers/" in path:
        message += ("; it has no referrers API: clients list referrers through the referrers tag schema "
                    "(an index tagged sha256-<hex> of the subject's digest)")
    return RegistryError("UNSUPPORTED", message, status=404)


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
