"""The OCI Distribution API of the embedded registry, with the docker CLI, skopeo and raw HTTP."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from harness.accounts import TOKENS
from test.helpers.oci_client import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    digest_of,
    docker,
    docker_login,
    docker_push,
    error_codes,
    image_id,
    image_manifest,
    index_manifest,
    repo_digest,
    verify_tagged_image,
)

APP = "acme/my-container-app"


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout)


def storage(registry) -> dict:
    r = registry.api("GET", "/workspaces/acme/storage")
    assert r.status_code == 200, r.text
    return r.json()


class TestDockerAndSkopeo:
    def test_docker_push_then_pull_back_gives_the_same_digest(self, registry, docker_config, image_factory,
                                                              docker_refs):
        local = image_factory(layers=[200_000, 50_000])
        remote = f"{registry.host}/{APP}:v1"
        docker_login(registry, "pipelines")
        pushed = docker_push(local, remote, docker_refs)
        assert pushed.returncode == 0, pushed.stderr
        pushed_digest = repo_digest(remote, f"{registry.host}/{APP}")
        assert f"digest: {pushed_digest}" in pushed.stdout
        original_id = image_id(local)

        assert docker("rmi", remote).returncode == 0  # only the registry tag: the image stays as `local`
        docker_refs.remove(remote)
        docker("rmi", local)  # pull must fetch the layers, not reuse them
        pulled = docker("pull", remote)
        docker_refs.append(remote)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {pushed_digest}" in pulled.stdout
        assert image_id(remote) == original_id
        assert repo_digest(remote, f"{registry.host}/{APP}") == pushed_digest
        # And the raw API serves the same bytes the daemon hashed.
        client = Client(registry, APP)
        assert client.get_manifest("v1").headers["Docker-Content-Digest"] == pushed_digest
        assert verify_tagged_image(client, "v1") == 3

    def test_skopeo_inspect_and_copy_between_packages(self, registry, docker_config, image_factory, docker_refs):
        local = image_factory(layers=[100_000])
        docker_login(registry, "pipelines")
        assert docker_push(local, f"{registry.host}/{APP}:src", docker_refs).returncode == 0
        digest = repo_digest(f"{registry.host}/{APP}:src", f"{registry.host}/{APP}")
        creds = f"pipelines:{TOKENS['pipelines']}"

        r = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", creds, f"docker://{registry.host}/{APP}:src")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == digest and info["Architecture"] and len(info["Layers"]) == 1

        r = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", creds,
                   "--dest-creds", creds, f"docker://{registry.host}/{APP}:src",
                   f"docker://{registry.host}/acme/other-app:copied")
        assert r.returncode == 0, r.stderr
        copied = Client(registry, "acme/other-app")
        assert copied.get_manifest("copied").headers["Docker-Content-Digest"] == digest
        assert verify_tagged_image(copied, "copied") == 2

        r = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", f"reader:{TOKENS['reader']}",
                   f"docker://{registry.host}/acme/other-app:copied")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Digest"] == digest

    def test_skopeo_without_no_tags_meets_the_unsupported_tags_api(self, registry):
        """crg.apkg.io answers 405 on tags/list; skopeo inspect then fails unless told --no-tags."""
        client = Client(registry, APP)
        client.push_image("v1", [b"layer"])
        r = skopeo("inspect", "--tls-verify=false", "--creds", f"pipelines:{TOKENS['pipelines']}",
                   f"docker://{registry.host}/{APP}:v1")
        assert r.returncode != 0
        assert "405" in r.stderr or "UNSUPPORTED" in r.stderr.upper() or "unsupported" in r.stderr


class TestBlobs:
    def test_head_get_and_range(self, registry):
        client = Client(registry, APP)
        data = os.urandom(300_000)
        digest = client.push_blob(data)

        head = client.head_blob(digest)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.content == b""

        get = client.get_blob(digest)
        assert get.status_code == 200 and get.content == data
        assert get.headers["Docker-Content-Digest"] == digest and get.headers["Content-Length"] == str(len(data))

        part = client.get_blob(digest, headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.content == data[1000:2000]
        assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        tail = client.get_blob(digest, headers={"Range": f"bytes={len(data) - 10}-"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        beyond = client.get_blob(digest, headers={"Range": f"bytes={len(data) + 5}-"})
        assert beyond.status_code == 416

    def test_unknown_blob(self, registry):
        client = Client(registry, APP)
        missing = digest_of(b"never uploaded")
        assert client.head_blob(missing).status_code == 404
        r = client.get_blob(missing)
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UNKNOWN"]
        r = client.get_blob("sha256:nothex")
        assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
        r = client.get_blob("sha512:" + "a" * 128)
        assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]

    def test_chunked_patch_with_content_range_and_length(self, registry):
        client = Client(registry, APP)
        data = os.urandom(250_000)
        location = client.start_upload()
        chunks = [data[:100_000], data[100_000:200_000], data[200_000:]]
        offset = 0
        for chunk in chunks:
            r = client.request("PATCH", location, data=chunk, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Length": str(len(chunk)),
            })
            assert r.status_code == 202, r.text
            offset += len(chunk)
            assert r.headers["Range"] == f"0-{offset - 1}"
            location = r.headers["Location"]
        status = client.request("GET", location)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{len(data) - 1}"
        assert status.headers["Docker-Upload-UUID"] in location
        r = client.request("PUT", location, params={"digest": digest_of(data)})
        assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == digest_of(data)
        assert r.headers["Location"].endswith(f"/v2/{APP}/blobs/{digest_of(data)}")
        assert client.get_blob(digest_of(data)).content == data

    def test_streamed_patch_without_content_range_or_length(self, registry):
        """The classic docker pusher sends one chunked PATCH with neither header."""
        client = Client(registry, APP)
        data = os.urandom(3 * 1024 * 1024 + 7)
        location = client.start_upload()

        def stream():
            for i in range(0, len(data), 65536):
                yield data[i:i + 65536]

        r = client.request("PATCH", location, data=stream())
        assert r.status_code == 202, r.text
        assert r.headers["Range"] == f"0-{len(data) - 1}"
        r = client.request("PUT", r.headers["Location"], params={"digest": digest_of(data)})
        assert r.status_code == 201, r.text
        assert client.get_blob(digest_of(data)).content == data

    def test_final_chunk_in_the_put(self, registry):
        client = Client(registry, APP)
        data = os.urandom(10_000)
        location = client.start_upload()
        r = client.request("PATCH", location, data=data[:4000])
        assert r.status_code == 202
        r = client.request("PUT", r.headers["Location"], params={"digest": digest_of(data)}, data=data[4000:])
        assert r.status_code == 201, r.text
        assert client.get_blob(digest_of(data)).content == data

    def test_monolithic_post_with_digest(self, registry):
        client = Client(registry, APP)
        data = os.urandom(5000)
        r = client.request("POST", "blobs/uploads/", params={"digest": digest_of(data)}, data=data,
                           headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest_of(data)
        assert client.get_blob(digest_of(data)).content == data

    def test_empty_blob(self, registry):
        client = Client(registry, APP)
        location = client.start_upload()
        r = client.request("PUT", location, params={"digest": digest_of(b"")})
        assert r.status_code == 201, r.text
        head = client.head_blob(digest_of(b""))
        assert head.status_code == 200 and head.headers["Content-Length"] == "0"

    @pytest.mark.parametrize("monolithic", [False, True])
    def test_wrong_digest_is_refused_and_nothing_is_visible(self, registry, monolithic):
        client = Client(registry, APP)
        data, claimed = os.urandom(20_000), digest_of(b"other content")
        before = storage(registry)
        if monolithic:
            r = client.request("POST", "blobs/uploads/", params={"digest": claimed}, data=data)
        else:
            location = client.start_upload()
            assert client.request("PATCH", location, data=data).status_code == 202
            r = client.request("PUT", location, params={"digest": claimed})
            # The session is gone with its data: it cannot be finished with the right digest now.
            retry = client.request("PUT", location, params={"digest": digest_of(data)})
            assert retry.status_code == 404 and error_codes(retry) == ["BLOB_UPLOAD_UNKNOWN"]
        assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]
        assert client.head_blob(claimed).status_code == 404
        assert client.head_blob(digest_of(data)).status_code == 404
        after = storage(registry)
        assert (after["blobs"], after["stored_bytes"]) == (before["blobs"], before["stored_bytes"])
        assert list((registry.root / "uploads").iterdir()) == []

    def test_put_without_digest_is_digest_invalid(self, registry):
        client = Client(registry, APP)
        location = client.start_upload()
        r = client.request("PUT", location, data=b"abc")
        assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"]

    def test_upload_status_and_cancel(self, registry):
        client = Client(registry, APP)
        location = client.start_upload()
        status = client.request("GET", location)
        assert status.status_code == 204 and status.headers["Range"] == "0-0"
        assert client.request("PATCH", location, data=b"x" * 1000).status_code == 202
        assert client.request("GET", location).headers["Range"] == "0-999"
        assert any((registry.root / "uploads").iterdir())
        r = client.request("DELETE", location)
        assert r.status_code == 204
        assert list((registry.root / "uploads").iterdir()) == []
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            r = client.request(method, location, params={"digest": digest_of(b"x" * 1000)})
            assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"], method

    def test_out_of_order_chunk_answers_416_with_the_range_to_resume_from(self, registry):
        client = Client(registry, APP)
        location = client.start_upload()
        assert client.request("PATCH", location, data=b"a" * 100,
                              headers={"Content-Range": "0-99"}).status_code == 202
        r = client.request("PATCH", location, data=b"b" * 100, headers={"Content-Range": "50-149"})
        assert r.status_code == 416 and error_codes(r) == ["BLOB_UPLOAD_INVALID"]
        assert r.headers["Range"] == "0-99"
        r = client.request("PATCH", location, data=b"b" * 10, headers={"Content-Range": "100-119"})
        assert r.status_code == 416 and error_codes(r) == ["BLOB_UPLOAD_INVALID"]  # 20 bytes declared, 10 sent
        # Refused chunks were not mixed in: the upload goes on from where it was.
        status = client.request("GET", location)
        assert status.status_code == 204 and status.headers["Range"] == "0-99"
        r = client.request("PATCH", location, data=b"c" * 50, headers={"Content-Range": "100-149"})
        assert r.status_code == 202
        data = b"a" * 100 + b"c" * 50
        assert client.request("PUT", location, params={"digest": digest_of(data)}).status_code == 201
        assert client.get_blob(digest_of(data)).content == data

    def test_unknown_upload_ids_and_malformed_ones(self, registry):
        client = Client(registry, APP)
        for upload_id in ("0" * 32, "..", "not-an-id", "%2E%2E%2Fx"):
            r = client.request("GET", f"blobs/uploads/{upload_id}")
            assert r.status_code == 404, upload_id
            # ".." (resolved by the client) leaves a path no route serves: 404 UNSUPPORTED, not NAME_UNKNOWN.
            assert error_codes(r) in (["BLOB_UPLOAD_UNKNOWN"], ["UNSUPPORTED"]), upload_id


class TestManifests:
    def push_child(self, client: Client, media_type: str, platform: tuple[str, str]) -> tuple[str, int, bytes]:
        body = image_manifest(client, [os.urandom(1000)], media_type, platform)
        r = client.put_manifest(digest_of(body), body, media_type)
        assert r.status_code == 201, r.text
        return digest_of(body), len(body), body

    @pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, OCI_MANIFEST])
    def test_image_manifest_by_tag_and_digest(self, registry, media_type):
        client = Client(registry, APP)
        body = image_manifest(client, [os.urandom(2000), os.urandom(3000)], media_type)
        digest = digest_of(body)
        r = client.put_manifest("v1", body, media_type)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest
        assert r.headers["Location"].endswith(f"/v2/{APP}/manifests/{digest}")
        self.assert_served(client, ["v1", digest], body, media_type)

    @pytest.mark.parametrize("index_type, child_type", [(DOCKER_LIST, DOCKER_MANIFEST), (OCI_INDEX, OCI_MANIFEST)])
    def test_index_by_tag_and_digest(self, registry, index_type, child_type):
        client = Client(registry, APP)
        children = []
        for platform in (("linux", "amd64"), ("linux", "arm64")):
            d, size, body = self.push_child(client, child_type, platform)
            children.append((d, size, child_type, platform))
            self.assert_served(client, [d], body, child_type)
        body = index_manifest(index_type, children)
        r = client.put_manifest("multi", body, index_type)
        assert r.status_code == 201, r.text
        assert r.headers["Docker-Content-Digest"] == digest_of(body)
        self.assert_served(client, ["multi", digest_of(body)], body, index_type)

        details = registry.api("GET", "/workspaces/acme/packages/my-container-app/tags/multi", "reader")
        assert details.status_code == 200
        assert [(p["digest"], p["platform"]["architecture"]) for p in details.json()["platforms"]] == [
            (children[0][0], "amd64"), (children[1][0], "arm64")]

    @staticmethod
    def assert_served(client: Client, references: list[str], body: bytes, media_type: str) -> None:
        for reference in references:
            get = client.get_manifest(reference)
            assert get.status_code == 200, get.text
            assert get.content == body  # the exact bytes, whitespace and all
            assert get.headers["Content-Type"] == media_type
            assert get.headers["Docker-Content-Digest"] == digest_of(body)
            assert get.headers["Content-Length"] == str(len(body))
            head = client.get_manifest(reference, "HEAD")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["Docker-Content-Digest"] == digest_of(body)
            assert head.headers["Content-Type"] == media_type
            assert head.headers["Content-Length"] == str(len(body))

    def test_manifest_without_media_type_uses_content_type(self, registry):
        client = Client(registry, APP)
        doc = json.loads(image_manifest(client, [b"layer-bytes"], OCI_MANIFEST))
        del doc["mediaType"]
        body = json.dumps(doc).encode()
        assert client.put_manifest("plain", body, OCI_MANIFEST).status_code == 201
        get = client.get_manifest("plain")
        assert get.content == body and get.headers["Content-Type"] == OCI_MANIFEST

    def test_retagging_moves_the_tag(self, registry):
        client = Client(registry, APP)
        first, _ = client.push_image("moving", [b"one"])
        second, _ = client.push_image("moving", [b"two"])
        assert first != second
        assert client.get_manifest("moving").headers["Docker-Content-Digest"] == second
        tags = registry.api("GET", "/workspaces/acme/packages/my-container-app").json()["tags"]
        assert [(t["name"], t["digest"]) for t in tags] == [("moving", second)]

    @pytest.mark.parametrize("case", [
        "invalid-json", "content-type-mismatch", "unknown-blob", "unknown-child", "digest-mismatch", "bad-tag",
        "too-large",
    ])
    def test_bad_manifests_get_the_right_error_and_store_nothing(self, registry, case):
        client = Client(registry, APP)
        good = image_manifest(client, [b"some layer"], OCI_MANIFEST)
        reference, body, media_type = "bad", good, OCI_MANIFEST
        expected_status, expected_code = 400, "MANIFEST_INVALID"
        if case == "invalid-json":
            body = b"{ not json"
        elif case == "content-type-mismatch":
            media_type = DOCKER_MANIFEST
        elif case == "unknown-blob":
            doc = json.loads(good)
            doc["layers"][0]["digest"] = digest_of(b"never uploaded")
            body = json.dumps(doc).encode()
            expected_code = "MANIFEST_BLOB_UNKNOWN"
        elif case == "unknown-child":
            body = index_manifest(OCI_INDEX, [(digest_of(b"nope"), 10, OCI_MANIFEST, ("linux", "amd64"))])
            media_type, expected_code = OCI_INDEX, "MANIFEST_BLOB_UNKNOWN"
        elif case == "digest-mismatch":
            reference, expected_code = digest_of(b"something else"), "DIGEST_INVALID"
        elif case == "bad-tag":
            reference, expected_code = ".bad-tag", "TAG_INVALID"
        elif case == "too-large":
            doc = json.loads(good)
            doc["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
            body = json.dumps(doc).encode()
            expected_status = 413
        r = client.put_manifest(reference, body, media_type)
        assert r.status_code == expected_status, r.text
        assert error_codes(r) == [expected_code]
        assert client.get_manifest(digest_of(body)).status_code == 404
        if not reference.startswith("sha256:") and case != "bad-tag":
            assert client.get_manifest(reference).status_code == 404
        details = registry.api("GET", "/workspaces/acme/packages/my-container-app")
        assert details.json()["manifests"] == []

    def test_unknown_manifest(self, registry):
        client = Client(registry, APP)
        r = client.get_manifest("nope")
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
        r = client.get_manifest(digest_of(b"nope"))
        assert r.status_code == 404 and error_codes(r) == ["MANIFEST_UNKNOWN"]
        assert client.get_manifest("nope", "HEAD").status_code == 404


class TestNamesOverHttp:
    """Traversal attempts in names, tags, digests and upload ids never touch anything outside the root."""

    @pytest.mark.parametrize("path", [
        "/v2/acme/../../etc/manifests/latest",
        "/v2/acme/%2E%2E/%2E%2E/etc/manifests/latest",
        "/v2/acme%2F..%2F..%2Fetc/manifests/latest",
        "/v2/acme/my-container-app/manifests/..%2F..%2Fetc",
        "/v2/acme/my-container-app/manifests/v1%0A",
        "/v2/acme/my-container-app/manifests/v1%00",
        "/v2/acme/my-container-app/manifests/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
        "/v2/acme/my-container-app/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
        "/v2/acme/my-container-app/blobs/sha256:" + "a" * 64 + "%0A",
        "/v2//etc/passwd/manifests/latest",
        "/v2/acme/my-container-app/blobs/uploads/..%2F..%2Fmetadata.db",
    ])
    def test_traversal_attempts_are_refused(self, registry, path):
        client = Client(registry, APP)
        before = sorted(str(p) for p in registry.root.rglob("*"))
        for method in ("GET", "PUT", "PATCH"):
            r = client.request(method, registry.url + path, data=b'{"schemaVersion": 2}')
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert sorted(str(p) for p in registry.root.rglob("*")) == before

    def test_a_tag_with_a_trailing_newline_is_not_stored(self, registry):
        client = Client(registry, APP)
        body = image_manifest(client, [b"layer"], OCI_MANIFEST)
        r = client.put_manifest("v1%0A", body, OCI_MANIFEST)
        assert r.status_code == 400 and error_codes(r) == ["TAG_INVALID"]
        assert registry.api("GET", "/workspaces/acme/packages/my-container-app").json()["tags"] == []

    def test_requests_without_a_token_are_challenged(self, registry):
        r = requests.get(f"{registry.url}/v2/", timeout=10)
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"]
        header = r.headers["WWW-Authenticate"]
        assert header.startswith(f'Bearer realm="{registry.url}/token"') and 'service="crg.apkg.io"' in header
        r = requests.get(f"{registry.url}/v2/{APP}/manifests/latest", timeout=10)
        assert r.status_code == 401
        assert f'scope="repository:{APP}:pull"' in r.headers["WWW-Authenticate"]
        r = requests.post(f"{registry.url}/v2/{APP}/blobs/uploads/", timeout=10)
        assert r.status_code == 401
        assert f'scope="repository:{APP}:pull,push"' in r.headers["WWW-Authenticate"]
        r = requests.get(f"{registry.url}/v2/", headers={"Authorization": "Bearer forged"}, timeout=10)
        assert r.status_code == 401
        ok = requests.get(f"{registry.url}/v2/", headers={"Authorization": f"Bearer {Client(registry, APP).token()}"},
                          timeout=10)
        assert ok.status_code == 200 and ok.headers["Docker-Distribution-API-Version"] == "registry/2.0"
