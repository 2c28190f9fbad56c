"""The management API: every route, with the role each one needs."""
from __future__ import annotations

import json

import requests

from harness.accounts import TOKENS
from test.helpers.oci_client import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    digest_of,
    image_manifest,
    index_manifest,
)

APP = "acme/my-container-app"
WS = "/workspaces/acme"


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["packages"]]


def code(response) -> tuple[int, str]:
    return response.status_code, response.json()["errors"][0]["code"]


class TestCredentials:
    def test_basic_credentials_are_required_and_checked(self, registry):
        url = f"{registry.url}/api{WS}/packages"
        r = requests.get(url, timeout=10)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url, auth=("boss", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("boss", TOKENS["reader"]), timeout=10).status_code == 401
        bearer = Client(registry, APP, user="boss").token()
        assert requests.get(url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10).status_code == 401
        assert registry.api("GET", "/workspaces/globex/packages").status_code == 401
        assert registry.api("GET", "/workspaces/..%2F..%2Fetc/packages").status_code in (401, 404)


class TestListing:
    def test_list_by_workspace_project_and_repository_shows_only_what_the_member_may_read(self, registry):
        assert names(registry.api("GET", f"{WS}/packages")) == ["my-container-app", "other-app", "tool-image"]
        assert names(registry.api("GET", f"{WS}/packages", "pipelines")) == [
            "my-container-app", "other-app", "tool-image"]
        assert names(registry.api("GET", f"{WS}/packages", "reader")) == ["my-container-app", "other-app"]
        assert names(registry.api("GET", f"{WS}/packages", "outsider")) == []
        assert names(registry.api("GET", f"{WS}/packages?project=OPS")) == ["tool-image"]
        assert names(registry.api("GET", f"{WS}/packages?project=WEB")) == ["my-container-app", "other-app"]
        assert names(registry.api("GET", f"{WS}/packages?repository=tools")) == ["tool-image"]
        assert names(registry.api("GET", f"{WS}/packages?repository=tools", "reader")) == []
        assert names(registry.api("GET", f"{WS}/packages?project=WEB&repository=tools")) == []
        assert names(registry.api("GET", f"{WS}/packages?project=NOPE")) == []

    def test_summary_fields(self, registry):
        Client(registry, APP).push_image("v1", [b"abc"])
        item = registry.api("GET", f"{WS}/packages", "reader").json()["packages"][0]
        assert item["name"] == "my-container-app" and item["repository"] == "web-app" and item["project"] == "WEB"
        assert item["reference"] == "crg.apkg.io/acme/my-container-app" and item["tags"] == 1
        assert item["created_at"].endswith("Z") and item["updated_at"].endswith("Z")


class TestCreatePackage:
    def test_admin_creates_a_package_and_then_it_can_be_pushed(self, registry):
        client = Client(registry, "acme/new-app")
        r = client.request("POST", "blobs/uploads/")
        assert r.status_code == 404 and "create the package" in r.text
        r = registry.api("POST", f"{WS}/packages", "boss", json={"name": "new-app", "repository": "web-app"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "new-app" and r.json()["repository"] == "web-app" and r.json()["project"] == "WEB"
        client = Client(registry, "acme/new-app")  # a fresh token: the package exists now
        digest, _ = client.push_image("v1", [b"now it works"])
        assert client.get_manifest("v1").headers["Docker-Content-Digest"] == digest
        # It inherits the repository's permissions.
        assert Client(registry, "acme/new-app", user="reader", actions="pull").get_manifest("v1").status_code == 200
        assert "new-app" in names(registry.api("GET", f"{WS}/packages?repository=web-app", "reader"))

    def test_nested_names(self, registry):
        r = registry.api("POST", f"{WS}/packages", "boss", json={"name": "team/app", "repository": "tools"})
        assert r.status_code == 201, r.text
        Client(registry, "acme/team/app").push_image("v1", [b"x"])
        details = registry.api("GET", f"{WS}/packages/team/app", "pipelines")
        assert details.status_code == 200 and [t["name"] for t in details.json()["tags"]] == ["v1"]
        tag = registry.api("GET", f"{WS}/packages/team/app/tags/v1", "pipelines")
        assert tag.status_code == 200 and tag.json()["name"] == "v1"

    def test_create_needs_admin_on_that_repository(self, registry):
        for user in ("pipelines", "reader", "outsider"):
            r = registry.api("POST", f"{WS}/packages", user, json={"name": "x-app", "repository": "web-app"})
            assert code(r) == (403, "DENIED"), user
            assert "needs admin permission on repository 'web-app'" in r.text
        assert "x-app" not in names(registry.api("GET", f"{WS}/packages"))

    def test_create_validation(self, registry):
        cases = [
            ({"name": "my-container-app", "repository": "web-app"}, (409, "NAME_EXISTS")),
            ({"name": "Bad Name", "repository": "web-app"}, (400, "NAME_INVALID")),
            ({"name": "../etc", "repository": "web-app"}, (400, "NAME_INVALID")),
            ({"name": "app\n", "repository": "web-app"}, (400, "NAME_INVALID")),
            ({"name": "ok-app", "repository": "nope"}, (400, "INVALID_REQUEST")),
            ({"name": "ok-app"}, (400, "INVALID_REQUEST")),
            (["ok-app"], (400, "NAME_INVALID")),
        ]
        for body, expected in cases:
            assert code(registry.api("POST", f"{WS}/packages", "boss", json=body)) == expected, body
        r = registry.api("POST", f"{WS}/packages", "boss", data=b"{not json",
                         headers={"Content-Type": "application/json"})
        assert code(r) == (400, "INVALID_REQUEST")
        assert names(registry.api("GET", f"{WS}/packages")) == ["my-container-app", "other-app", "tool-image"]


class TestDetails:
    def test_image_and_tag_details(self, registry):
        client = Client(registry, APP)
        layers = [b"a" * 1000, b"b" * 2000]
        digest, body = client.push_image("v1", layers, DOCKER_MANIFEST, platform=("linux", "arm64"))
        client.put_manifest("also", body, DOCKER_MANIFEST)
        details = registry.api("GET", f"{WS}/packages/my-container-app", "reader")
        assert details.status_code == 200
        d = details.json()
        assert [(t["name"], t["digest"]) for t in d["tags"]] == [("also", digest), ("v1", digest)]
        [manifest] = d["manifests"]
        assert manifest["digest"] == digest and manifest["media_type"] == DOCKER_MANIFEST
        assert sorted(manifest["tags"]) == ["also", "v1"]
        config_size = json_size(client, body)
        assert manifest["size"] == len(body) + 3000 + config_size == d["tags"][0]["size"]
        assert d["size"] == len(body) + 3000 + config_size
        assert all(t["updated_at"].endswith("Z") for t in d["tags"])

        tag = registry.api("GET", f"{WS}/packages/my-container-app/tags/v1", "reader").json()
        assert tag["digest"] == digest and tag["media_type"] == DOCKER_MANIFEST
        assert tag["platform"] == {"os": "linux", "architecture": "arm64"}
        assert [(layer["digest"], layer["size"]) for layer in tag["layers"]] == [
            (digest_of(layers[0]), 1000), (digest_of(layers[1]), 2000)]
        assert tag["size"] == len(body) + 3000 + config_size

    def test_index_tag_details_list_its_platforms(self, registry):
        client = Client(registry, APP)
        children = []
        for arch in ("amd64", "arm64", "s390x"):
            body = image_manifest(client, [arch.encode()], OCI_MANIFEST, ("linux", arch))
            assert client.put_manifest(digest_of(body), body, OCI_MANIFEST).status_code == 201
            children.append((digest_of(body), len(body), OCI_MANIFEST, ("linux", arch)))
        index = index_manifest(OCI_INDEX, children)
        assert client.put_manifest("multi", index, OCI_INDEX).status_code == 201
        tag = registry.api("GET", f"{WS}/packages/my-container-app/tags/multi", "reader").json()
        assert tag["media_type"] == OCI_INDEX and tag["digest"] == digest_of(index)
        assert [(p["digest"], p["platform"]) for p in tag["platforms"]] == [
            (d, {"os": "linux", "architecture": a[1]}) for d, _, _, a in children]
        assert "layers" not in tag
        sizes = registry.api("GET", f"{WS}/packages/my-container-app").json()["tags"]
        assert sizes[0]["size"] > len(index) + sum(size for _, size, _, _ in children)

    def test_unknown_tag_and_package(self, registry):
        assert code(registry.api("GET", f"{WS}/packages/my-container-app/tags/nope")) == (404, "MANIFEST_UNKNOWN")
        assert code(registry.api("GET", f"{WS}/packages/my-container-app/tags/.bad")) == (404, "MANIFEST_UNKNOWN")
        assert code(registry.api("GET", f"{WS}/packages/nope")) == (404, "NAME_UNKNOWN")

    def test_details_need_read(self, registry):
        for path in (f"{WS}/packages/tool-image", f"{WS}/packages/tool-image/tags/v1"):
            # No role there and no push anywhere: the same DENIED as /v2/ (access.check_package).
            assert code(registry.api("GET", path, "reader")) == (403, "DENIED")
            assert code(registry.api("GET", path, "outsider")) == (403, "DENIED")
        assert registry.api("GET", f"{WS}/packages/tool-image", "pipelines").status_code == 200


def json_size(client: Client, manifest_body: bytes) -> int:
    return json.loads(manifest_body)["config"]["size"]


class TestDeletes:
    def test_delete_tag_needs_write(self, registry):
        client = Client(registry, APP)
        client.push_image("v1", [b"x"])
        for user in ("reader", "outsider"):
            r = registry.api("DELETE", f"{WS}/packages/my-container-app/tags/v1", user)
            assert r.status_code in (403, 404), user
        assert code(registry.api("DELETE", f"{WS}/packages/my-container-app/tags/v1", "reader")) == (403, "DENIED")
        assert client.get_manifest("v1").status_code == 200
        r = registry.api("DELETE", f"{WS}/packages/my-container-app/tags/v1", "pipelines")
        assert r.status_code == 200 and r.json() == {"deleted": "v1", "package": "my-container-app"}
        assert client.get_manifest("v1").status_code == 404
        again = registry.api("DELETE", f"{WS}/packages/my-container-app/tags/v1", "pipelines")
        assert code(again) == (404, "MANIFEST_UNKNOWN")

    def test_delete_image_needs_admin(self, registry):
        client = Client(registry, APP)
        client.push_image("v1", [b"x"])
        client.push_image("v2", [b"y"])
        for user in ("pipelines", "reader"):
            assert code(registry.api("DELETE", f"{WS}/packages/my-container-app", user)) == (403, "DENIED")
        assert code(registry.api("DELETE", f"{WS}/packages/my-container-app", "outsider")) == (403, "DENIED")
        assert client.get_manifest("v1").status_code == 200
        r = registry.api("DELETE", f"{WS}/packages/my-container-app", "boss")
        assert r.json() == {"deleted": "my-container-app", "tags_deleted": 2}
        assert "my-container-app" not in names(registry.api("GET", f"{WS}/packages"))
        assert code(registry.api("GET", f"{WS}/packages/my-container-app")) == (404, "NAME_UNKNOWN")
        fresh = Client(registry, APP)
        assert fresh.get_manifest("v1").status_code == 404
        assert code(registry.api("DELETE", f"{WS}/packages/my-container-app", "boss")) == (404, "NAME_UNKNOWN")


class TestStorageAndCollection:
    def test_storage_needs_a_role(self, registry):
        r = registry.api("GET", f"{WS}/storage", "reader")
        assert r.status_code == 200
        assert {"stored_bytes", "blobs", "reclaimable_bytes", "gc"} <= set(r.json())
        assert code(registry.api("GET", f"{WS}/storage", "outsider")) == (403, "DENIED")

    def test_collection_on_demand_needs_admin(self, registry):
        for user in ("pipelines", "reader", "outsider"):
            assert code(registry.api("POST", f"{WS}/gc", user)) == (403, "DENIED"), user
        r = registry.api("POST", f"{WS}/gc", "boss")
        assert r.status_code == 200 and r.json()["workspace"] == "acme"
        assert registry.api("GET", f"{WS}/storage").json()["gc"]["runs"] >= 1
