"""The registry's YAML configuration: loaded once, validated with one message per problem."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .immutable_tags import NONE, ImmutableTags, parse_immutable_tags
from .names import REPOSITORY_RE, is_slug

ROLES = ("read", "write", "admin")
ROLE_RANK = {"read": 1, "write": 2, "admin": 3}
DEFAULT_MAX_LAYER_BYTES = 32 * 1024**3
DEFAULT_UPLOAD_TIMEOUT_SECONDS = 420
DEFAULT_GRACE_SECONDS = 900
DEFAULT_TOKEN_TTL_SECONDS = 300
# Scopes of an Atlassian API token, and the registry actions each one allows.
TOKEN_SCOPES = {
    "read:package:bitbucket": frozenset({"pull"}),
    "write:package:bitbucket": frozenset({"pull", "push", "delete"}),
}
ALL_ACTIONS = frozenset({"pull", "push", "delete"})
# Bitbucket credentials crg.apkg.io refuses as a password, by the prefix Atlassian gives each kind (API
# tokens begin ATAT): access tokens were never taken, app passwords stopped working on 9 June 2026.
REFUSED_TOKEN_KINDS = {
    "ATCT": "a Bitbucket repository, project or workspace access token",
    "ATBB": "a Bitbucket app password",
}


def refused_token_kind(token: str) -> str | None:
    """What the token looks like when it is a kind the registry refuses, else None."""
    return REFUSED_TOKEN_KINDS.get(token[:4])


WORKSPACE_KEYS = ("repositories", "packages", "members", "admins", "immutable_tags")


class ConfigError(ValueError):
    """The config file cannot be used; the message lists every problem found."""


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiToken:
    """An API token of a member: what `docker login` takes as the password, limited by its scopes."""

    token_sha256: str
    scopes: tuple[str, ...]

    @property
    def actions(self) -> frozenset[str]:
        return frozenset().union(*(TOKEN_SCOPES[s] for s in self.scopes))


@dataclass(frozen=True)
class Member:
    username: str
    token_sha256: str | None  # the member's own token (every scope); stored hashed, compared in constant time
    roles: dict[str, str]  # repository slug -> role
    api_tokens: tuple[ApiToken, ...] = ()

    def match(self, token: str) -> frozenset[str] | None:
        """The actions the given token's scopes allow, None when it is none of this member's tokens.

        Every token of the member is compared, hit or miss, so timing tells nothing.
        """
        given = sha256_hex(token)
        found: frozenset[str] | None = None
        candidates = [(self.token_sha256 or "0" * 64, ALL_ACTIONS if self.token_sha256 else None)]
        candidates += [(t.token_sha256, t.actions) for t in self.api_tokens]
        for hashed, actions in candidates:
            if hmac.compare_digest(given, hashed) and actions is not None and found is None:
                found = actions
        return found


@dataclass(frozen=True)
class Workspace:
    slug: str
    repositories: dict[str, str]  # slug -> project key
    packages: dict[str, str]  # package name -> repository slug (seeded into the database)
    members: dict[str, Member]
    admins: frozenset[str] = frozenset()  # workspace admins (members, by username), distinct from repository roles
    immutable_tags: ImmutableTags = NONE  # the initial Container settings (seeded into the database)


@dataclass(frozen=True)
class Config:
    workspaces: dict[str, Workspace]
    max_layer_bytes: int = DEFAULT_MAX_LAYER_BYTES
    upload_timeout_seconds: float = DEFAULT_UPLOAD_TIMEOUT_SECONDS
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    problems: list[str] = field(default_factory=list, compare=False, repr=False)

    def member(self, workspace: str, username: str) -> Member | None:
        ws = self.workspaces.get(workspace)
        return ws.members.get(username) if ws else None


def load_config(path: str | Path) -> Config:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))


def _number(value: Any, where: str, problems: list[str], default: float, minimum: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        problems.append(f"{where} must be a number >= {minimum}, got {value!r}")
        return default
    return value


def _mapping(value: Any, where: str, problems: list[str]) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where} must be a mapping, got {type(value).__name__}")
        return {}
    return value


def _secret(raw: dict, where: str, problems: list[str], required: bool) -> str | None:
    """The sha256 of `token` or `token_sha256`, exactly one of them (or neither when not required)."""
    token, hashed = raw.get("token"), raw.get("token_sha256")
    if token is None and hashed is None and not required:
        return None
    if (token is None) == (hashed is None):
        problems.append(f"{where}: give exactly one of token or token_sha256")
        return None
    if token is not None:
        if not isinstance(token, str) or not token:
            problems.append(f"{where}.token must be a non-empty string")
            return None
        kind = refused_token_kind(token)
        if kind:  # named by its prefix only: the token is a secret, even in a config problem
            problems.append(f"{where}.token begins {token[:4]}, the prefix of {kind}, which the container registry "
                            f"refuses as a password: it could never log in; give an API token (ATAT...) or any "
                            f"other string")
            return None
        return sha256_hex(token)
    if not (isinstance(hashed, str) and len(hashed) == 64 and all(c in "0123456789abcdef" for c in hashed)):
        problems.append(f"{where}.token_sha256 must be 64 lowercase hex characters")
        return None
    return hashed


def _api_tokens(raw: Any, where: str, problems: list[str]) -> tuple[ApiToken, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{where} must be a list of {{token or token_sha256, scopes}}")
        return ()
    tokens = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        entry = _mapping(entry, at, problems)
        hashed = _secret(entry, at, problems, required=True)
        scopes = entry.get("scopes")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(x, str) for x in scopes):
            problems.append(f"{at}.scopes must be a non-empty list of {', '.join(TOKEN_SCOPES)}")
            continue
        unknown = [x for x in scopes if x not in TOKEN_SCOPES]
        if unknown:
            problems.append(f"{at}.scopes: unknown scope(s) {', '.join(unknown)}; known: {', '.join(TOKEN_SCOPES)}")
            continue
        if hashed:
            tokens.append(ApiToken(hashed, tuple(dict.fromkeys(scopes))))
    return tuple(tokens)


def _member(ws: str, name: Any, raw: Any, repositories: dict[str, str], problems: list[str]) -> Member | None:
    where = f"workspaces.{ws}.members.{name}"
    raw = _mapping(raw, where, problems)
    unknown = set(raw) - {"token", "token_sha256", "roles", "api_tokens"}
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    if not isinstance(name, str) or not name or ":" in name or any(c.isspace() for c in name):
        problems.append(f"{where}: a username is a name or an email address, without ':' or spaces")
        return None
    count = len(problems)
    api_tokens = _api_tokens(raw.get("api_tokens"), f"{where}.api_tokens", problems)
    hashed = _secret(raw, where, problems, required="api_tokens" not in raw)
    if len(problems) > count:
        return None
    roles: dict[str, str] = {}
    for repo, role in _mapping(raw.get("roles"), f"{where}.roles", problems).items():
        if repo not in repositories:
            problems.append(f"{where}.roles: unknown repository {repo!r}")
        elif role not in ROLES:
            problems.append(f"{where}.roles.{repo}: role must be one of {', '.join(ROLES)}, got {role!r}")
        else:
            roles[repo] = role
    return Member(name, hashed, roles, api_tokens)


def _admins(raw: Any, where: str, members: set, problems: list[str]) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        problems.append(f"{where} must be a list of member usernames")
        return frozenset()
    unknown = [x for x in raw if x not in members]
    if unknown:
        problems.append(f"{where}: {', '.join(map(repr, unknown))} not among the workspace's members; "
                        "a workspace admin is a member, by username")
    return frozenset(x for x in raw if x in members)


def _repositories(raw: Any, where: str, problems: list[str]) -> dict[str, str]:
    """Repository slug -> project key."""
    repositories: dict[str, str] = {}
    for repo, meta in _mapping(raw, f"{where}.repositories", problems).items():
        meta = _mapping(meta, f"{where}.repositories.{repo}", problems)
        project = meta.get("project")
        if not isinstance(repo, str) or not is_slug(repo):
            problems.append(f"{where}.repositories: invalid repository slug {repo!r}")
        elif not isinstance(project, str) or not project:
            problems.append(f"{where}.repositories.{repo}.project must be a project key")
        else:
            repositories[repo] = project
    return repositories


def _packages(raw: Any, where: str, repositories: dict[str, str], problems: list[str]) -> dict[str, str]:
    """Package name -> the repository it is linked to."""
    packages: dict[str, str] = {}
    for name, repo in _mapping(raw, f"{where}.packages", problems).items():
        if not isinstance(name, str) or not REPOSITORY_RE.match(name):
            problems.append(f"{where}.packages: invalid package name {name!r}")
        elif repo not in repositories:
            problems.append(f"{where}.packages.{name}: unknown repository {repo!r}")
        else:
            packages[name] = repo
    return packages


def _workspace(slug: Any, raw: Any, problems: list[str]) -> Workspace | None:
    where = f"workspaces.{slug}"
    if not isinstance(slug, str) or not is_slug(slug):
        problems.append(f"{where}: workspace slug must be lowercase letters, digits, '-', '_' or '.'")
        return None
    raw = _mapping(raw, where, problems)
    unknown = set(raw) - set(WORKSPACE_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}; "
                        f"known: {', '.join(WORKSPACE_KEYS)}")
    repositories = _repositories(raw.get("repositories"), where, problems)
    packages = _packages(raw.get("packages"), where, repositories, problems)
    members: dict[str, Member] = {}
    named = _mapping(raw.get("members"), f"{where}.members", problems)
    for name, mraw in named.items():
        member = _member(slug, name, mraw, repositories, problems)
        if member:
            members[member.username] = member
    admins = _admins(raw.get("admins"), f"{where}.admins", set(named), problems)
    for name in admins & set(members):
        # As in Bitbucket, a workspace admin administers every repository of the workspace.
        roles = {**members[name].roles, **dict.fromkeys(repositories, "admin")}
        members[name] = replace(members[name], roles=roles)
    settings, found = parse_immutable_tags(raw.get("immutable_tags"), f"{where}.immutable_tags")
    problems += found
    return Workspace(slug, repositories, packages, members, admins, settings)


def _settings(data: dict, problems: list[str]) -> dict[str, float]:
    """The limits, the collection's grace period and the token lifetime, with their defaults."""
    limits = _mapping(data.get("limits"), "limits", problems)
    gc = _mapping(data.get("gc"), "gc", problems)
    auth = _mapping(data.get("auth"), "auth", problems)
    return {
        "max_layer_bytes": int(_number(
            limits.get("max_layer_bytes"), "limits.max_layer_bytes", problems, DEFAULT_MAX_LAYER_BYTES, 1
        )),
        "upload_timeout_seconds": _number(
            limits.get("upload_timeout_seconds"), "limits.upload_timeout_seconds", problems,
            DEFAULT_UPLOAD_TIMEOUT_SECONDS, 1,
        ),
        "grace_seconds": _number(gc.get("grace_seconds"), "gc.grace_seconds", problems, DEFAULT_GRACE_SECONDS, 0),
        "token_ttl_seconds": _number(
            auth.get("token_ttl_seconds"), "auth.token_ttl_seconds", problems, DEFAULT_TOKEN_TTL_SECONDS, 1
        ),
    }


def parse_config(data: Any, source: str = "config") -> Config:
    """The config, or ConfigError listing every problem found (unknown keys included)."""
    problems: list[str] = []
    data = _mapping(data, "the top level", problems)
    unknown = set(data) - {"workspaces", "limits", "gc", "auth"}
    if unknown:
        problems.append(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
    workspaces: dict[str, Workspace] = {}
    for slug, raw in _mapping(data.get("workspaces"), "workspaces", problems).items():
        workspace = _workspace(slug, raw, problems)
        if workspace is not None:
            workspaces[slug] = workspace
    config = Config(workspaces=workspaces, **_settings(data, problems))
    if problems:
        raise ConfigError(f"{source} has {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    return config
