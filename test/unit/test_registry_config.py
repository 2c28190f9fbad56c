"""The registry's YAML config: the whole shape, defaults, and one message per problem."""
from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from harness.accounts import TOKENS, default_config
from registry.config import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_MAX_LAYER_BYTES,
    DEFAULT_TOKEN_TTL_SECONDS,
    DEFAULT_UPLOAD_TIMEOUT_SECONDS,
    ROLE_RANK,
    ConfigError,
    Member,
    load_config,
    parse_config,
)

MINIMAL = {
    "workspaces": {
        "acme": {
            "repositories": {"web-app": {"project": "WEB"}},
            "packages": {"my-container-app": "web-app"},
            "members": {"pipelines": {"token": "s3cr3t", "roles": {"web-app": "write"}}},
        }
    }
}


def token_matches(member: Member, token: str) -> bool:
    return member.match(token) is not None


def role_on(member: Member, repository: str | None) -> str | None:
    return member.roles.get(repository) if repository else None


def best_role(member: Member) -> str | None:
    ranked = sorted(member.roles.values(), key=ROLE_RANK.__getitem__)
    return ranked[-1] if ranked else None


def problems(data) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return str(exc.value)


def with_change(path: list, value) -> dict:
    data = copy.deepcopy(MINIMAL)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def test_the_design_example_parses_with_defaults():
    config = parse_config(MINIMAL)
    ws = config.workspaces["acme"]
    assert ws.repositories == {"web-app": "WEB"}
    assert ws.packages == {"my-container-app": "web-app"}
    member = ws.members["pipelines"]
    assert member.roles == {"web-app": "write"}
    assert token_matches(member, "s3cr3t") and not token_matches(member, "s3cr3t ") and not token_matches(member, "")
    assert member.token_sha256 == hashlib.sha256(b"s3cr3t").hexdigest()  # the secret itself is not kept
    assert (config.max_layer_bytes, config.upload_timeout_seconds, config.grace_seconds, config.token_ttl_seconds) == (
        DEFAULT_MAX_LAYER_BYTES, DEFAULT_UPLOAD_TIMEOUT_SECONDS, DEFAULT_GRACE_SECONDS, DEFAULT_TOKEN_TTL_SECONDS)
    assert DEFAULT_MAX_LAYER_BYTES == 32 * 1024**3 and DEFAULT_UPLOAD_TIMEOUT_SECONDS == 420


def test_limits_gc_and_auth_are_read():
    data = copy.deepcopy(MINIMAL)
    data.update(limits={"max_layer_bytes": 1024, "upload_timeout_seconds": 5},
                gc={"grace_seconds": 0}, auth={"token_ttl_seconds": 1})
    config = parse_config(data)
    assert (config.max_layer_bytes, config.upload_timeout_seconds, config.grace_seconds, config.token_ttl_seconds) == (
        1024, 5, 0, 1)


def test_the_test_fixture_config_is_valid():
    config = parse_config(default_config())
    assert set(config.workspaces) == {"acme", "globex"}
    assert config.member("acme", "boss").roles == {"web-app": "admin", "tools": "admin"}
    assert best_role(config.member("acme", "outsider")) is None
    assert token_matches(config.member("acme", "pipelines"), TOKENS["pipelines"])
    assert not token_matches(config.member("globex", "pipelines"), TOKENS["pipelines"])
    assert config.member("nowhere", "boss") is None and config.member("acme", "nobody") is None


def test_token_sha256_is_accepted_instead_of_a_token():
    hashed = hashlib.sha256(b"hashed-secret").hexdigest()
    config = parse_config(with_change(["workspaces", "acme", "members", "pipelines"],
                                      {"token_sha256": hashed, "roles": {"web-app": "read"}}))
    member = config.member("acme", "pipelines")
    assert token_matches(member, "hashed-secret")
    assert not token_matches(member, hashed)  # the hash is not itself a password


def test_role_helpers():
    config = parse_config(default_config())
    boss = config.member("acme", "boss")
    assert role_on(boss, "web-app") == "admin" and role_on(boss, None) is None and role_on(boss, "nope") is None
    assert best_role(boss) == "admin"
    assert best_role(config.member("acme", "reader")) == "read"


@pytest.mark.parametrize("change, message", [
    ((["workspaces", "acme", "members", "pipelines"], {"roles": {}}),
     "workspaces.acme.members.pipelines: give exactly one of token or token_sha256"),
    ((["workspaces", "acme", "members", "pipelines"], {"token": "a", "token_sha256": "0" * 64}),
     "workspaces.acme.members.pipelines: give exactly one of token or token_sha256"),
    ((["workspaces", "acme", "members", "pipelines", "token"], ""),
     "workspaces.acme.members.pipelines.token must be a non-empty string"),
    ((["workspaces", "acme", "members", "pipelines", "token"], 1234),
     "workspaces.acme.members.pipelines.token must be a non-empty string"),
    ((["workspaces", "acme", "members", "pipelines"], {"token_sha256": "ABC"}),
     "workspaces.acme.members.pipelines.token_sha256 must be 64 lowercase hex characters"),
    ((["workspaces", "acme", "members", "pipelines"], {"token_sha256": "A" * 64}),
     "workspaces.acme.members.pipelines.token_sha256 must be 64 lowercase hex characters"),
    ((["workspaces", "acme", "members", "pipelines", "roles"], {"nope": "read"}),
     "workspaces.acme.members.pipelines.roles: unknown repository 'nope'"),
    ((["workspaces", "acme", "members", "pipelines", "roles"], {"web-app": "owner"}),
     "workspaces.acme.members.pipelines.roles.web-app: role must be one of read, write, admin, got 'owner'"),
    ((["workspaces", "acme", "members", "pipelines", "roles"], ["web-app"]),
     "workspaces.acme.members.pipelines.roles must be a mapping, got list"),
    ((["workspaces", "acme", "members"], "pipelines"),
     "workspaces.acme.members must be a mapping, got str"),
    ((["workspaces", "acme", "repositories", "Web App"], {"project": "WEB"}),
     "workspaces.acme.repositories: invalid repository slug 'Web App'"),
    ((["workspaces", "acme", "repositories", "extra"], {}),
     "workspaces.acme.repositories.extra.project must be a project key"),
    ((["workspaces", "acme", "repositories", "extra"], {"project": ""}),
     "workspaces.acme.repositories.extra.project must be a project key"),
    ((["workspaces", "acme", "packages", "Bad Name"], "web-app"),
     "workspaces.acme.packages: invalid package name 'Bad Name'"),
    ((["workspaces", "acme", "packages", "app\n"], "web-app"),
     "workspaces.acme.packages: invalid package name 'app\\n'"),
    ((["workspaces", "acme", "packages", "other"], "nope"),
     "workspaces.acme.packages.other: unknown repository 'nope'"),
    ((["workspaces", "Acme"], {}),
     "workspaces.Acme: workspace slug must be lowercase letters, digits, '-', '_' or '.'"),
    ((["workspaces", "acme"], ["x"]), "workspaces.acme must be a mapping, got list"),
    ((["workspaces"], ["acme"]), "workspaces must be a mapping, got list"),
    ((["limits", "max_layer_bytes"], 0), "limits.max_layer_bytes must be a number >= 1, got 0"),
    ((["limits", "max_layer_bytes"], "1G"), "limits.max_layer_bytes must be a number >= 1, got '1G'"),
    ((["limits", "max_layer_bytes"], True), "limits.max_layer_bytes must be a number >= 1, got True"),
    ((["limits", "upload_timeout_seconds"], 0.5), "limits.upload_timeout_seconds must be a number >= 1, got 0.5"),
    ((["gc", "grace_seconds"], -1), "gc.grace_seconds must be a number >= 0, got -1"),
    ((["auth", "token_ttl_seconds"], 0), "auth.token_ttl_seconds must be a number >= 1, got 0"),
    ((["limits"], 5), "limits must be a mapping, got int"),
    ((["storage"], {}), "unknown top-level keys: storage"),
])
def test_each_problem_has_its_message(change, message):
    text = problems(with_change(*change))
    assert text.startswith("config has 1 problem(s):"), text
    assert f"  - {message}" in text


def test_every_problem_is_listed_at_once():
    data = copy.deepcopy(MINIMAL)
    data["limits"] = {"max_layer_bytes": -5, "upload_timeout_seconds": "soon"}
    data["gc"] = {"grace_seconds": "never"}
    data["workspaces"]["acme"]["members"]["pipelines"]["roles"] = {"web-app": "god", "ghost": "read"}
    text = problems(data)
    assert "config has 5 problem(s)" in text
    for fragment in ("limits.max_layer_bytes", "limits.upload_timeout_seconds", "gc.grace_seconds",
                     "roles.web-app: role must be one of", "unknown repository 'ghost'"):
        assert fragment in text


def test_top_level_must_be_a_mapping():
    assert "the top level must be a mapping, got list" in problems(["x"])


def test_empty_config_is_valid_with_no_workspaces():
    assert parse_config(None).workspaces == {}


class TestLoadConfig:
    def test_load_from_file(self, tmp_path: Path):
        path = tmp_path / "registry.yml"
        path.write_text(yaml.safe_dump(MINIMAL))
        assert "acme" in load_config(path).workspaces

    def test_the_message_names_the_file(self, tmp_path: Path):
        path = tmp_path / "bad.yml"
        path.write_text(yaml.safe_dump(with_change(["gc", "grace_seconds"], -3)))
        with pytest.raises(ConfigError, match=rf"^{path} has 1 problem"):
            load_config(path)

    def test_missing_file(self, tmp_path: Path):
        with pytest.raises(ConfigError, match="cannot read config .*nope.yml: No such file or directory"):
            load_config(tmp_path / "nope.yml")

    def test_invalid_yaml(self, tmp_path: Path):
        path = tmp_path / "broken.yml"
        path.write_text("workspaces: [unclosed\n")
        with pytest.raises(ConfigError, match="is not valid YAML"):
            load_config(path)


# -- email usernames and scoped API tokens --------------------------------------------------
def with_email_member(member: dict) -> dict:
    return with_change(["workspaces", "acme", "members", "dev@example.com"], member)


def test_an_email_username_holds_several_scoped_api_tokens_and_no_token_of_its_own():
    hashed = hashlib.sha256(b"t-2").hexdigest()
    config = parse_config(with_email_member({"roles": {"web-app": "admin"}, "api_tokens": [
        {"token": "t-1", "scopes": ["read:package:bitbucket"]},
        {"token_sha256": hashed, "scopes": ["read:package:bitbucket", "write:package:bitbucket"]},
    ]}))
    member = config.member("acme", "dev@example.com")
    assert member.token_sha256 is None and member.roles == {"web-app": "admin"}
    assert member.match("t-1") == frozenset({"pull"})
    assert member.match("t-2") == frozenset({"pull", "push", "delete"})
    assert member.match("t-3") is None and member.match("") is None and member.match(hashed) is None
    # A member's own token has every scope; both kinds may be held at once.
    both = parse_config(with_email_member({"token": "own", "roles": {}, "api_tokens": [
        {"token": "t-1", "scopes": ["read:package:bitbucket"]}]})).member("acme", "dev@example.com")
    assert both.match("own") == frozenset({"pull", "push", "delete"}) and both.match("t-1") == frozenset({"pull"})


def test_the_design_example_with_api_tokens_parses():
    readme = Path(__file__).resolve().parents[2].joinpath("registry", "README.md").read_text()
    design = yaml.safe_load(readme.split("## Config\n", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
                            .replace("<hex>", "a" * 64))
    config = parse_config(design)
    assert config.member("acme", "dev@example.com").match("t-1") == frozenset({"pull"})


@pytest.mark.parametrize("member, message", [
    ({"roles": {}}, "give exactly one of token or token_sha256"),
    ({"api_tokens": "t-1"}, "api_tokens must be a list of {token or token_sha256, scopes}"),
    ({"api_tokens": [{"scopes": ["read:package:bitbucket"]}]},
     "api_tokens[0]: give exactly one of token or token_sha256"),
    ({"api_tokens": [{"token": "t"}]},
     "api_tokens[0].scopes must be a non-empty list of read:package:bitbucket, write:package:bitbucket"),
    ({"api_tokens": [{"token": "t", "scopes": []}]}, "api_tokens[0].scopes must be a non-empty list"),
    ({"api_tokens": [{"token": "t", "scopes": ["admin:package:bitbucket"]}]},
     "api_tokens[0].scopes: unknown scope(s) admin:package:bitbucket; "
     "known: read:package:bitbucket, write:package:bitbucket"),
    ({"token": "t", "scope": ["x"]}, "unknown keys scope"),
])
def test_bad_api_tokens_are_refused_with_a_message(member, message):
    found = problems(with_email_member(member))
    assert "workspaces.acme.members.dev@example.com" in found and message in found


def test_a_username_with_a_colon_is_refused():
    assert "a username is a name or an email address, without ':' or spaces" in problems(
        with_change(["workspaces", "acme", "members", "a:b"], {"token": "t"}))


# Shaped like the real ones (the prefix, then base64-like text); never valid anywhere.
ACCESS_TOKEN = "ATCTT3xFfGN0k2l9mQ7vZr8sXw4yBn6cHd1jE5pLa0uKoVi"
APP_PASSWORD = "ATBB7hQ2mZxR9vLk3NsW8cYd5TfG1pJb4e6a"


@pytest.mark.parametrize("member, where, kind", [
    ({"token": ACCESS_TOKEN, "roles": {}}, "dev@example.com.token begins ATCT",
     "a Bitbucket repository, project or workspace access token"),
    ({"api_tokens": [{"token": APP_PASSWORD, "scopes": ["read:package:bitbucket"]}]},
     "dev@example.com.api_tokens[0].token begins ATBB", "a Bitbucket app password"),
])
def test_an_access_token_or_app_password_in_the_config_is_refused_by_kind_never_by_value(member, where, kind):
    # The registry refuses them as passwords, so such a member could never log in: a config error at start.
    found = problems(with_email_member(member))
    assert where in found and f"the prefix of {kind}" in found and "refuses as a password" in found
    assert ACCESS_TOKEN not in found and APP_PASSWORD not in found


def test_an_api_token_prefix_is_an_ordinary_token():
    config = parse_config(with_email_member({"token": "ATATT3xFfGN0example", "roles": {}}))
    assert token_matches(config.member("acme", "dev@example.com"), "ATATT3xFfGN0example")
