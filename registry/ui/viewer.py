"""Who is looking at a page: the session's credentials, with the roles their login allowed.

The credentials are checked once, at login, by the same function as the management API's
HTTP Basic (`management.principals`: members' tokens, email usernames with API tokens,
pipeline credentials); the session keeps the roles that check returned and the credentials'
kind, the actions their scopes allow and, for pipeline credentials, their repository and expiry.
Every request takes, per repository, the lower of the session's roles and the roles in the
config now, so a session never grants more than the credentials or the config allow; a session
of pipeline credentials ends when they expire.
When the credentials allowed exactly the configured roles, the session says only that
(`AS_CONFIGURED`), which keeps the cookie small for workspaces with many repositories.
"""
from __future__ import annotations

import time

from ..auth import MEMBER, PIPELINE, Principal
from ..config import ALL_ACTIONS, ROLE_RANK, Config, Workspace
from ..errors import RegistryError
from .session import Session

AS_CONFIGURED = "as-configured"


def grant_of(principal: Principal) -> dict:
    """What a session keeps of the credentials themselves (never the token)."""
    return {**principal.claim(), "expires_at": principal.expires_at}


def roles_of(config: Config, found: list[Principal]) -> dict[str, dict[str, str]]:
    """Workspace -> repository -> role allowed by these principals."""
    return {
        p.workspace: {repo: role for repo in config.workspaces[p.workspace].repositories if (role := p.role_on(repo))}
        for p in found
    }


def session_roles_of(config: Config, username: str, found: list[Principal]) -> dict[str, dict[str, str] | str]:
    """What a session keeps of a login: per workspace, the roles or `AS_CONFIGURED`."""
    return {
        slug: AS_CONFIGURED if roles == _configured(config, slug, username) else roles
        for slug, roles in roles_of(config, found).items()
    }


def _configured(config: Config, slug: str, username: str) -> dict[str, str]:
    member = config.member(slug, username)
    workspace = config.workspaces.get(slug)
    if member is None or workspace is None:
        return {}
    return {repo: role for repo, role in member.roles.items() if repo in workspace.repositories}


def member_in(config: Config, session: Session | None, slug: str) -> tuple[Workspace, Principal] | None:
    """The workspace and the credentials as this session may act in it, or None.

    Raises 401 once the session's pipeline credentials have expired.
    """
    if session is None or session.username is None or slug not in session.roles:
        return None
    workspace = config.workspaces.get(slug)
    if workspace is None:
        return None
    grant = session.grants.get(slug) or {"kind": MEMBER, "actions": sorted(ALL_ACTIONS)}
    actions = frozenset(a for a in grant.get("actions", []) if a in ALL_ACTIONS)
    kind, repository, expires_at = str(grant.get("kind", MEMBER)), grant.get("repository"), grant.get("expires_at")
    if kind == PIPELINE:
        if repository not in workspace.repositories or not isinstance(expires_at, (int, float)):
            return None
        if expires_at <= time.time():
            raise RegistryError("UNAUTHORIZED", "the pipeline credentials of this session have expired: log in again")
        configured = {repository: "write"}
    else:
        member = config.member(slug, session.username)
        if member is None:
            return None
        configured = member.roles
    granted = session.roles[slug]
    if granted == AS_CONFIGURED:
        granted = _configured(config, slug, session.username)
    if not isinstance(granted, dict):
        return None
    roles = {}
    for repo, role in granted.items():
        now = configured.get(repo)
        if now is not None and role in ROLE_RANK:
            roles[repo] = min(role, now, key=ROLE_RANK.__getitem__)
    return workspace, Principal(slug, session.username, kind, actions, roles, repository, expires_at)
