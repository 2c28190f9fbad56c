"""The sample workspace of the demo and of `make serve`: one repository, one package, a member of each role.

Tokens are fresh random ones for each new directory; a directory kept with `--root` keeps its config,
so the tokens printed the first time still work the next.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.registry_process import RegistryProcess

WORKSPACE = "demo"
REPOSITORY = "web"
PACKAGE = "demo-app"
ROLES = {"reader": "read", "writer": "write", "admin": "admin"}  # username -> role on REPOSITORY
PUSHER = "writer"  # the member the pipe pushes as


@dataclass(frozen=True)
class Member:
    name: str
    role: str
    token: str


def sample_config(tokens: dict[str, str]) -> dict:
    return {"workspaces": {WORKSPACE: {
        "repositories": {REPOSITORY: {"project": "DEMO"}},
        "packages": {PACKAGE: REPOSITORY},
        "members": {name: {"token": tokens[name], "roles": {REPOSITORY: role}} for name, role in ROLES.items()},
        "admins": ["admin"],  # the workspace admin: the Container settings page (immutable tags)
    }}}


def config_for(directory: Path) -> dict:
    """The config kept in `directory` from an earlier start, else a new one with fresh tokens."""
    saved = directory / "registry.yml"
    if saved.exists():
        return yaml.safe_load(saved.read_text())
    return sample_config({name: secrets.token_hex(16) for name in ROLES})


def members_of(config: dict) -> list[Member]:
    members = config["workspaces"][WORKSPACE]["members"]
    return [Member(name, ROLES[name], members[name]["token"]) for name in ROLES]


def start_registry(directory: Path, config: dict, port: int = 0) -> RegistryProcess:
    """The emulator on 127.0.0.1 (port 0: any free one), its data in `directory`/registry."""
    return RegistryProcess(directory / "registry", config, port=port).start()
