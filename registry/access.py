"""Who may do what to which package: the one rule, for /v2/, the token endpoint, the management API and the pages.

`allows` decides; `check_package` applies it to a package route and, when it refuses, says why
(as much as the credentials may know); `decide` adds the bearer token's own grant for /v2/.
"""
from __future__ import annotations

from dataclasses import dataclass

from .auth import PIPELINE, Claims, Principal, Scope, TokenIssuer, role_at_least
from .config import Config, Workspace
from .errors import RegistryError
from .metadata import Package
from .names import NameError_, Repository, parse_repository

GENERIC_DENIED = "requested access to the resource is denied"


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


def bearer_claims(issuer: TokenIssuer, header: str | None) -> Claims | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return issuer.verify(header[7:].strip())


ROLE_FOR_ACTION = {"pull": "read", "push": "write", "delete": "admin"}
ACTION_FOR_ROLE = {role: action for action, role in ROLE_FOR_ACTION.items()}


def allows(principal: Principal, repository: str | None, needed: str, action: str) -> bool:
    """The rule: at least the `needed` role on the repository a package is linked to, and credentials
    whose scopes allow `action` (read-scoped API tokens never delete; pipeline credentials only pull
    and push)."""
    return role_at_least(principal.role_on(repository), needed) and action in principal.actions


def allows_somewhere(principal: Principal, needed: str, action: str) -> bool:
    """`allows` on at least one repository of the workspace (creating a package, a collection, storage)."""
    return any(allows(principal, repository, needed, action) for repository in principal.roles)


def is_workspace_admin(workspace: Workspace, principal: Principal) -> bool:
    """A workspace admin's own credentials (a member's token or an API token; never pipeline credentials):
    who manages the Container settings and may delete an immutable tag."""
    return principal.kind != PIPELINE and principal.username in workspace.admins


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
    principal = claims.principal(config, repository.workspace)
    if principal is None:
        # A token for credentials of another workspace (the same username may exist in both)
        # says nothing about this one, not even which packages exist.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")
    hint = " before pushing" if action == "push" else ""
    check_package(principal, repository.name, repository.package, package, ROLE_FOR_ACTION[action], hint)
    if not claims.allows(repository.name, action):
        # The role allows it but the token was issued for less: the client asks again.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")


def repository_or_error(name: str) -> Repository:
    try:
        return parse_repository(name)
    except NameError_ as exc:
        raise RegistryError(exc.code, str(exc)) from None
