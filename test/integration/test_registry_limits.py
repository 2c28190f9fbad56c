"""Layer size and upload time limits, and who may use an upload session."""
from __future__ import annotations

import os
import time

import pytest

from harness.accounts import default_config
from test.helpers.oci_client import Client, digest_of, docker_login, docker_push, error_codes, error_message

APP = "acme/my-container-app"
LIMIT = 1024 * 1024


@pytest.fixture
def limited(registry_factory):
    config = default_config()
    config["limits"] = {"max_layer_bytes": LIMIT, "upload_timeout_seconds": 420}
    return registry_factory(config)


def assert_too_large(r) -> None:
    assert r.status_code == 413, r.text
    assert str(LIMIT) in error_message(r)
    assert r.json()["errors"][0]["detail"] == {"max_layer_bytes": LIMIT}


def assert_nothing_stored(registry, *digests: str) -> None:
    client = Client(registry, APP)
    for digest in digests:
        assert client.head_blob(digest).status_code == 404
    assert registry.api("GET", "/workspaces/acme/storage").json()["blobs"] == 0
    assert list((registry.root / "uploads").iterdir()) == []


def chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i:i + size]


class TestLayerLimit:
    def test_a_layer_of_exactly_the_limit_is_accepted(self, limited):
        data = os.urandom(LIMIT)
        assert Client(limited, APP).push_blob(data) == digest_of(data)

    def test_monolithic_post_with_declared_length_over_the_limit(self, limited):
        data = os.urandom(LIMIT + 1)
        client = Client(limited, APP)
        r = client.request("POST", "blobs/uploads/", params={"digest": digest_of(data)}, data=data)
        assert_too_large(r)
        assert_nothing_stored(limited, digest_of(data))

    def test_patch_with_declared_length_over_the_limit_discards_the_session(self, limited):
        client = Client(limited, APP)
        location = client.start_upload()
        first = os.urandom(LIMIT // 2)
        assert client.request("PATCH", location, data=first).status_code == 202
        assert any((limited.root / "uploads").iterdir())
        r = client.request("PATCH", location, data=os.urandom(LIMIT // 2 + 1),
                           headers={"Content-Range": f"{LIMIT // 2}-{LIMIT}"})
        assert_too_large(r)
        # The partial data is gone, and so is the session.
        status = client.request("GET", location)
        assert status.status_code == 404 and error_codes(status) == ["BLOB_UPLOAD_UNKNOWN"]
        assert_nothing_stored(limited, digest_of(first))

    def test_streamed_patch_over_the_limit_is_cut_off_while_streaming(self, limited):
        client = Client(limited, APP)
        location = client.start_upload()
        data = os.urandom(3 * LIMIT)
        r = client.request("PATCH", location, data=chunks(data))  # chunked: no length known
        assert_too_large(r)
        status = client.request("GET", location)
        assert status.status_code == 404 and error_codes(status) == ["BLOB_UPLOAD_UNKNOWN"]
        assert_nothing_stored(limited, digest_of(data))

    def test_chunks_adding_up_past_the_limit(self, limited):
        client = Client(limited, APP)
        location = client.start_upload()
        piece = os.urandom(LIMIT // 3)
        for _ in range(3):
            assert client.request("PATCH", location, data=chunks(piece)).status_code == 202
        r = client.request("PATCH", location, data=chunks(piece))
        assert_too_large(r)
        assert_nothing_stored(limited)

    def test_final_put_with_body_over_the_limit(self, limited):
        client = Client(limited, APP)
        location = client.start_upload()
        data = os.urandom(LIMIT + 10)
        assert client.request("PATCH", location, data=data[:100]).status_code == 202
        r = client.request("PUT", location, params={"digest": digest_of(data)}, data=data[100:])
        assert_too_large(r)
        assert client.request("GET", location).status_code == 404
        assert_nothing_stored(limited, digest_of(data))

    def test_docker_push_of_a_too_big_layer_fails_at_once_stating_the_limit(
            self, limited, docker_config, image_factory, docker_refs):
        local = image_factory(layers=[3 * LIMIT])
        docker_login(limited, "pipelines")
        r = docker_push(local, f"{limited.host}/{APP}:big", docker_refs, timeout=120)
        assert r.returncode != 0
        output = r.stdout + r.stderr
        assert str(LIMIT) in output, output
        assert "Retrying" not in output  # refused as final: docker does not retry it
        assert_nothing_stored(limited)
        assert limited.api("GET", "/workspaces/acme/packages/my-container-app").json()["tags"] == []


class TestUploadSessions:
    def test_a_session_older_than_the_timeout_is_unknown(self, registry_factory):
        config = default_config()
        config["limits"]["upload_timeout_seconds"] = 1
        registry = registry_factory(config)
        client = Client(registry, APP)
        location = client.start_upload()
        assert client.request("PATCH", location, data=b"early").status_code == 202
        time.sleep(1.5)
        r = client.request("PATCH", location, data=b"late")
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        assert "expired" in error_message(r)
        for method in ("GET", "PUT"):
            r = client.request(method, location, params={"digest": digest_of(b"earlylate")})
            assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"]
        assert list((registry.root / "uploads").iterdir()) == []
        assert client.head_blob(digest_of(b"early")).status_code == 404

    def test_a_session_belongs_to_its_member_and_package(self, registry):
        owner = Client(registry, APP)
        location = owner.start_upload()
        upload_path = location.split("/blobs/uploads/")[1]
        assert owner.request("PATCH", location, data=b"part one ").status_code == 202
        intruders = [
            Client(registry, APP, user="boss"),  # another member, even an admin
            Client(registry, "acme/other-app", user="pipelines"),  # the same member, another package
            Client(registry, "acme/tool-image", user="pipelines"),  # another repository
        ]
        for intruder in intruders:
            url = f"{intruder.base}/blobs/uploads/{upload_path}"
            for method in ("GET", "PATCH", "PUT", "DELETE"):
                r = intruder.request(method, url, data=b"evil", params={"digest": digest_of(b"evil")})
                assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"], (intruder, method)
        # The owner's upload is untouched and completes.
        r = owner.request("PATCH", location, data=b"part two")
        assert r.status_code == 202 and r.headers["Range"] == f"0-{len(b'part one part two') - 1}"
        r = owner.request("PUT", location, params={"digest": digest_of(b"part one part two")})
        assert r.status_code == 201
        assert owner.get_blob(digest_of(b"part one part two")).content == b"part one part two"
        assert Client(registry, "acme/other-app").head_blob(digest_of(b"part one part two")).status_code == 404
