"""The pages' session: a signed cookie (HS256 JWT) with its own key kept in the registry's root.

It holds the username, the roles the credentials allowed at login (per workspace and
repository), the credentials' kind and what their scopes allow (per workspace), a CSRF
token that every form posts back, an optional one-time notice, and an
expiry. It never holds the token itself. A session without a username (before login) still
carries a CSRF token, so the login form is protected too.
"""
from __future__ import annotations

import hmac
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import jwt

COOKIE = "crg_session"
KEY_FILE = "ui-session.key"
SESSION_SECONDS = 8 * 3600
ANONYMOUS_SECONDS = 3600
AUDIENCE = "crg-emulator-ui"


@dataclass(frozen=True)
class Session:
    csrf: str
    expires_at: float
    username: str | None = None
    roles: dict[str, dict[str, str] | str] = field(default_factory=dict)  # workspace -> repository -> role (see viewer)
    notice: str | None = None
    grants: dict[str, dict] = field(default_factory=dict)  # workspace -> kind, actions, repository, expires_at

    def csrf_matches(self, given: object) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf.encode())


def load_or_create_key(root: Path) -> bytes:
    """32 random bytes in `root/ui-session.key` (mode 0600), made once: sessions survive a restart."""
    path = root / KEY_FILE
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        os.replace(tmp, path)
    return path.read_bytes()


class SessionCodec:
    def __init__(self, key: bytes, ttl_seconds: float = SESSION_SECONDS) -> None:
        self.key = key
        self.ttl = ttl_seconds

    def anonymous(self) -> Session:
        return Session(csrf=secrets.token_urlsafe(32), expires_at=time.time() + ANONYMOUS_SECONDS)

    def logged_in(self, username: str, roles: dict[str, dict[str, str] | str],
                  grants: dict[str, dict] | None = None) -> Session:
        """A new session (and a new CSRF token: the one from before login is never reused).

        A session of credentials that expire (pipeline credentials) ends with them."""
        expires_at = time.time() + self.ttl
        ends = [g["expires_at"] for g in (grants or {}).values() if isinstance(g.get("expires_at"), (int, float))]
        return Session(csrf=secrets.token_urlsafe(32), expires_at=min([expires_at, *ends]), username=username,
                       roles=roles, grants=grants or {})

    def with_notice(self, session: Session, notice: str | None) -> Session:
        return replace(session, notice=notice)

    def encode(self, session: Session) -> str:
        claims = {"aud": AUDIENCE, "exp": int(session.expires_at), "csrf": session.csrf}
        if session.username is not None:
            claims.update(sub=session.username, roles=session.roles)
            if session.grants:
                claims["grants"] = session.grants
        if session.notice:
            claims["notice"] = session.notice
        return jwt.encode(claims, self.key, algorithm="HS256")

    def decode(self, value: str | None) -> Session | None:
        """The session, or None for a missing, tampered-with or expired cookie."""
        if not value:
            return None
        try:
            raw = jwt.decode(value, self.key, algorithms=["HS256"], audience=AUDIENCE)
        except jwt.PyJWTError:
            return None
        roles, grants = raw.get("roles", {}), raw.get("grants", {})
        if not isinstance(raw.get("csrf"), str) or not isinstance(roles, dict) or not isinstance(grants, dict):
            return None
        return Session(
            csrf=raw["csrf"], expires_at=float(raw["exp"]), username=raw.get("sub"),
            roles={str(ws): dict(r) if isinstance(r, dict) else str(r) for ws, r in roles.items()},
            notice=raw.get("notice") if isinstance(raw.get("notice"), str) else None,
            grants={str(ws): dict(g) for ws, g in grants.items() if isinstance(g, dict)},
        )
