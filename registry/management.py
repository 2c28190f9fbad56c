"""What the management API and the web pages do, whatever form they answer in.

Each function has the credentials (a `Principal`: a member's own token, a scoped API token,
or pipeline credentials) checked by `access.py` (`allows`; for a package route `check_package`,
as on /v2/; the `require_*` checks) and raises `RegistryError`; the JSON API turns that into the
OCI error form, the pages into an HTML page with the same status. The pages alone report a
package the viewer may not read as missing (see `package_for`). Reads and writes go through the
`Store`; `views` shapes the answers.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import views
from .access import (
    allows,
    check_package,
    is_workspace_admin,
    require_admin_on,
    require_admin_somewhere,
    require_member,
    require_role_somewhere,
    require_workspace_admin,
)
from .auth import WWW_BASIC, CredentialsExpired, Principal, identify
from .config import Config, Workspace
from .errors import RegistryError
from .gc import Collector
from .immutable_tags import ImmutableTags, parse_immutable_tags
from .manifests import IMAGE_TYPES, parse_manifest
from .metadata import Package
from .names import MAX_REPOSITORY_LENGTH, REPOSITORY_RE, is_slug, is_tag
from .store import Store


def principals(config: Config, root: Path | None, username: str, token: str,
               slug: str | None = None) -> list[Principal]:
    """Who these credentials are, per workspace where they are valid (only `slug` when given).

    The one credential check of the management API (HTTP Basic) and of the pages' login:
    members' own tokens, email usernames with API tokens (their scopes in `actions`), and
    pipeline credentials. Right pipeline credentials past their expiry: 401 saying so.
    """
    if slug is not None and not is_slug(slug):
        return []
    try:
        return identify(config, root, username, token, slug)
    except CredentialsExpired as exc:
        raise RegistryError("UNAUTHORIZED", str(exc), headers=WWW_BASIC) from None


def basic_principal(config: Config, root: Path, slug: str, username: str, token: str) -> Principal:
    """The credentials as they may act in workspace `slug`; 401 when they are not valid there."""
    found = principals(config, root, username, token, slug)
    if not found:
        raise RegistryError("UNAUTHORIZED", "invalid username or token for this workspace", headers=WWW_BASIC)
    return found[0]


async def package_for(store: Store, workspace: Workspace, principal: Principal, name: str, needed: str,
                      action: str | None = None, *, hide_unreadable: bool = False) -> Package:
    """The package, if the credentials may do `action` (by default the one `needed` implies) on it.

    `hide_unreadable` (the pages): a package the viewer may not read is reported missing (404),
    as the pages never show what one may not read.
    """
    package = await store.package(workspace.slug, name) if REPOSITORY_RE.match(name) else None
    if hide_unreadable and (package is None or not allows(principal, package.repository, "read", "pull")):
        raise RegistryError("NAME_UNKNOWN", f"no package {name!r} in workspace {workspace.slug!r}")
    check_package(principal, f"{workspace.slug}/{name}", name, package, needed, action=action)
    assert package is not None
    return package


async def visible_packages(store: Store, workspace: Workspace, principal: Principal, *, project: str | None = None,
                           repository: str | None = None, contains: str = "") -> list[Package]:
    """The workspace's packages the credentials may read, narrowed to a project, a repository, a name part."""
    return [
        p for p in await store.packages(workspace.slug)
        if allows(principal, p.repository, "read", "pull")
        and (repository is None or p.repository == repository)
        and (project is None or workspace.repositories.get(p.repository) == project)
        and contains in p.name
    ]


async def summaries(store: Store, workspace: Workspace, packages: list[Package]) -> list[dict]:
    figures = await store.package_figures(packages)
    return [views.package_summary(p, figures[p.id], workspace.repositories.get(p.repository)) for p in packages]


async def create_package(store: Store, workspace: Workspace, principal: Principal, name: object,
                         repository: object) -> dict:
    longest = MAX_REPOSITORY_LENGTH - len(workspace.slug) - 1  # `<workspace>/<name>` is the /v2/ name
    if not isinstance(name, str) or not REPOSITORY_RE.match(name) or len(name) > longest:
        raise RegistryError(
            "NAME_INVALID",
            f"name must be lowercase letters, digits and separators (. _ - /), at most {longest} characters",
        )
    if not isinstance(repository, str) or repository not in workspace.repositories:
        raise RegistryError(
            "INVALID_REQUEST", f"repository must be one of the workspace's repositories, got {repository!r}"
        )
    require_admin_on(principal, repository, "creating a package")
    package = await store.create_package(workspace.slug, name, repository)
    if package is None:
        raise RegistryError(
            "NAME_EXISTS", f"package {name!r} already exists in workspace {workspace.slug!r}", status=409
        )
    return (await summaries(store, workspace, [package]))[0]


async def details(store: Store, workspace: Workspace, package: Package) -> dict:
    contents = await store.package_contents(package)
    return views.package_details(package, contents, workspace.repositories.get(package.repository))


async def image_config(store: Store, package: Package, config_digest: str) -> dict | None:
    """The image config blob (small JSON), or None when it cannot be read."""
    try:
        doc = json.loads(await store.read_blob(package, config_digest))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


async def tag_details(store: Store, package: Package, tag: str) -> dict:
    record = await store.resolve(package, tag) if is_tag(tag) else None
    if record is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")
    parsed = parse_manifest(record.body, record.media_type)
    if record.media_type in IMAGE_TYPES:
        config = await image_config(store, package, parsed.config.digest)
        return views.image_tag_details(tag, record, parsed, config)
    return views.index_tag_details(tag, record, parsed)


async def platforms(store: Store, package: Package, digest: str) -> list[str]:
    """`os/architecture[/variant]` of a manifest: one for an image, each of an index's (for lists)."""
    record = await store.resolve(package, digest)
    if record is None:
        return []
    parsed = parse_manifest(record.body, record.media_type)
    if record.media_type in IMAGE_TYPES:
        found = [views.platform(await image_config(store, package, parsed.config.digest))]
    else:
        found = [d.platform for d in parsed.manifests]
    return [views.platform_name(p) for p in found if p]


async def delete_tag(store: Store, workspace: Workspace, principal: Principal, package: Package, tag: str) -> None:
    """Delete a tag (an immutable one only by a workspace admin); the store schedules the collection
    that may free what it leaves."""
    admin = is_workspace_admin(workspace, principal)
    if not is_tag(tag) or not await store.delete_tag(package, tag, admin):
        raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")


async def delete_package(store: Store, workspace: Workspace, principal: Principal, package: Package) -> int:
    """Delete the image and its tags (immutable ones only by a workspace admin); returns how many tags went."""
    return await store.delete_package(package, is_workspace_admin(workspace, principal))


# -- the Container settings (immutable tags) ---------------------------------------------
async def container_settings(store: Store, workspace: Workspace, principal: Principal) -> dict:
    require_member(principal, "reading the Container settings")
    return (await store.immutable_tags(workspace.slug)).as_dict()


def settings_or_error(raw: object) -> ImmutableTags:
    """The settings a request sent; 400 listing every problem."""
    settings, problems = parse_immutable_tags(raw)
    if problems:
        raise RegistryError(
            "INVALID_REQUEST",
            f"the immutable tag settings have {len(problems)} problem(s): " + "; ".join(problems),
            detail={"problems": problems},
        )
    return settings


async def change_container_settings(store: Store, workspace: Workspace, principal: Principal,
                                    raw: object) -> dict:
    """Replace the settings (workspace admins only); they bind the next put or delete of a tag."""
    require_workspace_admin(workspace, principal, "changing the Container settings")
    settings = settings_or_error(raw)
    await store.set_immutable_tags(workspace.slug, settings, principal.username)
    return settings.as_dict()


async def storage_report(store: Store, collector: Collector, workspace: Workspace, principal: Principal) -> dict:
    require_role_somewhere(principal, "storage figures")
    figures = await store.storage_figures(workspace.slug)
    report = views.storage_report(workspace.slug, figures, store.config.grace_seconds)
    last = collector.last.get(workspace.slug)
    report["gc"] = {
        "running": workspace.slug in collector.running,
        "runs": collector.runs.get(workspace.slug, 0),
        "last": last.as_dict() if last else None,
        "next_at": collector.next_run(workspace.slug),
    }
    return report


async def collect_now(collector: Collector, workspace: Workspace, principal: Principal) -> dict:
    """Run a collection now and return its result (an extension for tests and operators)."""
    require_admin_somewhere(principal, "running a collection")
    collector.schedule(workspace.slug)
    await collector.wait_idle(workspace.slug)
    last = collector.last.get(workspace.slug)
    return last.as_dict() if last else {}
