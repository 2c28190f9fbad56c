"""Thin handlers for the web pages under /ui/: read the session, call `management`, render.

Every check the JSON API makes is made here by the same functions; a control a role
cannot use is not rendered, and its POST is refused anyway (403 page). Every POST must
carry the session's CSRF token.
"""
from __future__ import annotations

import re
import time
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from .. import management as ops
from ..access import allows, allows_somewhere, is_workspace_admin, require_admin_somewhere, require_workspace_admin
from ..auth import Principal
from ..config import Workspace
from ..errors import RegistryError
from ..gc import Collector
from ..immutable_tags import (
    MAX_RULES,
    PROTECT,
    ImageHoldsImmutableTags,
    Rule,
    TagImmutable,
    check_sample,
    parse_immutable_tags,
)
from ..names import is_tag
from ..store import Store
from .format import human_bytes
from .paging import page_of
from .session import COOKIE, Session, SessionCodec
from .viewer import grant_of, member_in, session_roles_of

PER_PAGE = 50
IMAGE = "{image:[a-z0-9][a-z0-9._/-]*?}"
RULE_PATH = re.compile(r"^rules\[(\d+)\]\.?(name|pattern)?")
CSRF_REFUSED = "This form did not come from this session (missing or wrong CSRF token): reload the page and try again."


def not_found(what: str) -> RegistryError:
    return RegistryError("NOT_FOUND", what, status=404)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def safe_next(value: str | None) -> str | None:
    """Only a path inside the pages: never another site after login."""
    if value and value.startswith("/ui/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


class Pages:
    def __init__(self, store: Store, collector: Collector, codec: SessionCodec) -> None:
        self.store = store
        self.collector = collector
        self.codec = codec

    def routes(self) -> list[web.RouteDef]:
        ws = "/{ws}"
        image = ws + "/packages/" + IMAGE
        return [
            web.get("/", self.index),
            web.get("/login", self.login_form),
            web.post("/login", self.login),
            web.post("/logout", self.logout),
            web.get(ws + "/packages", self.packages),
            web.get(ws + "/projects/{project}/packages", self.packages),
            web.get(ws + "/repositories/{repository}/packages", self.packages),
            web.get(ws + "/create/package", self.create_form),
            web.post(ws + "/create/package", self.create),
            web.get(ws + "/storage", self.storage),
            web.post(ws + "/storage", self.collect),
            web.get(ws + "/container-settings", self.container_settings),
            web.post(ws + "/container-settings", self.edit_container_settings),
            web.get(image + "/tags/{tag}", self.tag),
            web.post(image + "/tags/{tag}", self.delete_tag),
            web.get(image, self.image),
            web.post(image, self.delete_image),
        ]

    # -- sessions and rendering ---------------------------------------------------------
    def session(self, request: web.Request) -> Session | None:
        return request.get("session")

    def save(self, response: web.StreamResponse, request: web.Request, session: Session) -> None:
        response.set_cookie(
            COOKIE, self.codec.encode(session), path="/ui", httponly=True, samesite="Lax",
            secure=request.secure, max_age=max(0, int(session.expires_at - time.time())),
        )

    def render(self, request: web.Request, template: str, context: dict, status: int = 200) -> web.Response:
        session = self.session(request)
        fresh = session is None
        if session is None:
            session = self.codec.anonymous()
        notice = session.notice
        response = aiohttp_jinja2.render_template(
            template, request, {"session": session, "notice": notice, "host": request.host, **context}, status=status
        )
        if fresh or notice:
            self.save(response, request, self.codec.with_notice(session, None))
        return response

    def redirect(self, request: web.Request, location: str, notice: str | None = None) -> web.Response:
        response = see_other(location)
        session = self.session(request)
        if notice and session is not None:
            self.save(response, request, self.codec.with_notice(session, notice))
        return response

    def viewer(self, request: web.Request) -> tuple[Workspace, Principal]:
        session = self.session(request)
        if session is None or session.username is None:
            raise RegistryError("UNAUTHORIZED", "log in to see this page")
        found = member_in(self.store.config, session, request.match_info["ws"])
        if found is None:
            raise not_found(f"no workspace {request.match_info['ws']!r} for user {session.username!r}")
        return found

    async def form(self, request: web.Request) -> MultiDictProxy:
        """The posted form (repeated fields kept), once its CSRF token matches the session's."""
        session = self.session(request)
        if session is None or session.username is None:
            raise RegistryError("UNAUTHORIZED", "log in to do this")
        data = await request.post()
        if not session.csrf_matches(data.get("csrf_token")):
            raise RegistryError("DENIED", CSRF_REFUSED, status=403)
        return data

    async def confirmed_delete(self, request: web.Request) -> tuple[Workspace, Principal]:
        """The viewer of a Confirm → Delete post (CSRF checked); what may be deleted is the caller's check."""
        workspace, member = self.viewer(request)
        data = await self.form(request)
        if data.get("action") != "delete":
            raise RegistryError("INVALID_REQUEST", "unknown action")
        return workspace, member

    def nav(self, workspace: Workspace, member: Principal) -> dict:
        admin = allows_somewhere(member, "admin", "delete")  # creating a package, running a cleanup
        return {"workspace": workspace, "member": member, "can_create": admin, "is_admin": admin,
                "is_workspace_admin": is_workspace_admin(workspace, member)}

    # -- login --------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.Response:
        session = self.session(request)
        if session is None or session.username is None:
            raise web.HTTPSeeOther("/ui/login")
        slugs = sorted(session.roles)
        if len(slugs) == 1:
            raise web.HTTPSeeOther(f"/ui/{slugs[0]}/packages")
        return self.render(request, "workspaces.html", {"workspaces": slugs})

    async def login_form(self, request: web.Request) -> web.Response:
        return self.render(request, "login.html", {"next": safe_next(request.query.get("next")), "username": ""})

    async def login(self, request: web.Request) -> web.Response:
        data = await request.post()
        session = self.session(request)
        username, token = str(data.get("username", "")).strip(), str(data.get("token", ""))
        nxt = safe_next(str(data.get("next", "")))
        context = {"next": nxt, "username": username}
        if session is None or not session.csrf_matches(data.get("csrf_token")):
            request["session"] = None  # a fresh form with a new token
            return self.render(request, "login.html", {**context, "error": CSRF_REFUSED}, status=403)
        try:
            found = ops.principals(self.store.config, self.store.root, username, token) if username and token else []
        except RegistryError as exc:  # pipeline credentials past their expiry, told so as the API does
            return self.render(request, "login.html", {**context, "error": exc.message}, status=401)
        if not found:
            return self.render(request, "login.html", {**context, "error": "Invalid username or token."}, status=401)
        roles = session_roles_of(self.store.config, username, found)
        new = self.codec.logged_in(username, roles, {p.workspace: grant_of(p) for p in found})
        target = nxt or (f"/ui/{next(iter(sorted(roles)))}/packages" if len(roles) == 1 else "/ui/")
        response = see_other(target)
        self.save(response, request, new)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self.form(request)
        response = see_other("/ui/login")
        self.save(response, request, self.codec.with_notice(self.codec.anonymous(), "You are logged out."))
        return response

    # -- packages -----------------------------------------------------------------------
    async def packages(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        project, repository = request.match_info.get("project"), request.match_info.get("repository")
        if project is not None and project not in workspace.repositories.values():
            raise not_found(f"no project {project!r} in workspace {workspace.slug!r}")
        if repository is not None and repository not in workspace.repositories:
            raise not_found(f"no repository {repository!r} in workspace {workspace.slug!r}")
        query = request.query.get("q", "").strip().lower()[:255]
        packages = await ops.visible_packages(
            self.store, workspace, member, project=project, repository=repository, contains=query
        )
        page = page_of(len(packages), request.query.get("page"), PER_PAGE)
        items = await ops.summaries(self.store, workspace, packages[page.start:page.end])
        return self.render(request, "packages.html", {
            **self.nav(workspace, member), "items": items, "page": page, "query": query,
            "project": project, "repository": repository,
            "page_link": lambda n: "?" + urlencode({k: v for k, v in (("q", query), ("page", n)) if v}),
        })

    async def create_form(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        return self._create_page(request, workspace, member, {})

    def _create_page(self, request: web.Request, workspace: Workspace, member: Principal, values: dict,
                     error: str | None = None, status: int = 200) -> web.Response:
        require_admin_somewhere(member, "creating a package")
        choices = sorted(r for r in member.roles if allows(member, r, "admin", "delete"))
        return self.render(request, "create.html", {
            **self.nav(workspace, member), "choices": choices, "values": values, "error": error,
        }, status=status)

    async def create(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        data = await self.form(request)
        values = {"name": data.get("name", "").strip(), "repository": data.get("repository", "")}
        try:
            summary = await ops.create_package(self.store, workspace, member, values["name"], values["repository"])
        except RegistryError as exc:
            return self._create_page(request, workspace, member, values, exc.message, exc.status)
        return self.redirect(request, f"/ui/{workspace.slug}/packages/{summary['name']}",
                             f"Package {summary['name']} created, linked to repository {summary['repository']}.")

    # -- an image and its tags ----------------------------------------------------------
    async def image(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        package = await ops.package_for(self.store, workspace, member, request.match_info["image"], "read",
                                        hide_unreadable=True)
        role = member.role_on(package.repository)
        may_delete_image = allows(member, package.repository, "admin", "delete")
        may_delete_tags = allows(member, package.repository, "write", "delete")
        details = await ops.details(self.store, workspace, package)
        tags = sorted(details["tags"], key=lambda t: (t["updated_at"] or "", t["name"]), reverse=True)
        held = await self._immutable(workspace, member, package, tags)
        page = page_of(len(tags), request.query.get("page"), PER_PAGE)
        shown = tags[page.start:page.end]
        for tag in shown:
            tag["platforms"] = await ops.platforms(self.store, package, tag["digest"])
        confirm, confirm_tag = request.query.get("confirm"), request.query.get("tag")
        if confirm == "delete-image" and not may_delete_image:
            raise RegistryError("DENIED", f"deleting an image needs admin permission on repository "
                                          f"'{package.repository}' and credentials that may delete")
        if confirm == "delete-image" and held:
            raise RegistryError("DENIED", ImageHoldsImmutableTags(workspace.slug, package.name, held).delete_message())
        if confirm == "delete-tag":
            if not may_delete_tags:
                raise RegistryError(
                    "DENIED", f"deleting a tag needs write permission on repository '{package.repository}'"
                )
            self._refuse_immutable_delete(workspace, package, next((t for t in tags if t["name"] == confirm_tag), None))
            if confirm_tag not in {t["name"] for t in tags}:
                confirm = None
        return self.render(request, "image.html", {
            **self.nav(workspace, member), "image": details, "tags": shown, "page": page, "role": role,
            "can_delete_image": may_delete_image and not held, "can_delete_tags": may_delete_tags,
            "can_push": allows(member, package.repository, "write", "push"),
            "confirm": confirm, "confirm_tag": confirm_tag,
            "page_link": lambda n: "?" + urlencode({"page": n}),
        })

    async def delete_image(self, request: web.Request) -> web.Response:
        workspace, member = await self.confirmed_delete(request)
        package = await ops.package_for(self.store, workspace, member, request.match_info["image"], "admin", "delete",
                                        hide_unreadable=True)
        tags = await ops.delete_package(self.store, workspace, member, package)
        return self.redirect(request, f"/ui/{workspace.slug}/packages", (
            f"Image {package.name} and its {tags} tag{'s' if tags != 1 else ''} deleted: they can no longer be pulled. "
            "The space they used comes back after cleanup runs (see Storage)."))

    async def tag(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        package = await ops.package_for(self.store, workspace, member, request.match_info["image"], "read",
                                        hide_unreadable=True)
        role = member.role_on(package.repository)
        may_delete = allows(member, package.repository, "write", "delete")
        details = await ops.tag_details(self.store, package, request.match_info["tag"])
        await self._immutable(workspace, member, package, [details])
        confirm = request.query.get("confirm")
        if confirm == "delete-tag" and not may_delete:
            raise RegistryError("DENIED", f"deleting a tag needs write permission on repository '{package.repository}'")
        if confirm == "delete-tag":
            self._refuse_immutable_delete(workspace, package, details)
        may_delete = may_delete and details["deletable"]
        return self.render(request, "tag.html", {
            **self.nav(workspace, member), "package": package, "tag": details, "role": role,
            "can_delete_tag": may_delete, "confirm": confirm,
        })

    async def _immutable(self, workspace: Workspace, member: Principal, package, tags: list[dict]) -> list[str]:
        """Mark each tag `immutable` (what protects it, for the page) and `deletable` by this viewer (an
        immutable tag only by a workspace admin); return the immutable tags this viewer may not delete."""
        settings = await self.store.immutable_tags(workspace.slug)
        admin = is_workspace_admin(workspace, member)
        held = []
        for tag in tags:
            protection = settings.protection(tag["name"])
            tag["immutable"] = protection.label() if protection else None
            tag["protection"] = protection
            tag["deletable"] = admin or protection is None
            if not tag["deletable"]:
                held.append(tag["name"])
        return sorted(held)

    @staticmethod
    def _refuse_immutable_delete(workspace: Workspace, package, tag: dict | None) -> None:
        """The Confirm step of deleting an immutable tag, for a viewer who may not: the API's refusal."""
        if tag is not None and not tag["deletable"]:
            refusal = TagImmutable(workspace.slug, package.name, tag["name"], tag["digest"], tag["protection"])
            raise RegistryError("DENIED", refusal.delete_message())

    async def delete_tag(self, request: web.Request) -> web.Response:
        workspace, member = await self.confirmed_delete(request)
        package = await ops.package_for(self.store, workspace, member, request.match_info["image"], "write", "delete",
                                        hide_unreadable=True)
        tag = request.match_info["tag"]
        await ops.delete_tag(self.store, workspace, member, package, tag)
        return self.redirect(request, f"/ui/{workspace.slug}/packages/{package.name}", (
            f"Tag {tag} deleted: it can no longer be pulled. "
            "Deleting a tag does not free storage at once; the space comes back after cleanup runs (see Storage)."))

    # -- storage ------------------------------------------------------------------------
    async def storage(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        report = await ops.storage_report(self.store, self.collector, workspace, member)
        return self.render(request, "storage.html", {**self.nav(workspace, member), "report": report})

    async def collect(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        data = await self.form(request)
        if data.get("action") != "collect":
            raise RegistryError("INVALID_REQUEST", "unknown action")
        result = await ops.collect_now(self.collector, workspace, member)
        return self.redirect(request, f"/ui/{workspace.slug}/storage", (
            f"Cleanup finished: freed {human_bytes(result.get('freed_bytes', 0))} "
            f"({result.get('blobs_deleted', 0)} blobs, {result.get('manifests_deleted', 0)} manifests)."))

    # -- the Container settings (immutable tags) -----------------------------------------
    # One form, round-tripped: Add rule, Remove, Test (the pattern tester) re-render it as edited;
    # only Save writes. Edit is changing a row's fields and saving.
    async def container_settings(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        require_workspace_admin(workspace, member, "the Container settings page")
        settings = await self.store.immutable_tags(workspace.slug)
        return self._settings_page(request, workspace, member, settings.protect,
                                   [{"name": r.name, "pattern": r.pattern} for r in settings.rules])

    async def edit_container_settings(self, request: web.Request) -> web.Response:
        workspace, member = self.viewer(request)
        require_workspace_admin(workspace, member, "changing the Container settings")
        data = await self.form(request)
        protect = str(data.get("protect", "none"))
        names, patterns = data.getall("rule_name", []), data.getall("rule_pattern", [])
        rows = [{"name": str(n).strip(), "pattern": str(p)} for n, p in zip(names, patterns, strict=False)]
        action = data.get("action")
        if action == "add":
            return self._settings_page(request, workspace, member, protect, rows + [{"name": "", "pattern": ""}])
        if isinstance(action, str) and action.startswith("remove-"):
            keep = [r for i, r in enumerate(rows) if f"remove-{i}" != action]
            return self._settings_page(request, workspace, member, protect, keep)
        if action == "test":
            sample = str(data.get("sample", "")).strip()
            if not is_tag(sample):
                answer = (f"'{sample}' is not a tag: letters, digits, '_', '.' and '-', at most 128 characters, "
                          "not starting with '.' or '-'.")
            else:
                answer = check_sample(protect, [Rule(r["name"], r["pattern"]) for r in rows], sample)
            return self._settings_page(request, workspace, member, protect, rows, sample=sample, answer=answer)
        if action != "save":
            raise RegistryError("INVALID_REQUEST", "unknown action")
        filled = [r for r in rows if r["name"] or r["pattern"]]  # a row left empty is no rule
        settings, problems = parse_immutable_tags({"protect": protect, "rules": filled})
        if problems:
            return self._settings_page(request, workspace, member, protect, filled, problems=problems, status=400)
        await self.store.set_immutable_tags(workspace.slug, settings, member.username)
        count = len(settings.rules)
        words = {"none": "no tags are protected", "all": "all tags are protected",
                 "some": f"tags matching {count} rule{'s' if count != 1 else ''} are protected"}
        return self.redirect(request, f"/ui/{workspace.slug}/container-settings",
                             f"Container settings saved: {words[settings.protect]}.")

    def _settings_page(self, request: web.Request, workspace: Workspace, member: Principal, protect: str,
                       rows: list[dict], *, sample: str = "", answer: str | None = None,
                       problems: list[str] | None = None, status: int = 200) -> web.Response:
        problems = problems or []
        by_row = {i: [p.split(": ", 1)[-1] for p in problems if p.startswith(f"rules[{i}]")]
                  for i in range(len(rows))}
        # The API's `rules[1].pattern: ...` as the page numbers its rows: `Rule 2, pattern: ...`.
        problems = [RULE_PATH.sub(lambda m: f"Rule {int(m[1]) + 1}{', ' + m[2] if m[2] else ''}", p) for p in problems]
        return self.render(request, "container_settings.html", {
            **self.nav(workspace, member), "protect": protect if protect in PROTECT else "none", "rows": rows,
            "max_rules": MAX_RULES, "sample": sample, "answer": answer, "problems": problems, "by_row": by_row,
        }, status=status)
