"""The token endpoint: Basic credentials in, a bearer token for the granted scope out."""
from __future__ import annotations

from aiohttp import web

from .access import granted_actions
from .auth import WWW_BASIC, CredentialsExpired, Principal, Scope, TokenIssuer, identify, parse_basic, parse_scope
from .errors import RegistryError
from .names import NameError_, parse_repository
from .store import Store


class TokenHandler:
    def __init__(self, store: Store, issuer: TokenIssuer) -> None:
        self.store = store
        self.issuer = issuer

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/token", self.token), web.post("/token", self.token)]

    async def _credentials(self, request: web.Request) -> tuple[str, str] | None:
        creds = parse_basic(request.headers.get("Authorization"))
        if creds is None and request.method == "POST":
            # OAuth2 password grant, as containerd-based clients send it.
            form = await request.post()
            if form.get("grant_type") == "password" and form.get("username"):
                creds = (str(form["username"]), str(form.get("password", "")))
        return creds

    async def token(self, request: web.Request) -> web.Response:
        creds = await self._credentials(request)
        if creds is None:
            raise RegistryError(
                "UNAUTHORIZED", "credentials required: log in with your username and token", headers=WWW_BASIC
            )
        username, secret = creds
        try:
            principals = identify(self.store.config, self.store.root, username, secret)
        except CredentialsExpired as exc:
            raise RegistryError("UNAUTHORIZED", str(exc), headers=WWW_BASIC) from None
        if not principals:
            raise RegistryError("UNAUTHORIZED", "invalid username or token", headers=WWW_BASIC)
        scopes = request.query.getall("scope", [])
        if request.method == "POST" and not scopes:
            form = await request.post()
            scopes = " ".join(map(str, form.getall("scope", []))).split()
        by_workspace = {p.workspace: p for p in principals}
        granted = [await self._grant(by_workspace, s) for s in scopes]
        body = self.issuer.issue(username, [g for g in granted if g is not None], principals=principals)
        return web.json_response(body)

    async def _grant(self, principals: dict[str, Principal], text: str) -> Scope | None:
        """The requested actions the access rule grants on the package (`access.granted_actions`)."""
        scope = parse_scope(text)
        if scope is None:
            return None
        try:
            repository = parse_repository(scope.name)
        except NameError_:
            return None
        principal = principals.get(repository.workspace)
        package = await self.store.package(repository.workspace, repository.package) if principal is not None else None
        return Scope(scope.type, scope.name, granted_actions(principal, package, scope.actions))
