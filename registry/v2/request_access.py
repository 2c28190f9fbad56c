"""What every /v2/ handler needs first: the bearer token, the package, and the access decision."""
from __future__ import annotations

from aiohttp import web

from ..access import Challenge, decide, may_mount_from, repository_or_error, unauthorized
from ..auth import Claims, Scope, TokenIssuer, bearer_claims
from ..errors import RegistryError
from ..metadata import Package
from ..names import NameError_, parse_digest, parse_repository
from ..store import Store

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
PUSH_SCOPE = frozenset({"pull", "push"})


def digest_param(value: str | None) -> str:
    if not value:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    try:
        return parse_digest(value)
    except NameError_ as exc:
        raise RegistryError(exc.code, str(exc)) from None


def content_length(request: web.Request) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None:
        return None
    if not value.isdigit():
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}")
    return int(value)


class RequestAccess:
    def __init__(self, store: Store, issuer: TokenIssuer) -> None:
        self.store = store
        self.issuer = issuer

    def challenge(self, request: web.Request) -> Challenge:
        return Challenge(f"{request.scheme}://{request.host}/token", self.issuer.service)

    def claims(self, request: web.Request, scope: Scope | None) -> Claims:
        claims = bearer_claims(self.issuer, request.headers.get("Authorization"))
        if claims is None:
            raise unauthorized(self.challenge(request), scope, "authentication required: log in to the registry")
        return claims

    async def package(self, request: web.Request, action: str) -> tuple[Package, Claims]:
        """The package named in the path, once the token and the current role allow `action` on it."""
        repository = repository_or_error(request.match_info["name"])
        scope = Scope("repository", repository.name, PUSH_SCOPE if action == "push" else frozenset({action}))
        claims = self.claims(request, scope)
        package = await self.store.package(repository.workspace, repository.package)
        decide(self.store.config, claims, repository, package, action, self.challenge(request), scope)
        assert package is not None
        return package, claims

    async def mount_source(self, request: web.Request, package: Package, claims: Claims) -> tuple[str, Package] | None:
        """The blob a push's `mount` names and the package its `from` names, when access allows pulling
        it there (`access.may_mount_from`); None makes the request a plain upload."""
        digest, source = request.query.get("mount"), request.query.get("from")
        if not digest or not source:
            return None
        digest = digest_param(digest)
        try:
            origin = parse_repository(source)
        except NameError_:
            return None
        source_package = await self.store.package(origin.workspace, origin.package)
        if not may_mount_from(self.store.config, claims, origin, package, source_package):
            return None
        assert source_package is not None
        return digest, source_package
