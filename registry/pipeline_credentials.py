"""Pipeline credentials: short-lived, bound to one repository, minted into the registry's root.

Each credential is one small JSON file under `<root>/pipeline-credentials/`, named by its
username and holding only the token's sha256, so a registry already running with that root
accepts a freshly minted credential at once, and a leaked root leaks no usable token.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from .config import sha256_hex

DIRECTORY = "pipeline-credentials"
USERNAME_PREFIX = "bitbucket-pipelines-"
USERNAME_RE = re.compile(r"^bitbucket-pipelines-[0-9a-f]{16}$")


@dataclass(frozen=True)
class PipelineCredential:
    username: str
    token_sha256: str
    workspace: str
    repository: str
    expires_at: float

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    def expiry_text(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires_at))


def mint(root: Path, workspace: str, repository: str, ttl_seconds: float) -> tuple[str, str]:
    """Store a new credential and return (username, token); the token itself is never stored."""
    directory = root / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    username = USERNAME_PREFIX + secrets.token_hex(8)
    token = "bbpc_" + secrets.token_urlsafe(32)
    record = {"workspace": workspace, "repository": repository, "token_sha256": sha256_hex(token),
              "expires_at": time.time() + ttl_seconds}
    tmp = directory / f".{username}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / f"{username}.json")
    return username, token


def lookup(root: Path, username: str) -> PipelineCredential | None:
    """The stored credential of `username`, None when there is none (or the name is not one of ours)."""
    if not USERNAME_RE.match(username):
        return None
    try:
        raw = json.loads((root / DIRECTORY / f"{username}.json").read_text())
        return PipelineCredential(username, str(raw["token_sha256"]), str(raw["workspace"]),
                                  str(raw["repository"]), float(raw["expires_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
