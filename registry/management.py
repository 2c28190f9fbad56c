"""What the management API and the web pages do, whatever form they answer in.

Each function checks the credentials (a `Principal`: a member's own token, a scoped API token,
or pipeline credentials) itself and raises `RegistryError`; the JSON API turns that into the
OCI error form, the pages into an HTML page with the same status. Every check is the one access
rule (`access.allows`; for a package route `access.check_package`, as on /v2/); the pages alone
report a package the viewer may not read as missing (see `package_for`).
"""
from __future__ import annotations

import json
from pathlib import Path

from .access import allows, allows_somewhere, check_package
from .auth import CredentialsExpired, Principal, identify, role_at_least
from .catalog import _iso, package_details, package_summaries, storage
from .config import Config, Workspace
from .errors import RegistryError
from .gc import Collector
from .manifests import IMAGE_TYPES, parse_manifest
from .metadata import Package
from .names import MAX_REPOSITORY_LENGTH, REPOSITORY_RE, is_slug, is_tag
from .store import Store

WWW_BASIC = {"WWW-Authenticate": 'Basic realm="crg-emulator"'}
WRITE_SCOPE_MISSING = (
    "token lacks the write:package:bitbucket scope: {what} needs it; create an API token with write:package:bitbucket"
)


def principals(config: Config, root: Path | None, username: str, token: str, slug: str | None = None) -> list[Principal]:
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


def require_admin_somewhere(principal: Principal, what: str) -> None:
    """What creating a package (the pages' form) and running a collection need: `allows` admin and delete somewhere."""
    if allows_somewhere(principal, "admin", "delete"):
        return
    if not role_at_least(principal.best_role(), "admin"):
        raise RegistryError("DENIED", f"{what} needs admin permission on a repository of the workspace")
    raise RegistryError("DENIED", WRITE_SCOPE_MISSING.format(what=what))


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
    packages = await store.db(store.meta.packages, workspace.slug)
    return [
        p for p in packages
        if allows(principal, p.repository, "read", "pull")
        and (repository is None or p.repository == repository)
        and (project is None or workspace.repositories.get(p.repository) == project)
        and contains in p.name
    ]


async def summaries(store: Store, workspace: Workspace, packages: list[Package]) -> list[dict]:
    return await store.db(package_summaries, store.meta, packages, workspace.repositories)


async def create_package(store: Store, workspace: Workspace, principal: Principal, name: object, repository: object) -> dict:
    longest = MAX_REPOSITORY_LENGTH - len(workspace.slug) - 1  # `<workspace>/<name>` is the /v2/ name
    if not isinstance(name, str) or not REPOSITORY_RE.match(name) or len(name) > longest:
        raise RegistryError(
            "NAME_INVALID", f"name must be lowercase letters, digits and separators (. _ - /), at most {longest} characters"
        )
    if not isinstance(repository, str) or repository not in workspace.repositories:
        raise RegistryError("INVALID_REQUEST", f"repository must be one of the workspace's repositories, got {repository!r}")
    if not allows(principal, repository, "admin", "delete"):
        if not role_at_least(principal.role_on(repository), "admin"):
            raise RegistryError("DENIED", f"creating a package needs admin permission on repository '{repository}'")
        raise RegistryError("DENIED", WRITE_SCOPE_MISSING.format(what="creating a package"))
    package = await store.db(store.meta.create_package, workspace.slug, name, repository)
    if package is None:
        raise RegistryError("NAME_EXISTS", f"package {name!r} already exists in workspace {workspace.slug!r}", status=409)
    return (await summaries(store, workspace, [package]))[0]


async def details(store: Store, workspace: Workspace, package: Package) -> dict:
    return await store.db(package_details, store.meta, package, workspace.repositories.get(package.repository))


async def image_config(store: Store, package: Package, config_digest: str) -> dict | None:
    """The image config blob (small JSON), or None when it cannot be read."""
    try:
        raw = await store.run_io(store.blob_path(package, config_digest).read_bytes)
        doc = json.loads(raw)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _platform(doc: dict | None) -> dict | None:
    return {k: doc[k] for k in ("os", "architecture", "variant") if k in doc} if doc is not None else None


def _config_summary(doc: dict | None) -> dict | None:
    if doc is None:
        return None
    inner = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    return {
        **(_platform(doc) or {}),
        "created": doc.get("created"),
        "entrypoint": inner.get("Entrypoint"),
        "cmd": inner.get("Cmd"),
        "working_dir": inner.get("WorkingDir") or None,
        "user": inner.get("User") or None,
    }


async def tag_details(store: Store, package: Package, tag: str) -> dict:
    digest = await store.db(store.meta.tag_digest, package, tag) if is_tag(tag) else None
    record = await store.db(store.meta.manifest, package, digest) if digest else None
    if record is None:
        raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")
    parsed = parse_manifest(record.body, record.media_type)
    out = {
        "name": tag,
        "digest": record.digest,
        "media_type": record.media_type,
        "size": len(record.body) + sum(d.size for d in parsed.blobs),
        "created_at": _iso(record.created_at),
    }
    if record.media_type in IMAGE_TYPES:
        doc = await image_config(store, package, parsed.config.digest)
        out["platform"] = _platform(doc)
        out["config"] = _config_summary(doc)
        out["layers"] = [{"digest": d.digest, "size": d.size, "media_type": d.media_type} for d in parsed.layers]
    else:
        out["platforms"] = [
            {"digest": d.digest, "size": d.size, "media_type": d.media_type, "platform": d.platform}
            for d in parsed.manifests
        ]
    return out


async def platforms(store: Store, package: Package, digest: str) -> list[str]:
    """`os/architecture[/variant]` of a manifest: one for an image, each of an index's (for lists)."""
    record = await store.db(store.meta.manifest, package, digest)
    if record is None:
        return []
    parsed = parse_manifest(record.body, record.media_type)
    if record.media_type in IMAGE_TYPES:
        found = [_platform(await image_config(store, package, parsed.config.digest))]
    else:
        found = [d.platform for d in parsed.manifests]
    return ["/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k)) for p in found if p]


async def delete_tag(store: Store, collector: Collector, package: Package, tag: str) -> None:
    if not is_tag(tag) or not await store.db(store.meta.delete_tag, package, tag):
        raise RegistryError("MANIFEST_UNKNOWN", f"no tag {tag!r} in {package.workspace}/{package.name}")
    collector.schedule(package.workspace)


async def delete_package(store: Store, collector: Collector, package: Package) -> int:
    """Delete the image and its tags; returns how many tags went."""
    tags = await store.db(store.meta.delete_package, package)
    collector.schedule(package.workspace)
    return tags


async def storage_report(store: Store, collector: Collector, workspace: Workspace, principal: Principal) -> dict:
    if not allows_somewhere(principal, "read", "pull"):
        raise RegistryError("DENIED", "storage figures need a role on at least one repository of the workspace")
    figures = await store.db(storage, store.meta, workspace.slug, store.config.grace_seconds)
    last = collector.last.get(workspace.slug)
    figures["gc"] = {
        "running": workspace.slug in collector.running,
        "runs": collector.runs.get(workspace.slug, 0),
        "last": last.as_dict() if last else None,
        "next_at": collector.next_run(workspace.slug),
    }
    return figures


async def collect_now(collector: Collector, workspace: Workspace, principal: Principal) -> dict:
    """Run a collection now and return its result (an extension for tests and operators)."""
    require_admin_somewhere(principal, "running a collection")
    collector.schedule(workspace.slug)
    await collector.wait_idle(workspace.slug)
    last = collector.last.get(workspace.slug)
    return last.as_dict() if last else {}
