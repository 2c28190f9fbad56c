"""Who is looking at a page: the session's member, with the roles its login allowed.

The credentials are checked once, at login, by the same function as the management API's
HTTP Basic (`management.basic_member`); the session keeps the roles that check returned.
Every request takes, per repository, the lower of those and the member's role in the
config now, so a session never grants more than the credentials or the config allow.
When the credentials allowed exactly the configured roles, the session says only that
(`AS_CONFIGURED`), which keeps the cookie small for workspaces with many repositories.
"""
from __future__ import annotations

from dataclasses import replace

from ..config import ROLE_RANK, Config, Member, Workspace
from ..management import basic_member
from .session import Session

AS_CONFIGURED = "as-configured"


def login_roles(config: Config, username: str, token: str) -> dict[str, dict[str, str]]:
    """Workspace -> repository -> role for these credentials; empty when they are valid nowhere."""
    granted: dict[str, dict[str, str]] = {}
    for slug, workspace in config.workspaces.items():
        member = basic_member(config, slug, username, token)
        if member is not None:
            granted[slug] = {repo: role for repo in workspace.repositories if (role := member.role_on(repo))}
    return granted


def session_roles(config: Config, username: str, token: str) -> dict[str, dict[str, str] | str]:
    """What a session keeps of a login: per workspace, the roles or `AS_CONFIGURED`."""
    return {
        slug: AS_CONFIGURED if roles == _configured(config, slug, username) else roles
        for slug, roles in login_roles(config, username, token).items()
    }


def _configured(config: Config, slug: str, username: str) -> dict[str, str]:
    member = config.member(slug, username)
    workspace = config.workspaces.get(slug)
    if member is None or workspace is None:
        return {}
    return {repo: role for repo, role in member.roles.items() if repo in workspace.repositories}


def member_in(config: Config, session: Session | None, slug: str) -> tuple[Workspace, Member] | None:
    """The workspace and the member as this session may act in it, or None."""
    if session is None or session.username is None or slug not in session.roles:
        return None
    workspace = config.workspaces.get(slug)
    member = config.member(slug, session.username)
    if workspace is None or member is None:
        return None
    granted = session.roles[slug]
    if granted == AS_CONFIGURED:
        granted = _configured(config, slug, session.username)
    if not isinstance(granted, dict):
        return None
    roles = {}
    for repo, role in granted.items():
        now = member.role_on(repo)
        if now is not None and role in ROLE_RANK:
            roles[repo] = min(role, now, key=ROLE_RANK.__getitem__)
    return workspace, replace(member, roles=roles)
