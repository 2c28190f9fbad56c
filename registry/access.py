"""Who may do what to which package: the one module that decides, for /v2/, the token endpoint, the
management API and the pages. `auth.py` only says who the credentials are.

`allows` is the rule. `granted_actions` applies it to a token request (what the token endpoint
grants); `check_package` applies it to a package route and, when it refuses, says why (as much as
the credentials may know); `decide` adds the bearer token's own grant for /v2/ (`token_grants`,
`token_principal`); `may_mount_from` is the pull a mount needs on its `from` repository, decided
before the handler runs, as distribution's app.go adds it to a request's access records.
"""
from __future__ import annotations

from dataclasses import dataclass

from .auth import MEMBER, PIPELINE, Claims, Principal, Scope
from .config import ALL_ACTIONS, ROLE_RANK, Config, Workspace
from .errors import RegistryError
from .metadata import Package
from .names import NameError_, Repository, parse_repository

GENERIC_DENIED = "requested access to the resource is denied"
WRITE_SCOPE_MISSING = (
    "token lacks the write:package:bitbucket scope: {what} needs it; create an API token with write:package:bitbucket"
)


@dataclass(frozen=True)
class Challenge:
    realm: str
    service: str

    def header(self, scope: Scope | None = None, error: str | None = None) -> str:
        parts = [f'Bearer realm="{self.realm}"', f'service="{self.service}"']
        if scope is not None:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return ",".join(parts)


def unauthorized(challenge: Challenge, scope: Scope | None, message: str, error: str | None = None) -> RegistryError:
    return RegistryError(
        "UNAUTHORIZED", message, headers={"WWW-Authenticate": challenge.header(scope, error)}
    )


ROLE_FOR_ACTION = {"pull": "read", "push": "write", "delete": "admin"}
ACTION_FOR_ROLE = {role: action for action, role in ROLE_FOR_ACTION.items()}


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


def allows(principal: Principal, repository: str | None, needed: str, action: str) -> bool:
    """The rule: at least the `needed` role on the repository a package is linked to, and credentials
    whose scopes allow `action` (read-scoped API tokens never delete; pipeline credentials only pull
    and push)."""
    return role_at_least(principal.role_on(repository), needed) and action in principal.actions


def granted_actions(principal: Principal | None, package: Package | None, wanted: frozenset[str]) -> frozenset[str]:
    """The actions of a token request that `allows` on the package: what the token endpoint grants
    (nothing for a missing package, or for credentials not valid in its workspace)."""
    if principal is None or package is None:
        return frozenset()
    return frozenset(a for a in wanted if allows(principal, package.repository, ROLE_FOR_ACTION[a], a))


def allows_somewhere(principal: Principal, needed: str, action: str) -> bool:
    """`allows` on at least one repository of the workspace (creating a package, a collection, storage)."""
    return any(allows(principal, repository, needed, action) for repository in principal.roles)


def is_workspace_admin(workspace: Workspace, principal: Principal) -> bool:
    """A workspace admin's own credentials (a member's token or an API token; never pipeline credentials):
    who manages the Container settings and may delete an immutable tag."""
    return principal.kind != PIPELINE and principal.username in workspace.admins


def require_admin_on(principal: Principal, repository: str, what: str) -> None:
    """`allows` admin and delete on the repository (creating a package there)."""
    if allows(principal, repository, "admin", "delete"):
        return
    if not role_at_least(principal.role_on(repository), "admin"):
        raise RegistryError("DENIED", f"{what} needs admin permission on repository '{repository}'")
    raise RegistryError("DENIED", WRITE_SCOPE_MISSING.format(what=what))


def require_admin_somewhere(principal: Principal, what: str) -> None:
    """What creating a package (the pages' form) and running a collection need: `allows` admin and delete somewhere."""
    if allows_somewhere(principal, "admin", "delete"):
        return
    if not role_at_least(principal.best_role(), "admin"):
        raise RegistryError("DENIED", f"{what} needs admin permission on a repository of the workspace")
    raise RegistryError("DENIED", WRITE_SCOPE_MISSING.format(what=what))


def require_role_somewhere(principal: Principal, what: str) -> None:
    """`allows` pull on at least one repository (the storage figures)."""
    if not allows_somewhere(principal, "read", "pull"):
        raise RegistryError("DENIED", f"{what} need a role on at least one repository of the workspace")


def require_member(principal: Principal, what: str) -> None:
    """A member's own credentials or an API token; never pipeline credentials (reading the Container settings)."""
    if principal.kind == PIPELINE:
        raise RegistryError("DENIED", f"{what} is for the workspace's members; pipeline credentials are not one")


def require_workspace_admin(workspace: Workspace, principal: Principal, what: str) -> None:
    """Changing the Container settings: a workspace admin's credentials, with the write scope."""
    if not is_workspace_admin(workspace, principal):
        admins = ", ".join(sorted(workspace.admins)) or "none configured"
        raise RegistryError("DENIED", f"{what} needs a workspace admin of {workspace.slug} (admins: {admins}); "
                                      f"user '{principal.username}' is not one")
    if "delete" not in principal.actions:
        raise RegistryError("DENIED", WRITE_SCOPE_MISSING.format(what=what))


def missing_package(workspace: str, package: str, hint: str = "") -> RegistryError:
    return RegistryError(
        "NAME_UNKNOWN",
        f"package {workspace}/{package} does not exist: create the package '{package}' in "
        f"workspace '{workspace}' and link it to a repository{hint}",
        detail={"name": f"{workspace}/{package}"},
    )


def check_package(principal: Principal, name: str, package_name: str, package: Package | None, needed: str,
                  hint: str = "", action: str | None = None) -> None:
    """`allows` for a package route of /v2/ or the management API; raise, saying as much as the credentials may know.

    - Enough role on the package's repository but scopes that forbid `action`: 403 DENIED naming
      the missing scope (pipeline credentials: that they only pull and push).
    - Otherwise, credentials that may push somewhere in the workspace are told the truth: a
      missing package is 404 NAME_UNKNOWN, an existing one is 403 DENIED naming its repository.
    - Everyone else gets 403 DENIED `requested access to the resource is denied`, the same
      for an existing package and a missing one (a role on the package: the role is named).
    """
    role = principal.role_on(package.repository) if package else None
    action = action or ACTION_FOR_ROLE[needed]
    if allows(principal, package.repository if package else None, needed, action):
        return
    told = allows_somewhere(principal, "write", "push")  # may learn whether a package exists, and its repository
    if role_at_least(role, needed):
        if principal.kind == PIPELINE:
            raise RegistryError(
                "DENIED",
                f"pipeline credentials reach only pull and push: {action} on {name} needs a member's credentials "
                f"or an API token with write:package:bitbucket",
            )
        raise RegistryError(
            "DENIED",
            f"token lacks the write:package:bitbucket scope: {action} on {name} needs it, and user "
            f"'{principal.username}' logged in with an API token scoped read:package:bitbucket only; "
            f"create an API token with write:package:bitbucket",
        )
    if package is None:
        if told:
            raise missing_package(principal.workspace, package_name, hint)
        raise RegistryError("DENIED", GENERIC_DENIED)
    if principal.kind == PIPELINE and told:
        raise RegistryError(
            "DENIED",
            f"pipeline credentials for repository {principal.repository} reach only its packages; "
            f"package {name} is linked to repository {package.repository}",
        )
    if role is not None or told:
        raise RegistryError(
            "DENIED",
            f"{action} on {name} needs {needed} permission on repository '{package.repository}'; "
            f"user '{principal.username}' has {role or 'no role there'}",
        )
    raise RegistryError("DENIED", GENERIC_DENIED)


def token_grants(claims: Claims, repository: str, action: str) -> bool:
    """Whether the token was issued for `action` on the repository (`workspace/package`)."""
    return action in claims.access.get(repository, frozenset())


def token_principal(config: Config, claims: Claims, workspace: str) -> Principal | None:
    """The credentials a token was issued for, in `workspace`, with the member's current roles;
    None when they are not valid there (any more)."""
    if workspace not in claims.workspaces:
        return None
    claim = claims.credentials.get(workspace) or {"kind": MEMBER, "actions": sorted(ALL_ACTIONS)}
    actions = frozenset(a for a in claim.get("actions", []) if a in ALL_ACTIONS)
    if claim.get("kind") == PIPELINE:
        repository = str(claim.get("repository"))
        ws = config.workspaces.get(workspace)
        if ws is None or repository not in ws.repositories:
            return None
        return Principal(workspace, claims.subject, PIPELINE, actions, {repository: "write"}, repository)
    member = config.member(workspace, claims.subject)
    if member is None:
        return None
    return Principal(workspace, claims.subject, str(claim.get("kind", MEMBER)), actions, member.roles)


def decide(
    config: Config,
    claims: Claims,
    repository: Repository,
    package: Package | None,
    action: str,
    challenge: Challenge,
    scope: Scope,
) -> None:
    """Raise unless the token grants `action` and the credentials' current role still allows it."""
    principal = token_principal(config, claims, repository.workspace)
    if principal is None:
        # A token for credentials of another workspace (the same username may exist in both)
        # says nothing about this one, not even which packages exist.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")
    hint = " before pushing" if action == "push" else ""
    check_package(principal, repository.name, repository.package, package, ROLE_FOR_ACTION[action], hint)
    if not token_grants(claims, repository.name, action):
        # The role allows it but the token was issued for less: the client asks again.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")


def may_mount_from(config: Config, claims: Claims, origin: Repository, target: Package,
                   source: Package | None) -> bool:
    """Pull on a mount's `from`: a package of the target's workspace, a token issued for pulling it,
    and credentials the rule lets pull it. False makes the request a plain upload, never a refusal."""
    if source is None or origin.workspace != target.workspace or not token_grants(claims, origin.name, "pull"):
        return False
    principal = token_principal(config, claims, origin.workspace)
    return principal is not None and allows(principal, source.repository, "read", "pull")


def repository_or_error(name: str) -> Repository:
    try:
        return parse_repository(name)
    except NameError_ as exc:
        raise RegistryError(exc.code, str(exc)) from None
