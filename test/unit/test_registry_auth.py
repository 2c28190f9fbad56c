"""Scopes, Basic credentials, bearer tokens and the access decision, without a server."""
from __future__ import annotations

import base64
import time
from pathlib import Path

import jwt
import pytest

from harness.accounts import EMAIL, READ_SCOPED_TOKEN, TOKENS, default_config
from registry.access import (
    GENERIC_DENIED,
    ROLE_FOR_ACTION,
    Challenge,
    allows_somewhere,
    decide,
    granted_actions,
    may_mount_from,
    role_at_least,
    token_grants,
    token_principal,
)
from registry.auth import Claims, Scope, TokenIssuer, bearer_claims, identify, parse_basic, parse_scope
from registry.config import parse_config, sha256_hex
from registry.errors import RegistryError
from registry.metadata import Package
from registry.names import parse_repository

CONFIG = parse_config(default_config())
CHALLENGE = Challenge("http://127.0.0.1:1/token", "crg.apkg.io")


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def authenticate(config, username: str, token: str, workspace: str | None = None) -> list[str]:
    """Workspaces in which these (configured) credentials are valid (only `workspace` when given)."""
    return [p.workspace for p in identify(config, None, username, token, workspace)]


def can(role: str | None, action: str) -> bool:
    """Whether a role allows an action, as the access rule reads it."""
    return role_at_least(role, ROLE_FOR_ACTION[action])


class TestScopes:
    @pytest.mark.parametrize("text, name, actions", [
        ("repository:acme/app:pull", "acme/app", {"pull"}),
        ("repository:acme/app:pull,push", "acme/app", {"pull", "push"}),
        ("repository:acme/app:push,pull,delete", "acme/app", {"pull", "push", "delete"}),
        ("repository:acme/app:*", "acme/app", {"pull", "push", "delete"}),
        ("repository:acme/app:pull,fly,,", "acme/app", {"pull"}),
        ("repository:acme/app:", "acme/app", set()),
        ("repository:127.0.0.1:5000/acme/app:pull", "127.0.0.1:5000/acme/app", {"pull"}),
    ])
    def test_parse(self, text, name, actions):
        scope = parse_scope(text)
        assert scope == Scope("repository", name, frozenset(actions))

    @pytest.mark.parametrize("text", [
        "", "repository", "repository:acme/app", "registry:catalog:*", "repository::pull", ":acme/app:pull",
        "repository(plugin):acme/app:pull",
    ])
    def test_scopes_not_granted_here(self, text):
        assert parse_scope(text) is None

    def test_str_is_the_wire_form(self):
        assert str(Scope("repository", "acme/app", frozenset({"push", "pull"}))) == "repository:acme/app:pull,push"


class TestBasic:
    def test_parse(self):
        assert parse_basic(basic("boss:tok:en")) == ("boss", "tok:en")
        assert parse_basic("basic " + base64.b64encode(b"a:").decode()) == ("a", "")

    @pytest.mark.parametrize("header", [
        None, "", "Bearer abc", "Basic", "Basic !!!notbase64", basic("no-colon"), basic(":password"),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ])
    def test_unusable(self, header):
        assert parse_basic(header) is None


class TestAuthenticate:
    def test_valid_credentials_name_their_workspaces(self):
        assert authenticate(CONFIG, "boss", TOKENS["boss"]) == ["acme"]
        assert authenticate(CONFIG, "pipelines", TOKENS["pipelines"]) == ["acme"]
        assert authenticate(CONFIG, "pipelines", "globex-token-11aa") == ["globex"]
        assert authenticate(CONFIG, "pipelines", "globex-token-11aa", "globex") == ["globex"]

    def test_invalid_credentials(self):
        assert authenticate(CONFIG, "boss", "wrong") == []
        assert authenticate(CONFIG, "boss", "") == []
        assert authenticate(CONFIG, "nobody", TOKENS["boss"]) == []
        assert authenticate(CONFIG, "pipelines", "globex-token-11aa", "acme") == []
        assert authenticate(CONFIG, "boss", TOKENS["reader"]) == []

    @pytest.mark.parametrize("token", ["ATCTT3xFfGN0k2l9mQ7vZr8sXw4yBn6c", "ATBB7hQ2mZxR9vLk3NsW8cYd5TfG1pJb"])
    def test_an_access_token_or_app_password_is_refused_even_when_configured(self, token):
        # A token_sha256 hides what it hashes, so the config cannot refuse it; the login does.
        data = default_config()
        data["workspaces"]["acme"]["members"]["holder"] = {"token_sha256": sha256_hex(token),
                                                           "roles": {"web-app": "admin"}}
        data["workspaces"]["acme"]["members"]["holder-api"] = {"api_tokens": [
            {"token_sha256": sha256_hex(token), "scopes": ["read:package:bitbucket"]}], "roles": {"web-app": "read"}}
        config = parse_config(data)
        assert authenticate(config, "holder", token) == [] and authenticate(config, "holder-api", token) == []
        assert config.member("acme", "holder").match(token) is not None  # the hash alone would have let it in


def test_actions_by_role():
    assert [can("read", a) for a in ("pull", "push", "delete")] == [True, False, False]
    assert [can("write", a) for a in ("pull", "push", "delete")] == [True, True, False]
    assert [can("admin", a) for a in ("pull", "push", "delete")] == [True, True, True]
    assert not can(None, "pull")
    assert role_at_least("admin", "write") and role_at_least("write", "write") and not role_at_least("read", "write")
    assert not role_at_least(None, "read")


class TestTokens:
    def issuer(self, tmp_path: Path, ttl: float = 300) -> TokenIssuer:
        return TokenIssuer.for_root(tmp_path, "crg.apkg.io", ttl)

    def test_issue_and_verify(self, tmp_path: Path):
        issuer = self.issuer(tmp_path)
        body = issuer.issue("pipelines", [Scope("repository", "acme/app", frozenset({"pull", "push"}))])
        assert body["token"] == body["access_token"] and body["expires_in"] == 300
        claims = issuer.verify(body["token"])
        assert claims == Claims("pipelines", {"acme/app": frozenset({"pull", "push"})})
        assert token_grants(claims, "acme/app", "push") and not token_grants(claims, "acme/app", "delete")
        assert not token_grants(claims, "acme/other", "pull")

    def test_key_persists_in_root_and_is_private(self, tmp_path: Path):
        token = self.issuer(tmp_path).issue("boss", [])["token"]
        assert self.issuer(tmp_path).verify(token) == Claims("boss", {})
        assert (tmp_path / "token.key").stat().st_mode & 0o077 == 0
        other = tmp_path / "other"
        other.mkdir()
        assert self.issuer(other).verify(token) is None

    def test_expired_token_is_refused(self, tmp_path: Path, monkeypatch):
        issuer = self.issuer(tmp_path, ttl=1)
        now = time.time()
        monkeypatch.setattr(time, "time", lambda: now - 60)
        old = issuer.issue("boss", [])["token"]
        monkeypatch.undo()
        assert jwt.decode(old, options={"verify_signature": False})["exp"] < now - 50
        assert issuer.verify(old) is None
        assert issuer.verify(issuer.issue("boss", [])["token"]) is not None

    def test_ttl_sets_the_expiry(self, tmp_path: Path):
        body = self.issuer(tmp_path, ttl=42).issue("boss", [])
        raw = jwt.decode(body["token"], options={"verify_signature": False})
        assert raw["exp"] - raw["iat"] == 42 and body["expires_in"] == 42

    @pytest.mark.parametrize("mutate", [
        lambda t, key: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t, key: jwt.encode({"sub": "boss", "aud": "crg.apkg.io", "exp": time.time() + 60}, b"k" * 32, "HS256"),
        lambda t, key: jwt.encode({"sub": "boss", "aud": "elsewhere", "exp": time.time() + 60}, key, "HS256"),
        lambda t, key: jwt.encode({"sub": "boss", "aud": "crg.apkg.io", "exp": time.time() + 60}, None, "none"),
        lambda t, key: "not-a-jwt",
    ])
    def test_forged_tokens_are_refused(self, tmp_path: Path, mutate):
        issuer = self.issuer(tmp_path)
        token = issuer.issue("boss", [Scope("repository", "acme/app", frozenset({"delete"}))])["token"]
        assert issuer.verify(mutate(token, issuer.key)) is None

    def test_bearer_header(self, tmp_path: Path):
        issuer = self.issuer(tmp_path)
        token = issuer.issue("boss", [])["token"]
        assert bearer_claims(issuer, f"Bearer {token}") == Claims("boss", {})
        assert bearer_claims(issuer, f"bearer  {token} ") == Claims("boss", {})
        assert bearer_claims(issuer, None) is None
        assert bearer_claims(issuer, basic("boss:" + TOKENS["boss"])) is None


class TestDecide:
    """The decision every /v2/ request goes through: token grant AND current role."""

    APP = Package(1, "acme", "my-container-app", "web-app", 0.0)
    TOOL = Package(2, "acme", "tool-image", "tools", 0.0)

    def decide(self, user: str, name: str, package: Package | None, action: str, granted: set[str] | None = None):
        repository = parse_repository(name)
        claims = Claims(user, {name: frozenset(granted if granted is not None else {"pull", "push", "delete"})},
                        frozenset({"acme"}))
        scope = Scope("repository", name, frozenset({action}))
        return decide(CONFIG, claims, repository, package, action, CHALLENGE, scope)

    def error(self, *args, **kwargs) -> RegistryError:
        with pytest.raises(RegistryError) as exc:
            self.decide(*args, **kwargs)
        return exc.value

    @pytest.mark.parametrize("user, action", [
        ("reader", "pull"), ("pipelines", "pull"), ("pipelines", "push"), ("boss", "pull"), ("boss", "push"),
        ("boss", "delete"),
    ])
    def test_allowed(self, user, action):
        assert self.decide(user, "acme/my-container-app", self.APP, action) is None

    @pytest.mark.parametrize("user, action, needed", [
        ("reader", "push", "write"), ("reader", "delete", "admin"), ("pipelines", "delete", "admin"),
    ])
    def test_role_too_low_says_what_is_needed(self, user, action, needed):
        err = self.error(user, "acme/my-container-app", self.APP, action)
        assert err.code == "DENIED" and err.status == 403
        assert f"needs {needed} permission on repository 'web-app'" in err.message

    def test_role_allows_but_token_does_not_asks_for_a_new_token(self):
        err = self.error("pipelines", "acme/my-container-app", self.APP, "push", granted={"pull"})
        assert err.status == 401 and err.code == "UNAUTHORIZED"
        header = err.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in header and 'scope="repository:acme/my-container-app:push"' in header

    def test_a_token_for_another_repository_does_not_count(self):
        repository = parse_repository("acme/my-container-app")
        claims = Claims("pipelines", {"acme/other-app": frozenset({"pull", "push"})}, frozenset({"acme"}))
        scope = Scope("repository", repository.name, frozenset({"pull"}))
        with pytest.raises(RegistryError) as exc:
            decide(CONFIG, claims, repository, self.APP, "pull", CHALLENGE, scope)
        assert exc.value.status == 401

    def test_missing_package_is_named_to_a_member_who_can_push(self):
        err = self.error("pipelines", "acme/nope", None, "push")
        assert err.code == "NAME_UNKNOWN" and err.status == 404
        assert "nope" in err.message and "create the package" in err.message
        assert "link it to a repository" in err.message

    @pytest.mark.parametrize("user", ["outsider", "reader"])
    def test_missing_and_hidden_packages_look_the_same_without_access(self, user):
        missing = self.error(user, "acme/nope", None, "pull")
        hidden = self.error(user, "acme/tool-image", self.TOOL, "pull")
        assert (missing.code, missing.status, missing.message) == (hidden.code, hidden.status, hidden.message)
        assert missing.message == GENERIC_DENIED

    def test_member_of_another_workspace_is_refused(self):
        err = self.error("boss", "globex/site-image", None, "pull")
        assert err.code == "UNAUTHORIZED" and err.status == 401

    @pytest.mark.parametrize("action", ["pull", "push"])
    def test_a_token_for_another_workspace_learns_nothing_about_packages(self, action):
        # `pipelines` of globex shares its username with a write member of acme.
        answers = []
        for name, package in (("acme/nope", None), ("acme/my-container-app", self.APP)):
            repository, scope = parse_repository(name), Scope("repository", name, frozenset({action}))
            claims = Claims("pipelines", {name: frozenset()}, frozenset({"globex"}))
            with pytest.raises(RegistryError) as exc:
                decide(CONFIG, claims, repository, package, action, CHALLENGE, scope)
            answers.append((exc.value.status, exc.value.code, exc.value.message))
        assert answers[0] == answers[1] == (401, "UNAUTHORIZED", "token does not grant this action")

    def test_tokens_carry_the_workspaces_of_their_credentials(self, tmp_path: Path):
        issuer = TokenIssuer.for_root(tmp_path, "crg.apkg.io", 300)
        claims = issuer.verify(issuer.issue("pipelines", [], ["globex"])["token"])
        assert claims.workspaces == frozenset({"globex"})


class TestMountAndGrants:
    """Pull on a mount's `from`, and what the token endpoint grants: decided in access.py by the one rule."""

    APP = Package(1, "acme", "my-container-app", "web-app", 0.0)
    TOOL = Package(2, "acme", "tool-image", "tools", 0.0)
    SITE = Package(3, "globex", "site-image", "site", 0.0)
    ALL = frozenset({"pull", "push", "delete"})

    @staticmethod
    def claims(user: str, granted: dict[str, set[str]], workspaces=("acme",), credentials=None) -> Claims:
        return Claims(user, {name: frozenset(actions) for name, actions in granted.items()}, frozenset(workspaces),
                      credentials or {})

    def test_a_mount_needs_pull_granted_on_its_from_and_the_role_to_pull_there(self):
        origin = parse_repository("acme/tool-image")
        pulls = self.claims("pipelines", {"acme/tool-image": {"pull"}})
        assert may_mount_from(CONFIG, pulls, origin, self.APP, self.TOOL)
        not_granted = self.claims("pipelines", {"acme/tool-image": set(), "acme/my-container-app": {"pull", "push"}})
        assert not may_mount_from(CONFIG, not_granted, origin, self.APP, self.TOOL)
        no_role = self.claims("reader", {"acme/tool-image": {"pull"}})  # reader has no role on tools
        assert not may_mount_from(CONFIG, no_role, origin, self.APP, self.TOOL)
        assert not may_mount_from(CONFIG, pulls, origin, self.APP, None)  # no such package

    def test_pipeline_credentials_mount_only_from_their_repository(self):
        step = {"acme": {"kind": "pipeline", "actions": ["pull", "push"], "repository": "web-app"}}
        claims = self.claims("bitbucket-pipelines-1", {"acme/tool-image": {"pull"}, "acme/other-app": {"pull"}},
                             credentials=step)
        other = Package(4, "acme", "other-app", "web-app", 0.0)
        assert may_mount_from(CONFIG, claims, parse_repository("acme/other-app"), self.APP, other)
        assert not may_mount_from(CONFIG, claims, parse_repository("acme/tool-image"), self.APP, self.TOOL)

    def test_a_mount_never_crosses_workspaces(self):
        origin = parse_repository("globex/site-image")
        claims = self.claims("pipelines", {"globex/site-image": {"pull"}}, ("acme", "globex"))
        assert not may_mount_from(CONFIG, claims, origin, self.APP, self.SITE)
        copy = Package(5, "globex", "site-copy", "site", 0.0)
        assert may_mount_from(CONFIG, claims, origin, copy, self.SITE)  # the same claims, within globex

    def test_the_token_endpoint_grants_what_the_rule_allows(self):
        [boss] = identify(CONFIG, None, "boss", TOKENS["boss"])
        [reader] = identify(CONFIG, None, "reader", TOKENS["reader"])
        [read_scoped] = identify(CONFIG, None, EMAIL, READ_SCOPED_TOKEN)
        assert granted_actions(boss, self.APP, self.ALL) == self.ALL
        assert granted_actions(reader, self.APP, self.ALL) == {"pull"}
        assert granted_actions(reader, self.TOOL, self.ALL) == frozenset()
        assert granted_actions(read_scoped, self.APP, self.ALL) == {"pull"}  # role write, scope read
        assert granted_actions(boss, None, self.ALL) == frozenset()  # a missing package: nothing
        assert granted_actions(None, self.APP, self.ALL) == frozenset()  # not valid in the workspace


class TestPipelineCredentials:
    def test_minted_credentials_reach_one_repository_and_are_stored_hashed(self, tmp_path):
        from registry.auth import PIPELINE, identify
        from registry.pipeline_credentials import mint
        user, token = mint(tmp_path, "acme", "web-app", 60)
        [principal] = identify(CONFIG, tmp_path, user, token)
        assert (principal.kind, principal.workspace, principal.repository) == (PIPELINE, "acme", "web-app")
        assert principal.roles == {"web-app": "write"} and allows_somewhere(principal, "write", "push")
        assert token not in "".join(p.read_text() for p in tmp_path.rglob("*.json"))
        assert identify(CONFIG, tmp_path, user, token + "x") == []
        assert identify(CONFIG, tmp_path, user, token, "globex") == []
        assert identify(CONFIG, tmp_path, "../" + user, token) == []

    def test_expired_credentials_say_so_only_to_the_right_token(self, tmp_path):
        from registry.auth import CredentialsExpired, identify
        from registry.pipeline_credentials import mint
        user, token = mint(tmp_path, "acme", "web-app", 1)
        time.sleep(1.1)
        with pytest.raises(CredentialsExpired, match="^pipeline credentials expired at .*re-run the step"):
            identify(CONFIG, tmp_path, user, token)
        assert identify(CONFIG, tmp_path, user, "wrong") == []

    def test_a_bearer_token_never_outlives_them(self, tmp_path):
        from registry.auth import identify
        from registry.pipeline_credentials import mint
        user, token = mint(tmp_path, "acme", "web-app", 5)
        issuer = TokenIssuer(b"k" * 32, "crg.apkg.io", 300)
        body = issuer.issue(user, [], principals=identify(CONFIG, tmp_path, user, token))
        assert body["expires_in"] <= 5
        claims = issuer.verify(body["token"])
        assert token_principal(CONFIG, claims, "acme").repository == "web-app"
        assert token_principal(CONFIG, claims, "globex") is None
