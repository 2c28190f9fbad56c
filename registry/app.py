"""The aiohttp application: routes, error answers, and the background tasks' lifetime."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from .api_handlers import ApiHandlers
from .auth import TokenIssuer
from .config import Config
from .errors import RegistryError, http_error
from .gc import Collector
from .storage_errors import StorageError
from .store import Store
from .token_handler import TokenHandler
from .ui import create_ui
from .v2 import unknown_route, v2_routes

log = logging.getLogger("registry")
SERVICE = "crg.apkg.io"


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except (RegistryError, StorageError) as exc:
        error = http_error(exc)
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, error.message)
        return error.response()
    except web.HTTPException as exc:
        if exc.status == 404:
            if request.path.startswith("/v2/"):
                return unknown_route(request.method, request.path).response()
            return RegistryError("NOT_FOUND", f"no route for {request.method} {request.path}", status=404).response()
        if exc.status == 405:
            return RegistryError("UNSUPPORTED", f"{request.method} is not supported on {request.path}").response()
        raise
    except OSError as exc:
        if exc.errno == 28:  # ENOSPC
            log.error("%s %s: disk full", request.method, request.path)
            return RegistryError("INSUFFICIENT_STORAGE", "the registry's disk is full: nothing was stored").response()
        log.exception("%s %s failed", request.method, request.path)
        return RegistryError("INTERNAL", "internal error").response()


async def ui_root(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/ui/")


def create_app(root: Path, config: Config) -> web.Application:
    store = Store(root, config)
    issuer = TokenIssuer.for_root(root, SERVICE, config.token_ttl_seconds)
    app = web.Application(middlewares=[errors_middleware])
    app["store"] = store
    app.add_routes(TokenHandler(store, issuer).routes())
    app.add_routes(v2_routes(store, issuer))
    collector = Collector(store)
    store.on_dereference = collector.schedule
    app["collector"] = collector
    app.add_routes(ApiHandlers(store, collector).routes())
    app.router.add_get("/ui", ui_root)  # before the sub-application, which would answer it with a 404
    app.add_subapp("/ui", create_ui(store, collector))

    async def background(app: web.Application):
        periodic = asyncio.get_running_loop().create_task(collector.periodic())
        yield
        periodic.cancel()
        for task in list(collector.running.values()):
            await asyncio.wait([task], timeout=30)
        store.close()

    app.cleanup_ctx.append(background)
    return app
