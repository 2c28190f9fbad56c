"""Authentication: who a set of credentials is, and bearer tokens (issued, parsed and verified).

This module never decides what credentials may do: `access.py` does, for the token endpoint
(which scopes to grant) and for every request (the token's claims and the member's current role,
checked again each time, so a deleted package or a changed role takes effect at once).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import jwt

from . import pipeline_credentials
from .config import ROLE_RANK, Config, Member, refused_token_kind, sha256_hex

KNOWN_ACTIONS = frozenset({"pull", "push", "delete", "*"})
WWW_BASIC = {"WWW-Authenticate": 'Basic realm="crg-emulator"'}  # the challenge wherever Basic credentials are due


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


MEMBER, API_TOKEN, PIPELINE = "member", "api_token", "pipeline"  # the kinds of credentials
PIPELINE_ACTIONS = frozenset({"pull", "push"})  # what Pipelines' per-step credentials are for, nothing more


@dataclass(frozen=True)
class Principal:
    """Who a set of credentials is, in one workspace, and the most those credentials allow."""

    workspace: str
    username: str
    kind: str  # MEMBER (own token, every scope), API_TOKEN (scoped) or PIPELINE (one repository, expires)
    actions: frozenset[str]  # the ceiling the token's scopes put on every role
    roles: Mapping[str, str]  # repository slug -> role
    repository: str | None = None  # PIPELINE: the one repository whose packages they reach
    expires_at: float | None = None

    def role_on(self, repository: str | None) -> str | None:
        return self.roles.get(repository) if repository else None

    def best_role(self) -> str | None:
        ranked = sorted(self.roles.values(), key=ROLE_RANK.__getitem__)
        return ranked[-1] if ranked else None

    def claim(self) -> dict:
        return {"kind": self.kind, "actions": sorted(self.actions), "repository": self.repository}


class CredentialsExpired(Exception):
    """Right pipeline credentials, past their expiry."""

    def __init__(self, credential: pipeline_credentials.PipelineCredential) -> None:
        super().__init__(
            f"pipeline credentials expired at {credential.expiry_text()}: they are valid only during the step "
            f"they were issued for; re-run the step to get new ones"
        )


@dataclass(frozen=True)
class Claims:
    """What a verified bearer token says; `access.py` reads it."""

    subject: str
    access: dict[str, frozenset[str]]  # repository name -> granted actions
    workspaces: frozenset[str] = frozenset()  # where the credentials the token was issued for are valid
    credentials: Mapping[str, dict] = field(default_factory=dict, compare=False)  # workspace -> Principal.claim()


def parse_scope(text: str) -> Scope | None:
    """`repository:acme/app:pull,push`; None for a scope this registry does not grant."""
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or kind != "repository" or not name:
        return None
    wanted = frozenset(a for a in actions.split(",") if a in KNOWN_ACTIONS)
    if "*" in wanted:
        wanted = frozenset({"pull", "push", "delete"})
    return Scope(kind, name, wanted)


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None


def identify(config: Config, root: Path | None, username: str, token: str,
             workspace: str | None = None) -> list[Principal]:
    """The principals these credentials are, one per workspace where they are valid (only `workspace` when given).

    Every candidate is compared, hit or miss, so timing says nothing about which exist. Right
    pipeline credentials past their expiry raise CredentialsExpired, so the client is told why.
    An access token or an app password is refused whoever it belongs to, as crg.apkg.io refuses
    them: a plain "invalid username or token" (a `token_sha256` in the config may hide one).
    """
    if refused_token_kind(token):
        return []
    found = []
    for slug, ws in config.workspaces.items():
        member = ws.members.get(username)
        actions = member.match(token) if member else _dummy_compare(token)
        if actions is not None and (workspace is None or slug == workspace):
            own = member.token_sha256 is not None and hmac.compare_digest(sha256_hex(token), member.token_sha256)
            kind = MEMBER if own else API_TOKEN
            found.append(Principal(slug, username, kind, actions, member.roles))
    if found or root is None:
        return found
    credential = pipeline_credentials.lookup(root, username)
    if credential is None or not hmac.compare_digest(sha256_hex(token), credential.token_sha256):
        return []
    ws = config.workspaces.get(credential.workspace)
    if ws is None or credential.repository not in ws.repositories:
        return []
    if workspace is not None and credential.workspace != workspace:
        return []
    if credential.expired():
        raise CredentialsExpired(credential)
    return [Principal(credential.workspace, username, PIPELINE, PIPELINE_ACTIONS, {credential.repository: "write"},
                      credential.repository, credential.expires_at)]


def _dummy_compare(token: str) -> None:
    Member("", "0" * 64, {}).match(token)
    return None


def bearer_claims(issuer: TokenIssuer, header: str | None) -> Claims | None:
    """The claims of the bearer token in an Authorization header; None when there is none or it does not verify."""
    if not header or not header.lower().startswith("bearer "):
        return None
    return issuer.verify(header[7:].strip())


class TokenIssuer:
    """HS256 tokens signed with a key kept in the root, so they survive a restart."""

    def __init__(self, key: bytes, service: str, ttl_seconds: float) -> None:
        self.key = key
        self.service = service
        self.ttl = ttl_seconds

    @classmethod
    def for_root(cls, root: Path, service: str, ttl_seconds: float) -> "TokenIssuer":
        path = root / "token.key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            os.replace(tmp, path)
        return cls(path.read_bytes(), service, ttl_seconds)

    def issue(self, subject: str, access: list[Scope], workspaces: list[str] = (),
              principals: list[Principal] = ()) -> dict:
        """A bearer token; it never outlives the credentials it was issued for."""
        now = int(time.time())
        expires = now + int(self.ttl)
        for p in principals:
            if p.expires_at is not None:
                expires = min(expires, int(p.expires_at))
        workspaces = sorted({*workspaces, *(p.workspace for p in principals)})
        claims = {
            "iss": "crg-emulator",
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 1,
            "exp": expires,
            "jti": secrets.token_hex(8),
            "access": [{"type": s.type, "name": s.name, "actions": sorted(s.actions)} for s in access],
            "workspaces": workspaces,
            "credentials": {p.workspace: p.claim() for p in principals},
        }
        token = jwt.encode(claims, self.key, algorithm="HS256")
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": max(expires - now, 0), "issued_at": issued}

    def verify(self, token: str) -> Claims | None:
        try:
            raw = jwt.decode(token, self.key, algorithms=["HS256"], audience=self.service, leeway=1)
        except jwt.PyJWTError:
            return None
        access: dict[str, frozenset[str]] = {}
        for entry in raw.get("access", []):
            if isinstance(entry, dict) and entry.get("type") == "repository":
                access[str(entry.get("name"))] = frozenset(entry.get("actions", []))
        workspaces = raw.get("workspaces", [])
        credentials = raw.get("credentials", {})
        if not isinstance(credentials, dict):
            credentials = {}
        credentials = {str(k): v for k, v in credentials.items() if isinstance(v, dict)}
        return Claims(str(raw.get("sub", "")), access,
                      frozenset(map(str, workspaces if isinstance(workspaces, list) else [])), credentials)
