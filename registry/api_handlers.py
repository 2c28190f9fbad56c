"""Thin handlers for the management API (JSON, HTTP Basic with username and token).

It stands in for what Bitbucket's UI does: list images, create packages, show details,
delete tags and images, and report storage. Package routes follow the same access rule as
/v2/ (access.check_package).
"""
from __future__ import annotations

import json

from aiohttp import web

from .access import check_package
from .auth import CredentialsExpired, Principal, identify, parse_basic, role_at_least
from .catalog import _iso, package_details, package_summary, storage
from .config import Workspace
from .errors import RegistryError
from .gc import Collector
from .manifests import IMAGE_TYPES, parse_manifest
from .metadata import Package
from .names import MAX_REPOSITORY_LENGTH, REPOSITORY_RE, is_slug, is_tag
from .store import Store

WWW_BASIC = {"WWW-Authenticate": 'Basic realm="crg-emulator"'}


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
            raise RegistryError("UNAUTHORIZED", "HTTP Basic credentials (username and token) required", headers=WWW_BASIC)
        try:
            found = identify(self.store.config, self.store.root, creds[0], creds[1], slug) if is_slug(slug) else []
        except CredentialsExpired as exc:
            raise RegistryError("UNAUTHORIZED", str(exc), headers=WWW_BASIC) from None
        if not found:
            raise RegistryError("UNAUTHORIZED", "invalid username or token for this workspace", headers=WWW_BASIC)
        return self.store.config.workspaces[slug], found[0]

    async def _package(self, request: web.Request, minimum: str) -> tuple[Workspace, Principal, Package]:
        """The package, if the credentials may do `minimum` on it: the same rule as every /v2/ route.

        Deleting (a tag or the image) is the `delete` action, which read-scoped API tokens and
        pipeline credentials do not have.
        """
        workspace, member = self._member(request)
        name = request.match_info["name"]
        package = await self.store.package(workspace.slug, name) if REPOSITORY_RE.match(name) else None
        action = "delete" if request.method == "DELETE" else None
        check_package(member, f"{workspace.slug}/{name}", name, package, minimum, action=action)
        assert package is not None
        return workspace, member, package

    # -- images -------------------------------------------------------------------------
    async def list_packages(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        project, repository = request.query.get("project"), request.query.get("repository")
        packages = await self.store.db(self.store.meta.packages, workspace.slug)
        visible = [
            p for p in packages
            if member.role_on(p.repository) is not None
            and (repository is None or p.repository == repository)
            and (project is None or workspace.repositories.get(p.repository) == project)
        ]
        meta = self.store.meta
        items = [await self.store.db(package_summary, meta, p, workspace.repositories.get(p.repository)) for p in visible]
        return web.json_response({"workspace": workspace.slug, "packages": items})

    async def create_package(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RegistryError("INVALID_REQUEST", 'send JSON: {"name": "<image>", "repository": "<repo slug>"}') from None
        name = body.get("name") if isinstance(body, dict) else None
        repository = body.get("repository") if isinstance(body, dict) else None
        longest = MAX_REPOSITORY_LENGTH - len(workspace.slug) - 1  # `<workspace>/<name>` is the /v2/ name
        if not isinstance(name, str) or not REPOSITORY_RE.match(name) or len(name) > longest:
            raise RegistryError(
                "NAME_INVALID", f"name must be lowercase letters, digits and separators (. _ - /), at most {longest} characters"
            )
        if not isinstance(repository, str) or repository not in workspace.repositories:
            raise RegistryError("INVALID_REQUEST", f"repository must be one of the workspace's repositories, got {repository!r}")
        if member.role_on(repository) != "admin":
            raise RegistryError("DENIED", f"creating a package needs admin permission on repository '{repository}'")
        if "delete" not in member.actions:
            raise RegistryError(
                "DENIED", "token lacks the write:package:bitbucket scope: creating a package needs it; "
                          "create an API token with write:package:bitbucket",
            )
        package = await self.store.db(self.store.meta.create_package, workspace.slug, name, repository)
        if package is None:
            raise RegistryError("NAME_EXISTS", f"package {name!r} already exists in workspace {workspace.slug!r}", status=409)
        summary = await self.store.db(package_summary, self.store.meta, package, workspace.repositories[repository])
        return web.json_response(summary, status=201)

    async def package_details(self, request: web.Request) -> web.Response:
        workspace, _, package = await self._package(request, "read")
        details = await self.store.db(package_details, self.store.meta, package, workspace.repositories.get(package.repository))
        return web.json_response(details)

    async def delete_package(self, request: web.Request) -> web.Response:
        workspace, _, package = await self._package(request, "admin")
        tags = await self.store.db(self.store.meta.delete_package, package)
        self.collector.schedule(workspace.slug)
        return web.json_response({"deleted": package.name, "tags_deleted": tags})

    # -- tags ---------------------------------------------------------------------------
    async def tag_details(self, request: web.Request) -> web.Response:
        _, _, package = await self._package(request, "read")
        tag = request.match_info["tag"]
        digest = await self.store.db(self.store.meta.tag_digest, package, tag) if is_tag(tag) else None
        record = await self.store.db(self.store.meta.manifest, package, digest) if digest else None
        if record is None:
            raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")
        parsed = parse_manifest(record.body, record.media_type)
        details = {
            "name": tag,
            "digest": record.digest,
            "media_type": record.media_type,
            "size": len(record.body) + sum(d.size for d in parsed.blobs),
            "created_at": _iso(record.created_at),
        }
        if record.media_type in IMAGE_TYPES:
            details["platform"] = await self._platform(package, parsed.config.digest)
            details["layers"] = [{"digest": d.digest, "size": d.size, "media_type": d.media_type} for d in parsed.layers]
        else:
            details["platforms"] = [
                {"digest": d.digest, "size": d.size, "media_type": d.media_type, "platform": d.platform}
                for d in parsed.manifests
            ]
        return web.json_response(details)

    async def _platform(self, package: Package, config_digest: str) -> dict | None:
        """os/architecture/variant from the image config blob (small JSON)."""
        try:
            raw = await self.store.run_io(self.store.blob_path(package, config_digest).read_bytes)
            doc = json.loads(raw)
        except (OSError, ValueError):
            return None
        return {k: doc[k] for k in ("os", "architecture", "variant") if isinstance(doc, dict) and k in doc}

    async def delete_tag(self, request: web.Request) -> web.Response:
        workspace, _, package = await self._package(request, "write")
        tag = request.match_info["tag"]
        if not is_tag(tag) or not await self.store.db(self.store.meta.delete_tag, package, tag):
            raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")
        self.collector.schedule(workspace.slug)
        return web.json_response({"deleted": tag, "package": package.name})

    # -- storage ------------------------------------------------------------------------
    async def storage(self, request: web.Request) -> web.Response:
        workspace, member = self._member(request)
        if member.best_role() is None:
            raise RegistryError("DENIED", "storage figures need a role on at least one repository of the workspace")
        figures = await self.store.db(storage, self.store.meta, workspace.slug, self.store.config.grace_seconds)
        last = self.collector.last.get(workspace.slug)
        figures["gc"] = {
            "running": workspace.slug in self.collector.running,
            "runs": self.collector.runs.get(workspace.slug, 0),
            "last": last.as_dict() if last else None,
        }
        return web.json_response(figures)

    async def collect(self, request: web.Request) -> web.Response:
        """Run a collection now and answer with its result (an extension for tests and operators)."""
        workspace, member = self._member(request)
        if not role_at_least(member.best_role(), "admin") or "delete" not in member.actions:
            raise RegistryError("DENIED", "running a collection needs admin permission on a repository of the workspace")
        self.collector.schedule(workspace.slug)
        await self.collector.wait_idle(workspace.slug)
        last = self.collector.last.get(workspace.slug)
        return web.json_response(last.as_dict() if last else {})
