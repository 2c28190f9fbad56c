"""Who may do what to which package: the decision every /v2/ request goes through."""
from __future__ import annotations

from dataclasses import dataclass

from .auth import Claims, Scope, TokenIssuer, can, role_at_least
from .config import Config
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


def decide(
    config: Config,
    claims: Claims,
    repository: Repository,
    package: Package | None,
    action: str,
    challenge: Challenge,
    scope: Scope,
) -> None:
    """Raise unless the token grants `action` and the member's current role still allows it.

    Whether a package exists is told only to members who could create or push packages in
    that workspace, with a token for that workspace's credentials; everyone else gets the same
    answer for a missing package and a hidden one.
    """
    if repository.workspace not in claims.workspaces:
        # A token for credentials of another workspace (the same username may exist in both)
        # says nothing about this one, not even which packages exist.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")
    member = config.member(repository.workspace, claims.subject)
    role = member.role_on(package.repository) if (member and package) else None
    if can(role, action):
        if claims.allows(repository.name, action):
            return
        # The role allows it but the token was issued for less: the client asks again.
        raise unauthorized(challenge, scope, "token does not grant this action", "insufficient_scope")
    if package is None and member is not None and role_at_least(member.best_role(), "write"):
        hint = " before pushing" if action == "push" else ""
        raise RegistryError(
            "NAME_UNKNOWN",
            f"package {repository.name} does not exist: create the package '{repository.package}' in "
            f"workspace '{repository.workspace}' and link it to a repository{hint}",
            detail={"name": repository.name},
        )
    if role is not None:
        needed = {"pull": "read", "push": "write", "delete": "admin"}[action]
        raise RegistryError(
            "DENIED",
            f"{action} on {repository.name} needs {needed} permission on repository "
            f"'{package.repository}'; user '{claims.subject}' has {role}",
        )
    raise RegistryError("DENIED", GENERIC_DENIED)


def repository_or_error(name: str) -> Repository:
    try:
        return parse_repository(name)
    except NameError_ as exc:
        raise RegistryError(exc.code, str(exc)) from None
