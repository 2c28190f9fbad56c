"""The HTTP fault proxy in front of real registries: transparent for real clients, counted, faults on demand."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest
import requests

from harness.accounts import TOKENS
from harness.layered_images import RandomLayer
from test.helpers.oci_client import docker

APP = "acme/my-container-app"
OCTETS = {"Content-Type": "application/octet-stream"}


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def test_docker_push_through_the_proxy_reaches_the_registry_and_is_counted(
        registry, http_proxy_factory, docker_config, layered_image_factory, docker_refs, tmp_path):
    proxy = http_proxy_factory(registry.url)
    image = layered_image_factory([RandomLayer(3 << 20), RandomLayer(100_000)])
    login = docker("login", proxy.host, "-u", "pipelines", "--password-stdin", input=TOKENS["pipelines"], timeout=60)
    assert login.returncode == 0, login.stderr
    remote = f"{proxy.host}/{APP}:v1"
    assert docker("tag", image.ref, remote).returncode == 0
    docker_refs.append(remote)
    pushed = docker("push", remote)
    assert pushed.returncode == 0, pushed.stderr

    # The challenge's realm was rewritten: tokens were fetched through the proxy, never straight.
    assert proxy.count("GET", r"^/token$", status=200) >= 1
    assert proxy.count("PUT", r"/manifests/v1$", status=201) == 1
    assert proxy.count("POST", r"/blobs/uploads/$", status=202) == 3  # two layers and the config
    assert proxy.bytes_in(None, r"/blobs/uploads/.") >= (3 << 20) + 100_000  # random data: gzip adds a little
    assert all(r.status is not None and r.fault is None for r in proxy.requests())

    # The registry holds what the daemon sent: read it back straight from the upstream ...
    creds = f"pipelines:{TOKENS['pipelines']}"
    config = skopeo("inspect", "--tls-verify=false", "--config", "--creds", creds, f"docker://{registry.host}/{APP}:v1")
    assert config.returncode == 0, config.stderr
    assert json.loads(config.stdout)["rootfs"]["diff_ids"] == list(image.diff_ids)
    # ... and through the proxy (skopeo checks every blob's digest), HEAD keeping the blob's Content-Length.
    copied = skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, f"docker://{proxy.host}/{APP}:v1",
                    f"dir:{tmp_path / 'copy'}")
    assert copied.returncode == 0, copied.stderr
    layer = json.loads((tmp_path / "copy" / "manifest.json").read_text())["layers"][0]
    token = registry.token("pipelines", f"repository:{APP}:pull")
    head = requests.head(f"{proxy.url}/v2/{APP}/blobs/{layer['digest']}", timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == layer["size"]


def test_status_rules_answer_without_forwarding_a_bounded_number_of_times(registry, http_proxy_factory):
    proxy = http_proxy_factory(registry.url)
    proxy.fail("GET", r"/manifests/", 503, times=5, body=b"injected")
    seen = skopeo("inspect", "--tls-verify=false", "--creds", f"pipelines:{TOKENS['pipelines']}",
                  f"docker://{proxy.host}/{APP}:latest")
    assert seen.returncode != 0 and "503" in seen.stderr, seen.stderr
    assert proxy.count("GET", r"/manifests/", status=503) >= 1
    assert all(r.fault == "status" for r in proxy.requests("GET", r"/manifests/"))

    # The second matching POST gets 429 + Retry-After; the first and third reach the registry (401: no token).
    proxy.fail("POST", r"/blobs/uploads/$", 429, skip=1, headers={"Retry-After": "1"})
    answers = [requests.post(f"{proxy.url}/v2/{APP}/blobs/uploads/", timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 429, 401]
    assert answers[1].headers["Retry-After"] == "1"
    assert f'realm="{proxy.url}/token"' in answers[0].headers["WWW-Authenticate"]


def test_drop_cuts_a_patch_mid_body_after_the_upstream_got_part_of_it(reference_registry, http_proxy_factory):
    """Also pins what distribution 2.8 does after a dropped PATCH (the native engine must start the blob again)."""
    proxy = http_proxy_factory(reference_registry.url)
    repo = "acme/dropped"
    data = os.urandom(4 << 20)
    first = requests.post(f"{proxy.url}/v2/{repo}/blobs/uploads/", timeout=10)
    assert first.status_code == 202
    location = first.headers["Location"]
    assert location.startswith(proxy.url)  # absolute Location rewritten to the proxy
    proxy.drop("PATCH", r"/blobs/uploads/", after_bytes=1 << 20)
    with pytest.raises(requests.ConnectionError):
        requests.patch(location, data=data, headers={**OCTETS, "Content-Range": f"0-{len(data) - 1}"}, timeout=30)
    [cut] = proxy.requests("PATCH")
    assert cut.fault == "drop" and cut.status is None and cut.bytes_in == 1 << 20

    # The upstream wrote exactly the forwarded part to its upload file (once its handler has seen the cut) ...
    [upload] = reference_registry.upload_dirs(repo)
    deadline = time.monotonic() + 10
    while (upload / "data").stat().st_size < 1 << 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (upload / "data").stat().st_size == 1 << 20
    # ... but the session is dead for the client: its signed _state still says offset 0.
    status = requests.get(location, timeout=10)
    assert status.status_code == 404 and "BLOB_UPLOAD_INVALID" in status.text
    resumed = requests.patch(location, data=data[1 << 20:],
                             headers={**OCTETS, "Content-Range": f"{1 << 20}-{len(data) - 1}"}, timeout=30)
    assert resumed.status_code == 404 and "BLOB_UPLOAD_INVALID" in resumed.text

    # Starting the blob again works, and the drop rule (times=1) no longer acts.
    again = requests.post(f"{proxy.url}/v2/{repo}/blobs/uploads/", timeout=10).headers["Location"]
    patched = requests.patch(again, data=data, headers={**OCTETS, "Content-Range": f"0-{len(data) - 1}"}, timeout=30)
    assert patched.status_code == 202, patched.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    closed = requests.put(patched.headers["Location"], params={"digest": digest}, timeout=30)
    assert closed.status_code == 201, closed.text
    assert requests.get(f"{proxy.url}/v2/{repo}/blobs/{digest}", timeout=30).content == data
    assert proxy.count("PATCH", status=202) == 1
