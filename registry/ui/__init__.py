"""The registry's web pages under /ui/: what a Bitbucket user sees of packages, images, tags and storage."""
from __future__ import annotations

import logging
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..errors import RegistryError, http_error
from ..gc import Collector
from ..storage_errors import StorageError
from ..store import Store
from .format import FILTERS
from .pages import Pages, see_other
from .session import COOKIE, SessionCodec, load_or_create_key

log = logging.getLogger("registry.ui")
HERE = Path(__file__).resolve().parent
STATIC = {"style.css": HERE / "static" / "style.css", "copy.js": HERE / "static" / "copy.js"}
# Pages load nothing but their own stylesheet and copy-button script: no inline scripts, no frames,
# forms only to this site.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
TITLES = {401: "Log in", 403: "Not allowed", 404: "Not found", 409: "Already exists", 500: "Something went wrong"}


def create_ui(store: Store, collector: Collector) -> web.Application:
    """The pages as a sub-application, mounted at /ui by the registry's app."""
    codec = SessionCodec(load_or_create_key(store.root))
    pages = Pages(store, collector, codec)

    @web.middleware
    async def middleware(request: web.Request, handler):
        request["session"] = codec.decode(request.cookies.get(COOKIE))
        try:
            response = await handler(request)
        except (RegistryError, StorageError) as raised:
            exc = http_error(raised)
            if exc.status == 401:
                target = "/ui/login" if request.method != "GET" else "/ui/login?next=" + request.path_qs
                response = see_other(target)
            else:
                response = error_page(request, exc.status, exc.message)
        except web.HTTPNotFound:
            response = error_page(request, 404, f"no page at {request.path}")
        except web.HTTPMethodNotAllowed:
            response = error_page(request, 405, f"{request.method} is not supported on {request.path}")
        except web.HTTPException:
            raise
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = error_page(request, 500, "the page failed to render; the registry's log has the details")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def error_page(request: web.Request, status: int, message: str) -> web.Response:
        return pages.render(request, "error.html", {"title": TITLES.get(status, "Error"), "status": status,
                                                    "message": message}, status=status)

    async def static(request: web.Request) -> web.FileResponse:
        path = STATIC.get(request.match_info["file"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Cache-Control": "max-age=3600"})

    app = web.Application(middlewares=[middleware])
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    app.router.add_get("/-/{file}", static)
    app.add_routes(pages.routes())
    return app
