"""Thin handlers for the management API (JSON, HTTP Basic with username and token).

It stands in for what Bitbucket's UI does: list images, create packages, show details,
delete tags and images, report storage, and read and change the Container settings
(immutable tags). Package routes follow the same access rule as /v2/ (access.check_package).
What each route does lives in `management.py`, shared with the web pages.
"""
from __future__ import annotations

import json

from aiohttp import web

from . import management as ops
from .access import require_workspace_admin
from .auth import WWW_BASIC, Principal, parse_basic
from .config import Workspace
from .errors import RegistryError
from .gc import Collector
from .metadata import Package
from .store import Store


class ApiHandlers:
    def __init__(self, store: Store, collector: Collector) -> None:
        self.store = store
        self.collector = collector

    def routes(self) -> list[web.RouteDef]:
        base = "/api/workspaces/{ws}"
        pkg = base + "/packages/{name:[a-z0-9][a-z0-9._/-]*?}"
        return [
            web.get(base + "/packages", self.list_packages),
            web.post(base + "/packages", self.create_package),
            web.get(base + "/storage", self.storage),
            web.get(base + "/container-settings", self.container_settings),
            web.put(base + "/container-settings", self.change_container_settings),
            web.post(base + "/gc", self.collect),
            web.get(pkg + "/tags/{tag}", self.tag_details),
            web.delete(pkg + "/tags/{tag}", self.delete_tag),
            web.get(pkg, self.package_details),
            web.delete(pkg, self.delete_package),
        ]

    # -- access -------------------------------------------------------------------------
    def _member(self, request: web.Request) -> tuple[Workspace, Principal]:
        slug = request.match_info["ws"]
        creds = parse_basic(request.headers.get("Authorization"))
        if creds is None:
            raise RegistryError(
                "UNAUTHORIZED", "HTTP Basic credentials (username and token) required", headers=WWW_BASIC
            )
        principal = ops.basic_principal(self.store.config, self.store.root, slug, creds[0], creds[1])
        return self.store.config.workspaces[slug], principal

    async def _package(self, request: web.Request, minimum: str) -> tuple[Workspace, Principal, Package]:
        """Deleting (a tag or the image) is the `delete` action, which read-scoped API tokens and
        pipeline credentials do not have."""
        workspace, member = self._member(request)
        action = "delete" if request.method == "DELETE" else None
        package = await ops.package_for(self.store, workspace, member, request.match_info["name"], minimum, action)
        return workspace, member, package

    # -- images -------------------------------------------------------------------------
    async def list_packages(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        packages = await ops.visible_packages(
            self.store, workspace, member,
            project=request.query.get("project"), repository=request.query.get("repository"),
        )
        items = await ops.summaries(self.store, workspace, packages)
        return web.json_response({"workspace": workspace.slug, "packages": items})

    async def create_package(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        body = await _json_body(request, '{"name": "<image>", "repository": "<repo slug>"}')
        body = body if isinstance(body, dict) else {}
        summary = await ops.create_package(self.store, workspace, member, body.get("name"), body.get("repository"))
        return web.json_response(summary, status=201)

    async def package_details(self, request: web.Request) -> web.Response:
        workspace, _, package = await self._package(request, "read")
        return web.json_response(await ops.details(self.store, workspace, package))

    async def delete_package(self, request: web.Request) -> web.Response:
        workspace, member, package = await self._package(request, "admin")
        tags = await ops.delete_package(self.store, workspace, member, package)
        return web.json_response({"deleted": package.name, "tags_deleted": tags})

    # -- tags ---------------------------------------------------------------------------
    async def tag_details(self, request: web.Request) -> web.Response:
        _, _, package = await self._package(request, "read")
        return web.json_response(await ops.tag_details(self.store, package, request.match_info["tag"]))

    async def delete_tag(self, request: web.Request) -> web.Response:
        workspace, member, package = await self._package(request, "write")
        tag = request.match_info["tag"]
        await ops.delete_tag(self.store, workspace, member, package, tag)
        return web.json_response({"deleted": tag, "package": package.name})

    # -- the Container settings ---------------------------------------------------------
    async def container_settings(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        return web.json_response(await ops.container_settings(self.store, workspace, member))

    async def change_container_settings(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        require_workspace_admin(workspace, member, "changing the Container settings")
        body = await _json_body(request, '{"protect": "none|all|some", "rules": [{"name", "pattern"}]}')
        return web.json_response(await ops.change_container_settings(self.store, workspace, member, body))

    # -- storage ------------------------------------------------------------------------
    async def storage(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        return web.json_response(await ops.storage_report(self.store, self.collector, workspace, member))

    async def collect(self, request: web.Request) -> web.Response:
        """Run a collection now and answer with its result (an extension for tests and operators)."""
        workspace, member = self._member(request)
        return web.json_response(await ops.collect_now(self.collector, workspace, member))


async def _json_body(request: web.Request, shape: str) -> object:
    """The request's JSON body; a body that is not JSON is refused with the shape it should have."""
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RegistryError("INVALID_REQUEST", f"send JSON: {shape}") from None
