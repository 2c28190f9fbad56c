"""Packages, roles, the token endpoint and what crg.apkg.io refuses, tried with real clients."""
from __future__ import annotations

import copy
import hashlib
import time

import jwt
import pytest
import requests

from harness.accounts import TOKENS, default_config
from test.helpers.oci_client import (
    Client,
    digest_of,
    docker,
    docker_login,
    docker_logout,
    docker_push,
    error_codes,
    error_message,
    image_manifest,
    repo_digest,
    verify_tagged_image,
)

APP = "acme/my-container-app"


def granted(registry, user: str, scope: str, secret: str | None = None) -> dict[str, list[str]]:
    r = requests.get(f"{registry.url}/token", params={"scope": scope, "service": "crg.apkg.io"},
                     auth=(user, secret or TOKENS[user]), timeout=10)
    assert r.status_code == 200, r.text
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    return {entry["name"]: entry["actions"] for entry in claims["access"]}


class TestWithDocker:
    def test_push_to_a_missing_package_is_refused_with_what_to_do(self, registry, docker_config, image_factory,
                                                                   docker_refs):
        docker_login(registry, "pipelines")
        r = docker_push(image_factory(), f"{registry.host}/acme/not-created:v1", docker_refs)
        assert r.returncode != 0
        message = r.stderr + r.stdout
        assert "not-created" in message
        assert "create the package" in message and "link it to a repository" in message
        assert registry.api("GET", "/workspaces/acme/storage").json()["blobs"] == 0

    def test_read_member_pulls_but_cannot_push(self, registry, docker_config, image_factory, docker_refs):
        local = image_factory()
        remote = f"{registry.host}/{APP}:v1"
        docker_login(registry, "pipelines")
        assert docker_push(local, remote, docker_refs).returncode == 0
        digest = repo_digest(remote, f"{registry.host}/{APP}")
        docker_logout(registry)

        docker_login(registry, "reader")
        assert docker("rmi", remote).returncode == 0
        pulled = docker("pull", remote)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout

        other = image_factory()
        refused = docker_push(other, f"{registry.host}/{APP}:by-reader", docker_refs)
        assert refused.returncode != 0
        assert "denied" in refused.stderr and "needs write permission" in refused.stderr
        tags = registry.api("GET", "/workspaces/acme/packages/my-container-app", "reader").json()["tags"]
        assert [t["name"] for t in tags] == ["v1"]

    def test_write_member_deletes_a_tag_but_not_the_image_and_admin_deletes_the_image(
            self, registry, docker_config, image_factory, docker_refs):
        local = image_factory()
        docker_login(registry, "pipelines")
        for tag in ("v1", "v2"):
            assert docker_push(local, f"{registry.host}/{APP}:{tag}", docker_refs).returncode == 0

        r = registry.api("DELETE", "/workspaces/acme/packages/my-container-app/tags/v1", "pipelines")
        assert r.status_code == 200, r.text
        docker("rmi", f"{registry.host}/{APP}:v1")
        gone = docker("pull", f"{registry.host}/{APP}:v1")
        assert gone.returncode != 0 and "not found" in gone.stderr.lower()

        r = registry.api("DELETE", "/workspaces/acme/packages/my-container-app", "pipelines")
        assert r.status_code == 403 and "needs admin permission" in r.json()["errors"][0]["message"]
        assert docker("pull", f"{registry.host}/{APP}:v2").returncode == 0

        r = registry.api("DELETE", "/workspaces/acme/packages/my-container-app", "boss")
        assert r.status_code == 200 and r.json() == {"deleted": "my-container-app", "tags_deleted": 1}
        docker("rmi", f"{registry.host}/{APP}:v2")
        gone = docker("pull", f"{registry.host}/{APP}:v2")
        assert gone.returncode != 0
        # The image is gone with its package: pushing again needs the package to be created again.
        again = docker_push(local, f"{registry.host}/{APP}:v3", docker_refs)
        assert again.returncode != 0 and "create the package" in again.stderr


class TestTokenEndpoint:
    @pytest.mark.parametrize("user, expected", [
        ("reader", ["pull"]), ("pipelines", ["pull", "push"]), ("boss", ["delete", "pull", "push"]), ("outsider", []),
    ])
    def test_grants_the_intersection_of_scope_and_role(self, registry, user, expected):
        assert granted(registry, user, f"repository:{APP}:pull,push,delete") == {APP: expected}
        assert granted(registry, user, f"repository:{APP}:*") == {APP: expected}
        assert granted(registry, user, f"repository:{APP}:pull") == {APP: [a for a in expected if a == "pull"]}

    def test_role_follows_the_repository_the_package_is_linked_to(self, registry):
        assert granted(registry, "reader", "repository:acme/tool-image:pull") == {"acme/tool-image": []}
        assert granted(registry, "pipelines", "repository:acme/tool-image:pull,push") == {
            "acme/tool-image": ["pull", "push"]}

    def test_several_scopes_in_one_request(self, registry):
        r = requests.get(f"{registry.url}/token", params=[
            ("scope", f"repository:{APP}:pull,push"), ("scope", "repository:acme/tool-image:pull"),
            ("service", "crg.apkg.io")], auth=("reader", TOKENS["reader"]), timeout=10)
        claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
        assert {e["name"]: e["actions"] for e in claims["access"]} == {APP: ["pull"], "acme/tool-image": []}

    def test_missing_package_grants_nothing(self, registry):
        for user in ("reader", "pipelines", "boss", "outsider"):
            assert granted(registry, user, "repository:acme/nope:pull,push") == {"acme/nope": []}

    def test_password_grant_as_containerd_sends_it(self, registry):
        r = requests.post(f"{registry.url}/token", data={
            "grant_type": "password", "username": "pipelines", "password": TOKENS["pipelines"],
            "scope": f"repository:{APP}:pull,push", "service": "crg.apkg.io", "client_id": "test"}, timeout=10)
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["access"] == [{"type": "repository", "name": APP, "actions": ["pull", "push"]}]

    @pytest.mark.parametrize("auth", [None, ("pipelines", "wrong"), ("nobody", "x"), ("pipelines", "")])
    def test_bad_credentials_get_no_token(self, registry, auth):
        r = requests.get(f"{registry.url}/token", params={"scope": f"repository:{APP}:pull"}, auth=auth, timeout=10)
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
        assert "token" not in r.json()
        assert r.headers["WWW-Authenticate"].startswith("Basic")

    def test_docker_login_with_wrong_token_fails(self, registry, docker_config):
        r = docker("login", registry.host, "-u", "pipelines", "--password-stdin", input="wrong", timeout=60)
        assert r.returncode != 0 and "unauthorized" in r.stderr.lower()


class TestNoRoleTellsNothing:
    def answers(self, registry, user: str, package: str) -> list[tuple]:
        """Every answer a member gets about a package, with the package name blanked out."""
        client = Client(registry, f"acme/{package}", user=user, actions="pull,push")
        out = []
        for method, path in (("GET", "manifests/latest"), ("HEAD", "manifests/latest"),
                             ("GET", f"blobs/{digest_of(b'x')}"), ("HEAD", f"blobs/{digest_of(b'x')}"),
                             ("POST", "blobs/uploads/"), ("PUT", "manifests/latest")):
            r = client.request(method, path, data=b"{}")
            out.append((method, path, r.status_code, r.text.replace(package, "PKG")))
        token = jwt.decode(client.token(), options={"verify_signature": False})
        out.append(("token", [(e["name"].replace(package, "PKG"), e["actions"]) for e in token["access"]]))
        for path in (f"/workspaces/acme/packages/{package}", f"/workspaces/acme/packages/{package}/tags/latest"):
            r = registry.api("GET", path, user)
            out.append((path.replace(package, "PKG"), r.status_code, r.text.replace(package, "PKG")))
        r = registry.api("DELETE", f"/workspaces/acme/packages/{package}/tags/latest", user)
        out.append(("delete tag", r.status_code, r.text.replace(package, "PKG")))
        return out

    @pytest.mark.parametrize("user, hidden", [("outsider", "my-container-app"), ("reader", "tool-image")])
    def test_existing_and_missing_packages_answer_the_same(self, registry, user, hidden):
        Client(registry, f"acme/{hidden}", user="boss").push_image("latest", [b"layer"])
        existing, missing = self.answers(registry, user, hidden), self.answers(registry, user, "no-such-pkg")
        assert existing == missing
        assert all(a[2] in (403, 404) for a in existing if a[0] in ("GET", "HEAD", "POST", "PUT"))
        listed = registry.api("GET", "/workspaces/acme/packages", user).json()["packages"]
        assert hidden not in [p["name"] for p in listed]


class TestWorkspacesAndExpiry:
    def test_a_token_from_another_workspace_does_not_open_acme(self, registry):
        Client(registry, APP, user="boss").push_image("v1", [b"layer"])
        # The same username in globex, with globex's token, asks for acme: nothing is granted.
        assert granted(registry, "pipelines", f"repository:{APP}:pull,push", "globex-token-11aa") == {APP: []}
        foreign = Client(registry, APP, user="pipelines", secret="globex-token-11aa")
        assert foreign.get_manifest("v1").status_code == 401
        assert foreign.request("POST", "blobs/uploads/").status_code == 401
        # A token granted for globex carries nothing for acme either.
        globex = Client(registry, "globex/site-image", user="pipelines", secret="globex-token-11aa")
        r = globex.request("GET", f"{registry.url}/v2/{APP}/manifests/v1")
        assert r.status_code == 401
        assert globex.request("GET", "manifests/v1").status_code == 404  # its own workspace works
        r = requests.get(f"{registry.url}/api/workspaces/acme/packages", auth=("pipelines", "globex-token-11aa"),
                         timeout=10)
        assert r.status_code == 401

    def test_expired_token_is_refused(self, registry_factory):
        config = default_config()
        config["auth"] = {"token_ttl_seconds": 1}
        registry = registry_factory(config)
        client = Client(registry, APP)
        digest = client.push_blob(b"some content")
        assert client.head_blob(digest).status_code == 200
        deadline = time.monotonic() + 10
        r = client.head_blob(digest)
        while r.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            r = client.head_blob(digest)
        assert r.status_code == 401
        assert time.monotonic() < deadline
        r = client.get_blob(digest)
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
        client._token = None  # a fresh token works again
        assert client.head_blob(digest).status_code == 200

    def test_token_sha256_in_the_config(self, registry_factory, docker_config, image_factory, docker_refs):
        config = copy.deepcopy(default_config())
        secret = "hashed-only-secret-42"
        member = config["workspaces"]["acme"]["members"]["pipelines"]
        member.pop("token")
        member["token_sha256"] = hashlib.sha256(secret.encode()).hexdigest()
        registry = registry_factory(config)
        assert secret not in registry.config_path.read_text()
        assert granted(registry, "pipelines", f"repository:{APP}:push", secret) == {APP: ["push"]}
        r = requests.get(f"{registry.url}/token", auth=("pipelines", member["token_sha256"]), timeout=10)
        assert r.status_code == 401
        login = docker("login", registry.host, "-u", "pipelines", "--password-stdin", input=secret, timeout=60)
        assert login.returncode == 0, login.stderr
        assert docker_push(image_factory(), f"{registry.host}/{APP}:hashed", docker_refs).returncode == 0
        assert verify_tagged_image(Client(registry, APP, secret=secret), "hashed") == 2


class TestUnsupportedLikeCrg:
    @pytest.mark.parametrize("method, path", [
        ("DELETE", f"/v2/{APP}/manifests/v1"),
        ("DELETE", f"/v2/{APP}/manifests/{digest_of(b'x')}"),
        ("DELETE", f"/v2/{APP}/blobs/{digest_of(b'x')}"),
        ("GET", f"/v2/{APP}/tags/list"),
        ("GET", "/v2/_catalog"),
    ])
    def test_405_unsupported(self, registry, method, path):
        client = Client(registry, APP, user="boss", actions="pull,push,delete")
        body = image_manifest(client, [b"layer"])
        client.put_manifest("v1", body, None)
        for headers in ({}, {"Authorization": f"Bearer {client.token()}"}):
            r = requests.request(method, registry.url + path, headers=headers, timeout=10)
            assert r.status_code == 405, (headers, r.text)
            assert error_codes(r) == ["UNSUPPORTED"]
            assert "management API" in error_message(r)
        # Nothing was deleted.
        assert client.get_manifest("v1").content == body
