"""Bitbucket access tokens (`ATCT…`) and app passwords (`ATBB…`): the registry refuses them, the pipe says so.

crg.apkg.io takes Atlassian API tokens (`ATAT…`) with the package scopes and the step's pipeline credentials,
never access tokens, and app passwords no more since 9 June 2026. The emulator refuses such a password with a
plain 401 wherever credentials are checked (the token endpoint, Basic auth), even for a member whose
`token_sha256` is its hash; a config that names one in clear is refused at start. The same member's API token
works, so every refusal here is the kind's. The pipe, refused, names the kind and what to create instead,
with either engine, and never prints the token, DEBUG or not.
"""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import requests
import yaml

from harness.accounts import default_config
from harness.paths import REPO_ROOT
from harness.registry_process import RegistryProcess
from registry.config import sha256_hex
from test.helpers.oci_client import Client, docker, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, pipe_variables, run_pipe

HOLDER = "holder@example.com"
SUFFIX = uuid.uuid4().hex  # a fresh secret per run, so a leak cannot hide behind an older one
TOKENS = {
    "access-token": "ATCTT3xFfGN0" + SUFFIX,
    "app-password": "ATBB" + SUFFIX[:28],
    "api-token": "ATATT3xFfGN0" + SUFFIX,
}
REFUSED = ("access-token", "app-password")
LOOKS_LIKE = {
    "access-token": "BITBUCKET_PACKAGES_TOKEN looks like a Bitbucket repository, project or workspace access token "
                    "(it begins ATCT), and the container registry does not accept access tokens",
    "app-password": "BITBUCKET_PACKAGES_TOKEN looks like a Bitbucket app password (it begins ATBB), and the container "
                    "registry does not accept app passwords (they stopped working on 9 June 2026)",
}
WRITE = ["read:package:bitbucket", "write:package:bitbucket"]
APP = "acme/my-container-app"


def config() -> dict:
    data = default_config()
    # Every kind as a write-scoped API token of one member: only the kind can make the difference.
    data["workspaces"]["acme"]["members"][HOLDER] = {"roles": {"web-app": "write"}, "api_tokens": [
        {"token_sha256": sha256_hex(TOKENS["access-token"]), "scopes": WRITE},
        {"token_sha256": sha256_hex(TOKENS["app-password"]), "scopes": WRITE},
        {"token": TOKENS["api-token"], "scopes": WRITE},
    ]}
    return data


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    registry = RegistryProcess(tmp_path_factory.mktemp("refused-tokens") / "registry", config()).start()
    yield registry
    registry.stop()


def tags(registry) -> list[str]:
    r = registry.api("GET", "/workspaces/acme/packages/my-container-app")
    assert r.status_code == 200, r.text
    return [t["name"] for t in r.json()["tags"]]


@pytest.mark.parametrize("kind", [*REFUSED, "api-token"])
def test_the_token_endpoint_and_basic_auth_refuse_them_with_a_plain_401(registry, kind):
    token = TOKENS[kind]
    scope = {"scope": f"repository:{APP}:pull,push", "service": "crg.apkg.io"}
    answers = {
        "token (Basic)": requests.get(f"{registry.url}/token", params=scope, auth=(HOLDER, token), timeout=30),
        "token (password grant)": requests.post(f"{registry.url}/token", timeout=30, data={
            "grant_type": "password", "username": HOLDER, "password": token, **scope}),
        "management API": requests.get(f"{registry.url}/api/workspaces/acme/packages", auth=(HOLDER, token),
                                       timeout=30),
    }
    for where, r in answers.items():
        if kind == "api-token":
            assert r.status_code == 200, (where, r.text)
            continue
        assert r.status_code == 401, (where, r.text)
        assert r.headers["WWW-Authenticate"].startswith("Basic "), where
        # Plain: the words of any wrong password, nothing about the kind.
        message = r.json()["errors"][0]["message"]
        assert message in ("invalid username or token", "invalid username or token for this workspace"), where
        assert token not in r.text


@pytest.mark.parametrize("kind", [*REFUSED, "api-token"])
def test_docker_login(registry, kind, docker_daemon, docker_config):
    r = docker("login", registry.host, "-u", HOLDER, "--password-stdin", input=TOKENS[kind], timeout=60)
    if kind == "api-token":
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode != 0 and "invalid username or token" in r.stderr, r.stderr


@pytest.mark.parametrize("kind", REFUSED)
def test_a_config_naming_one_in_clear_is_refused_at_start_by_kind(tmp_path, kind):
    data = config()
    data["workspaces"]["acme"]["members"]["pipelines"]["token"] = TOKENS[kind]
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(data))
    r = subprocess.run([sys.executable, "-m", "registry", "serve", "--root", str(tmp_path / "root"), "--config",
                        str(path), "--listen", "127.0.0.1:0"], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    prefix = TOKENS[kind][:4]
    assert f"workspaces.acme.members.pipelines.token begins {prefix}" in r.stderr
    assert "which the container registry refuses as a password" in r.stderr
    assert TOKENS[kind] not in r.stderr + r.stdout


@pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])
@pytest.mark.parametrize("engine", ["native", "docker"])
@pytest.mark.parametrize("kind", REFUSED)
def test_the_pipe_names_the_kind_and_what_to_create_instead(registry, local_image, kind, engine, debug):
    token = TOKENS[kind]
    run = run_pipe(pipe_variables(registry.host, local_image, TAGS=f"refused-{kind}", PUSH_ENGINE=engine,
                                  DEBUG=str(debug).lower(), BITBUCKET_PACKAGES_USERNAME=HOLDER,
                                  BITBUCKET_PACKAGES_TOKEN=token))
    assert run.returncode == 1, str(run)
    assert run.last_line.startswith(f"✖ Login to {registry.host} refused for user {HOLDER}: {LOOKS_LIKE[kind]}; "
                                    "create an Atlassian API token with the scopes read:package:bitbucket and "
                                    "write:package:bitbucket and set it as BITBUCKET_PACKAGES_TOKEN"), str(run)
    assert run.last_line.endswith("(registry said: unauthorized: invalid username or token)"), str(run)
    assert ("DEBUG:" in run.stderr) == debug, str(run)
    assert "Traceback" not in run.output or debug, str(run)
    assert_no_secret(run, HOLDER, token)
    assert SUFFIX not in run.output  # not even the part after the prefix
    assert f"refused-{kind}" not in tags(registry)


def test_the_same_member_pushes_with_its_api_token(registry, local_image):
    run = run_pipe(pipe_variables(registry.host, local_image, TAGS="api-token", BITBUCKET_PACKAGES_USERNAME=HOLDER,
                                  BITBUCKET_PACKAGES_TOKEN=TOKENS["api-token"]))
    assert run.returncode == 0, str(run)
    assert_no_secret(run, HOLDER, TOKENS["api-token"])
    assert verify_tagged_image(Client(registry, APP, user="boss"), "api-token") >= 2
