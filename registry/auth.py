"""Credentials, scopes and bearer tokens.

The token endpoint grants the intersection of the requested scope and the member's role on
the repository a package is linked to; the registry checks the token's claims and the
member's current role again on every request, so a deleted package or a changed role takes
effect at once.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from .config import ROLE_RANK, Config, Member

ACTIONS_BY_ROLE = {
    "read": frozenset({"pull"}),
    "write": frozenset({"pull", "push"}),
    "admin": frozenset({"pull", "push", "delete"}),
}
KNOWN_ACTIONS = frozenset({"pull", "push", "delete", "*"})


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


@dataclass(frozen=True)
class Claims:
    subject: str
    access: dict[str, frozenset[str]]  # repository name -> granted actions
    workspaces: frozenset[str] = frozenset()  # where the credentials the token was issued for are valid

    def allows(self, repository: str, action: str) -> bool:
        return action in self.access.get(repository, frozenset())


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


def authenticate(config: Config, username: str, token: str, workspace: str | None = None) -> list[str]:
    """Workspaces in which these credentials are valid (only `workspace` when given).

    Every candidate is compared, hit or miss, so timing says nothing about which exist.
    """
    valid = []
    for slug, ws in config.workspaces.items():
        member = ws.members.get(username)
        ok = member.token_matches(token) if member else _dummy_compare(token)
        if ok and (workspace is None or slug == workspace):
            valid.append(slug)
    return valid


def _dummy_compare(token: str) -> bool:
    Member("", "0" * 64, {}).token_matches(token)
    return False


def can(role: str | None, action: str) -> bool:
    return role is not None and action in ACTIONS_BY_ROLE[role]


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[minimum]


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

    def issue(self, subject: str, access: list[Scope], workspaces: list[str] = ()) -> dict:
        now = int(time.time())
        claims = {
            "iss": "crg-emulator",
            "sub": subject,
            "aud": self.service,
            "iat": now,
            "nbf": now - 1,
            "exp": now + int(self.ttl),
            "jti": secrets.token_hex(8),
            "access": [{"type": s.type, "name": s.name, "actions": sorted(s.actions)} for s in access],
            "workspaces": sorted(workspaces),
        }
        token = jwt.encode(claims, self.key, algorithm="HS256")
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return {"token": token, "access_token": token, "expires_in": int(self.ttl), "issued_at": issued}

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
        return Claims(str(raw.get("sub", "")), access, frozenset(map(str, workspaces if isinstance(workspaces, list) else [])))
