"""How the pipe proves who it is to a registry: the `WWW-Authenticate` challenge of `GET /v2/`, then
either HTTP Basic on every request or a bearer token from the challenge's realm, fetched with the
pipe's credentials for the scopes it needs, renewed shortly before it expires and when refused.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol
from urllib.parse import urlencode

import requests

from ..errors import Kind, RegistryError, RegistryFailure
from ..scrubbing import Secret

log = logging.getLogger(__name__)

TOKEN_MARGIN = 10.0  # renew a token this many seconds before it expires


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer", "basic" or "" (no auth)
    realm: str = ""
    service: str = ""


def parse_challenge(header: str | None) -> Challenge:
    """`Bearer realm="https://host/token",service="x"` -> Challenge (pure, unit-tested)."""
    if not header:
        return Challenge("")
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for part in _split_params(rest):
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return Challenge(scheme.lower(), params.get("realm", ""), params.get("service", ""))


def _split_params(text: str) -> Iterable[str]:
    """Split `a="x,y",b=z` on the commas outside quotes."""
    part, quoted = [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            yield "".join(part)
            part = []
        else:
            part.append(char)
    if part:
        yield "".join(part)


class Auth(Protocol):
    """What the transport asks of the credentials, per request."""

    def headers(self) -> tuple[dict[str, str], object]:
        """The headers for the next request, and a mark of the credential they carry."""
        ...

    def refused(self, mark: object) -> bool:
        """The registry answered 401 to the credential `mark`: renew it; False when that cannot help."""
        ...


class Anonymous:
    def headers(self) -> tuple[dict[str, str], object]:
        return {}, None

    def refused(self, mark: object) -> bool:
        return False


class Basic:
    def __init__(self, username: str, token: Secret) -> None:
        self.username = username
        self.token = token

    def headers(self) -> tuple[dict[str, str], object]:
        pair = f"{self.username}:{self.token.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}, None

    def refused(self, mark: object) -> bool:
        return False


class Bearer:
    """A token for `scopes` from the challenge's realm; thread-safe (parallel uploaders share it).

    `fetch(url, credentials)` is the transport's GET of the token endpoint (retried like any request).
    """

    def __init__(self, challenge: Challenge, username: str, token: Secret, scopes: list[str],
                 fetch: Callable[[str, tuple[str, str] | None], requests.Response]) -> None:
        self.challenge = challenge
        self.username = username
        self.token = token
        self.scopes = scopes
        self.fetch = fetch
        self.bearer: str | None = None
        self.expires = 0.0
        self.lock = threading.Lock()

    def headers(self) -> tuple[dict[str, str], object]:
        with self.lock:
            if self.bearer is None or time.monotonic() > self.expires:
                if self.bearer is not None:
                    log.debug("The registry token is about to expire: fetching a new one")
                self._renew()
            return {"Authorization": f"Bearer {self.bearer}"}, self.bearer

    def refused(self, mark: object) -> bool:
        with self.lock:
            if self.bearer == mark:
                log.debug("The registry refused the token (expired?): fetching a new one")
                self._renew()
        return True

    def granted(self, repository: str) -> frozenset[str] | None:
        """The actions the current token's `access` claim grants on `repository`; None when the token
        is not a JWT with that claim. Only read, never trusted for anything but a dry run's answer."""
        with self.lock:
            if self.bearer is None:
                self._renew()
            bearer = self.bearer or ""
        parts = bearer.split(".")
        if len(parts) != 3:
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            access = claims["access"]
            return frozenset(action for entry in access if entry.get("type") == "repository" and
                             entry.get("name") == repository for action in entry.get("actions") or [])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def _renew(self) -> None:
        query = [("service", self.challenge.service)] if self.challenge.service else []
        query += [("scope", scope) for scope in self.scopes]
        realm = self.challenge.realm
        # No username: an anonymous token, as Docker Hub gives for public images.
        credentials = (self.username, self.token.reveal()) if self.username else None
        response = self.fetch(f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}", credentials)
        try:
            body = response.json()
            bearer = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as exc:
            raise RegistryFailure(RegistryError(Kind.OTHER, f"the token endpoint {realm} answered without a token",
                                                False)) from exc
        if not bearer:
            raise RegistryFailure(RegistryError(Kind.OTHER, "the token endpoint answered without a token", False))
        self.bearer = str(bearer)
        # Renew a little before expiry (a quarter of a short lifetime), so long pushes rarely meet a 401.
        self.expires = time.monotonic() + expires_in - min(TOKEN_MARGIN, expires_in / 4)


def for_challenge(challenge: Challenge, username: str, token: Secret, scopes: list[str],
                  fetch: Callable[[str, tuple[str, str] | None], requests.Response]) -> Auth:
    if challenge.scheme == "bearer":
        return Bearer(challenge, username, token, scopes, fetch)
    if challenge.scheme == "basic" and username:
        return Basic(username, token)
    return Anonymous()
