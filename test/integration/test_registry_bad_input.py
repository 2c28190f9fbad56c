"""Bad input, each answered with the right OCI error, and the store unchanged.

Only what test_registry_distribution.py and test_registry_limits.py do not already try (see
RELIABILITY.md for the whole list). "Unchanged" is checked the same way for every case: the
list of files under the registry's root (with the size of every blob and upload file), the
storage figures of the management API, and the packages with their tags and manifests, taken
before and after. Nothing outside the root is touched, and a file beside the root never shows
up in an answer.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass

import pytest
import requests

from harness.accounts import TOKENS, default_config
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import (
    OCI_INDEX,
    OCI_MANIFEST,
    Client,
    digest_of,
    error_codes,
    image_manifest,
    index_manifest,
)

APP = "acme/my-container-app"
OTHER = "acme/other-app"
MARKER = "outside-the-root-" + uuid.uuid4().hex
TIMEOUT = 30


@dataclass
class Setup:
    registry: RegistryProcess
    base: dict           # the manifest of APP:base (config and one layer)
    base_body: bytes     # ... as stored
    foreign_layer: dict  # a layer descriptor that only OTHER has
    foreign_child: tuple[str, int]  # a manifest (digest, size) that only OTHER has


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    base_dir = tmp_path_factory.mktemp("bad-input")
    (base_dir / "outside.txt").write_text(MARKER)
    registry = RegistryProcess(base_dir / "root", default_config()).start()
    try:
        client = Client(registry, APP, user="boss")
        body = image_manifest(client, [os.urandom(5000)], OCI_MANIFEST)
        assert client.put_manifest("base", body, OCI_MANIFEST).status_code == 201
        other = Client(registry, OTHER, user="boss")
        other_body = image_manifest(other, [os.urandom(4000)], OCI_MANIFEST)
        assert other.put_manifest("other", other_body, OCI_MANIFEST).status_code == 201
        yield Setup(registry, json.loads(body), body, json.loads(other_body)["layers"][0],
                    (digest_of(other_body), len(other_body)))
    finally:
        registry.stop()


def state(registry: RegistryProcess) -> dict:
    """What the store holds: files under the root (sizes of blob and upload files), figures, packages."""
    files = []
    for path in sorted(registry.root.rglob("*")):
        rel = str(path.relative_to(registry.root))
        size = path.stat().st_size if path.is_file() and rel.split("/")[0] in ("blobs", "uploads") else None
        files.append((rel, size))
    figures = registry.api("GET", "/workspaces/acme/storage").json()
    packages = {}
    for p in registry.api("GET", "/workspaces/acme/packages").json()["packages"]:
        details = registry.api("GET", f"/workspaces/acme/packages/{p['name']}").json()
        packages[p["name"]] = ([(t["name"], t["digest"]) for t in details["tags"]],
                               [m["digest"] for m in details["manifests"]])
    beside = sorted(p.name for p in registry.root.parent.iterdir() if p.suffix != ".log")
    return {"files": files, "beside_root": beside, "packages": packages,
            **{k: figures[k] for k in ("stored_bytes", "blob_bytes", "blobs", "manifests", "reclaimable_bytes")}}


@pytest.fixture
def unchanged(setup):
    """Assert, after the test, that the store is as it was before it."""
    before = state(setup.registry)
    yield
    assert state(setup.registry) == before


def cleanup(client: Client, location: str | None) -> None:
    """End a session a case left open (an interrupted client would be expired the same way)."""
    if location:
        client.request("DELETE", location)


# -- blob uploads -------------------------------------------------------------------------
HEX = hashlib.sha256(b"x").hexdigest()
BAD_DIGESTS = {
    "not hex": "sha256:" + "z" * 64,
    "too short": "sha256:abc",
    "uppercase hex": "sha256:" + HEX.upper(),
    "no algorithm": HEX,
    "empty": "sha256:",
    "trailing NUL": "sha256:" + HEX[:63] + "\x00",
    "trailing newline": "sha256:" + HEX + "\n",
    "path in it": "sha256:../../outside.txt",
}
UNSUPPORTED = {
    "sha512": "sha512:" + hashlib.sha512(b"x").hexdigest(),
    "sha384": "sha384:" + hashlib.sha384(b"x").hexdigest(),
    "md5": "md5:" + hashlib.md5(b"x").hexdigest(),
}


@pytest.mark.parametrize("where", ["chunked then PUT", "monolithic POST"])
@pytest.mark.parametrize("digest", [*BAD_DIGESTS.values(), *UNSUPPORTED.values()],
                         ids=[*BAD_DIGESTS, *UNSUPPORTED])
def test_malformed_or_unsupported_digest_on_upload(setup, unchanged, where, digest):
    client = Client(setup.registry, APP)
    location = None
    if where == "monolithic POST":
        r = client.request("POST", "blobs/uploads/", params={"digest": digest}, data=b"x")
    else:
        location = client.start_upload()
        assert client.request("PATCH", location, data=b"x").status_code == 202
        r = client.request("PUT", location, params={"digest": digest})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"], r.text
    if digest in UNSUPPORTED.values():
        assert "unsupported digest algorithm" in r.text and "use sha256" in r.text
    cleanup(client, location)


@pytest.mark.parametrize("digest", [*BAD_DIGESTS.values(), *UNSUPPORTED.values()],
                         ids=[*BAD_DIGESTS, *UNSUPPORTED])
def test_malformed_or_unsupported_digest_in_a_mount(setup, unchanged, digest):
    client = Client(setup.registry, APP)
    r = client.request("POST", "blobs/uploads/", params={"mount": digest, "from": OTHER})
    assert r.status_code == 400 and error_codes(r) == ["DIGEST_INVALID"], r.text


def patch(client: Client, location: str, data, content_range: str | None) -> requests.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if content_range is not None:
        headers["Content-Range"] = content_range
    return client.request("PATCH", location, data=data, headers=headers)


def chunked(data: bytes):
    """A generator body: sent with Transfer-Encoding chunked, so no Content-Length."""
    yield data


# (first chunk or None, bad chunk body, its Content-Range, status, code, bytes of the refused chunk the upload keeps)
RANGE_CASES = {
    "declared span longer than Content-Length": (None, b"a" * 50, "0-99", 416, "BLOB_UPLOAD_INVALID", 0),
    "Content-Range beyond the data (no length)": (None, chunked(b"a" * 100), "0-999", 400, "BLOB_UPLOAD_INVALID", 100),
    "end before start": (None, b"a" * 10, "20-10", 416, "BLOB_UPLOAD_INVALID", 0),
    "not a range": (None, b"a" * 10, "bytes=lots", 416, "BLOB_UPLOAD_INVALID", 0),
    "negative start": (None, b"a" * 10, "-5-4", 416, "BLOB_UPLOAD_INVALID", 0),
    "first chunk not at 0": (None, b"a" * 100, "100-199", 416, "BLOB_UPLOAD_INVALID", 0),
    "gap after the first chunk": (b"f" * 100, b"a" * 100, "200-299", 416, "BLOB_UPLOAD_INVALID", 0),
    "the same chunk twice": (b"f" * 100, b"f" * 100, "0-99", 416, "BLOB_UPLOAD_INVALID", 0),
    "overlapping the end": (b"f" * 100, b"a" * 100, "99-198", 416, "BLOB_UPLOAD_INVALID", 0),
}


@pytest.mark.parametrize("case", list(RANGE_CASES))
def test_bad_chunk_ranges(setup, unchanged, case):
    first, body, content_range, status, code, kept = RANGE_CASES[case]
    client = Client(setup.registry, APP)
    location = client.start_upload()
    offset = 0
    if first is not None:
        assert patch(client, location, first, f"0-{len(first) - 1}").status_code == 202
        offset = len(first)
    r = patch(client, location, body, content_range)
    assert r.status_code == status and error_codes(r) == [code], r.text
    after = client.request("GET", location)
    # A refused chunk is not mixed in; a chunk shorter than it said keeps, whole, what arrived (so a client
    # resumes, not restarts), and both the answer and the status say where to go on.
    held = offset + kept
    assert after.status_code == 204 and after.headers["Range"] == f"0-{max(held - 1, 0)}"
    if kept:
        assert r.headers["Range"] == after.headers["Range"] and f"continue from byte {held}" in r.text
    cleanup(client, location)


# -- manifests ----------------------------------------------------------------------------
def manifest_case(setup: Setup, case: str) -> tuple[str, bytes, str | None, bool, int, str]:
    """(reference, body, Content-Type, streamed without a length?, status, code) for each bad manifest."""
    base = setup.base
    doc = json.loads(json.dumps(base))
    ref, ctype, status, code = "bad", OCI_MANIFEST, 400, "MANIFEST_INVALID"
    if case == "unsupported media type":
        doc["mediaType"] = ctype = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    elif case == "no media type, Content-Type not a manifest type":
        del doc["mediaType"]
        ctype = "application/json"
    elif case == "schemaVersion 1":
        doc["schemaVersion"] = 1
    elif case == "image body declared as an index":
        doc["mediaType"] = ctype = OCI_INDEX
    elif case == "index body declared as an image":
        doc = json.loads(index_manifest(OCI_MANIFEST, [(digest_of(b"c"), 1, OCI_MANIFEST, ("linux", "amd64"))]))
    elif case == "not an object":
        return ref, b"[1, 2, 3]", ctype, False, status, code
    elif case == "empty body":
        return ref, b"", ctype, False, status, code
    elif case == "malformed layer digest":
        doc["layers"][0]["digest"] = "sha256:../../outside.txt"
    elif case == "negative layer size":
        doc["layers"][0]["size"] = -1
    elif case == "wrong layer size":
        doc["layers"][0]["size"] += 1
    elif case == "wrong config size":
        doc["config"]["size"] -= 1
    elif case == "unknown config blob":
        doc["config"]["digest"] = digest_of(b"never uploaded config")
        code = "MANIFEST_BLOB_UNKNOWN"
    elif case == "layer of another package, not mounted":
        doc["layers"].append(setup.foreign_layer)
        code = "MANIFEST_BLOB_UNKNOWN"
    elif case == "index child of another package":
        digest, size = setup.foreign_child
        doc, ctype, code = json.loads(index_manifest(OCI_INDEX, [(digest, size, OCI_MANIFEST, ("linux", "amd64"))])), \
            OCI_INDEX, "MANIFEST_BLOB_UNKNOWN"
    elif case == "index child with the wrong size":
        child = setup.base_body
        doc, ctype = json.loads(index_manifest(OCI_INDEX, [(digest_of(child), len(child) + 7, OCI_MANIFEST,
                                                            ("linux", "amd64"))])), OCI_INDEX
    elif case == "larger than 4 MiB, streamed without a length":
        doc["annotations"] = {"pad": "x" * (4 * 1024 * 1024)}
        return ref, json.dumps(doc).encode(), ctype, True, 413, code
    elif case == "tag longer than 128":
        ref, code = "t" * 129, "TAG_INVALID"
    elif case == "tag starting with a dash":
        ref, code = "-v1", "TAG_INVALID"
    elif case == "tag with an encoded slash":
        ref, code = "v1%2Fx", "TAG_INVALID"
    elif case == "tag with an encoded NUL":
        ref, code = "v1%00", "TAG_INVALID"
    elif case == "digest reference with another algorithm":
        ref, code = "sha512:" + "a" * 128, "DIGEST_INVALID"
    elif case == "malformed digest reference":
        ref, code = "sha256:" + "z" * 64, "DIGEST_INVALID"
    else:
        raise AssertionError(case)
    return ref, json.dumps(doc, indent=1).encode(), ctype, False, status, code


MANIFEST_CASES = [
    "unsupported media type", "no media type, Content-Type not a manifest type", "schemaVersion 1",
    "image body declared as an index", "index body declared as an image", "not an object", "empty body",
    "malformed layer digest", "negative layer size", "wrong layer size", "wrong config size", "unknown config blob",
    "layer of another package, not mounted", "index child of another package", "index child with the wrong size",
    "larger than 4 MiB, streamed without a length", "tag longer than 128", "tag starting with a dash",
    "tag with an encoded slash", "tag with an encoded NUL", "digest reference with another algorithm",
    "malformed digest reference",
]


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_bad_manifests(setup, unchanged, case):
    reference, body, content_type, streamed, status, code = manifest_case(setup, case)
    client = Client(setup.registry, APP)
    headers = {"Content-Type": content_type} if content_type else {}
    data = (body[i:i + 65536] for i in range(0, len(body), 65536)) if streamed else body  # chunked: no length
    r = client.request("PUT", f"manifests/{reference}", data=data, headers=headers)
    assert r.status_code == status and error_codes(r) == [code], (r.status_code, r.text[:300])
    if case.startswith("wrong") or "wrong size" in case:
        assert "not the content's" in r.text and r.json()["errors"][0]["detail"]["wrong_sizes"]
    assert client.get_manifest(digest_of(body)).status_code == 404


def test_a_manifest_with_the_right_sizes_is_accepted_after_the_wrong_ones(setup):
    """The control for the size cases above: the same references with their true sizes are stored."""
    client = Client(setup.registry, APP)
    body = json.dumps({**setup.base, "annotations": {"n": uuid.uuid4().hex}}).encode()
    r = client.put_manifest("sizes-ok", body, OCI_MANIFEST)
    assert r.status_code == 201, r.text
    assert client.get_manifest("sizes-ok").content == body


# -- names and traversal ------------------------------------------------------------------
UPLOAD = "blobs/uploads/"
# path -> OCI codes it may answer with: the part that is invalid; a path no route takes is NAME_INVALID when its
# name breaks the grammar, else a 404 UNSUPPORTED (never NAME_UNKNOWN: the package exists).
V2_PATHS = {
    "/v2/acme/app-/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/manifests/v1": {"NAME_INVALID"},
    "/v2/acme//app/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/a..b/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/" + "a" * 251 + "/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/My-App/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/%2e%2e/%2e%2e/outside.txt/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/my-container-app%2f..%2f..%2f..%2foutside.txt/blobs/uploads/": {"NAME_INVALID"},
    "/v2/acme/app%00/manifests/v1": {"NAME_INVALID"},
    "/v2/acme%00/app/blobs/uploads/": {"NAME_INVALID"},
    "/v2/%2Fetc%2Fpasswd/manifests/v1": {"NAME_INVALID"},
    "/v2/%2F/acme/my-container-app/manifests/v1": {"NAME_INVALID"},
    "/v2/acme/my-container-app/blobs/sha256:%00": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/blobs/sha256:" + HEX[:63] + "%00": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/blobs/..%5C..%5Coutside.txt": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/blobs/sha256:%2e%2e%2f%2e%2e%2foutside.txt": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/blobs/%2Fetc%2Fpasswd": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/manifests/sha256:%2e%2e%2foutside.txt": {"DIGEST_INVALID"},
    "/v2/acme/my-container-app/manifests/%2e%2e": {"TAG_INVALID"},
    "/v2/acme/my-container-app/blobs/uploads/%00": {"BLOB_UPLOAD_UNKNOWN"},
    "/v2/acme/my-container-app/blobs/uploads/" + "a" * 31 + "%00": {"BLOB_UPLOAD_UNKNOWN"},
    "/v2/acme/my-container-app/blobs/uploads/%2e%2e%2f%2e%2e%2fmetadata.db": {"BLOB_UPLOAD_UNKNOWN"},
    "/v2/acme/my-container-app/blobs/uploads/..%5C..%5Cmetadata.db": {"BLOB_UPLOAD_UNKNOWN"},
    "/v2/acme/my-container-app/blobs/uploads/%2Fetc%2Fpasswd": {"BLOB_UPLOAD_UNKNOWN"},
}


@pytest.mark.parametrize("path", list(V2_PATHS))
def test_invalid_names_and_traversal_in_v2_paths(setup, unchanged, path):
    client = Client(setup.registry, APP)
    for method in ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"):
        r = client.request(method, setup.registry.url + path, params={"digest": digest_of(b"{}")}, data=b"{}")
        assert 400 <= r.status_code < 500 and r.status_code != 401, (method, path, r.status_code, r.text)
        assert MARKER not in r.text
        if method == "HEAD":
            continue
        codes = set(error_codes(r))
        assert codes and codes <= V2_PATHS[path] | {"UNSUPPORTED"}, (method, path, r.status_code, r.text)


API = "/api/workspaces"
API_PATHS = {
    f"{API}/%2e%2e/packages": {"UNAUTHORIZED"},
    f"{API}/acme%00/packages": {"UNAUTHORIZED"},
    f"{API}/%2Fetc/packages": {"UNAUTHORIZED", "NOT_FOUND"},
    f"{API}/..%2F..%2Foutside.txt/storage": {"UNAUTHORIZED", "NOT_FOUND"},
    f"{API}/acme/packages/..%2F..%2Foutside.txt": {"NOT_FOUND", "NAME_UNKNOWN"},
    f"{API}/acme/packages/%2e%2e": {"NOT_FOUND", "NAME_UNKNOWN"},
    f"{API}/acme/packages/a%00b": {"NOT_FOUND", "NAME_UNKNOWN"},
    f"{API}/acme/packages/%2Fetc%2Fpasswd": {"NOT_FOUND", "NAME_UNKNOWN"},
    f"{API}/acme/packages/..%2Fmy-container-app": {"NOT_FOUND", "NAME_UNKNOWN"},
    f"{API}/acme/packages/my-container-app/tags/..%2F..%2Foutside.txt": {"MANIFEST_UNKNOWN"},
    f"{API}/acme/packages/my-container-app/tags/%00": {"MANIFEST_UNKNOWN"},
    f"{API}/acme/packages/my-container-app/tags/%2e%2e": {"MANIFEST_UNKNOWN"},
    f"{API}/acme/packages/my-container-app/tags/base%00": {"MANIFEST_UNKNOWN"},
}


@pytest.mark.parametrize("path", list(API_PATHS))
def test_traversal_in_management_api_parameters(setup, unchanged, path):
    for method in ("GET", "DELETE", "POST"):
        r = requests.request(method, setup.registry.url + path, auth=("boss", TOKENS["boss"]), timeout=TIMEOUT)
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert MARKER not in r.text
        codes = set(error_codes(r))
        assert codes and codes <= API_PATHS[path] | {"UNSUPPORTED"}, (method, path, r.status_code, r.text)


@pytest.mark.parametrize("query", [
    {"project": "../../outside.txt"}, {"repository": "..%2F..%2Foutside.txt"}, {"repository": "\x00"},
    {"project": "/etc/passwd", "repository": "/"},
])
def test_traversal_in_management_api_queries_lists_nothing(setup, unchanged, query):
    r = requests.get(f"{setup.registry.url}{API}/acme/packages", params=query, auth=("boss", TOKENS["boss"]),
                     timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["packages"] == []


@pytest.mark.parametrize("body, code", [
    ({"name": "../evil", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "/abs/olute", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "a\x00b", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "acme/../../x", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "ok-name\n", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "Upper", "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "a" * 251, "repository": "web-app"}, "NAME_INVALID"),  # acme/ + 251 > 255: no /v2/ name
    ({"name": ["a"], "repository": "web-app"}, "NAME_INVALID"),
    ({"name": "ok-name", "repository": "../../outside.txt"}, "INVALID_REQUEST"),
    ({"name": "ok-name", "repository": None}, "INVALID_REQUEST"),
    ("not an object", "NAME_INVALID"),
])
def test_create_package_with_bad_names(setup, unchanged, body, code):
    r = requests.post(f"{setup.registry.url}{API}/acme/packages", json=body, auth=("boss", TOKENS["boss"]),
                      timeout=TIMEOUT)
    assert r.status_code == 400 and error_codes(r) == [code], r.text


def test_create_package_with_a_body_that_is_not_json(setup, unchanged):
    r = requests.post(f"{setup.registry.url}{API}/acme/packages", data=b"\xff\xfe{", auth=("boss", TOKENS["boss"]),
                      headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
    assert r.status_code == 400 and error_codes(r) == ["INVALID_REQUEST"], r.text


def test_names_that_are_valid_still_work_after_all_this(setup):
    """The control: the store is usable, and the baseline image pulls intact."""
    client = Client(setup.registry, APP, user="reader", actions="pull")
    r = client.get_manifest("base")
    assert r.status_code == 200 and json.loads(r.content) == setup.base
    for d in [setup.base["config"], *setup.base["layers"]]:
        blob = client.get_blob(d["digest"])
        assert blob.status_code == 200 and digest_of(blob.content) == d["digest"]


def test_the_longest_package_name_is_created_and_pushed(setup):
    """The control for the length limit above: `acme/` + 250 characters is exactly the longest /v2/ name."""
    name = "n" * 250
    r = requests.post(f"{setup.registry.url}{API}/acme/packages", json={"name": name, "repository": "web-app"},
                      auth=("boss", TOKENS["boss"]), timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    client = Client(setup.registry, f"acme/{name}")
    digest, _ = client.push_image("v1", [b"longest"])
    assert client.get_manifest("v1").headers["Docker-Content-Digest"] == digest
