"""distribution 2.8 (Debian docker-registry) as a fixture: no auth and htpasswd, with real clients."""
from __future__ import annotations

import json
import subprocess

import requests

from test.fixtures.registries import REFERENCE_PASSWORD, REFERENCE_USER
from test.helpers.oci_client import docker


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def test_skopeo_copy_to_the_registry_with_no_auth(reference_registry, local_image):
    copied = skopeo("copy", "--dest-tls-verify=false", f"docker-daemon:{local_image}",
                    f"docker://{reference_registry.host}/acme/plain:1")
    assert copied.returncode == 0, copied.stderr
    tags = requests.get(f"{reference_registry.url}/v2/acme/plain/tags/list", timeout=10).json()
    assert tags == {"name": "acme/plain", "tags": ["1"]}
    assert "PUT /v2/acme/plain/manifests/1" in reference_registry.log(100_000)  # the access log is kept


def test_docker_login_push_pull_with_htpasswd(reference_registry_auth, local_image, docker_config):
    reg = reference_registry_auth
    remote = f"{reg.host}/acme/private:1"
    assert requests.get(f"{reg.url}/v2/", timeout=10).status_code == 401
    assert requests.get(f"{reg.url}/v2/", auth=(REFERENCE_USER, "wrong"), timeout=10).status_code == 401
    denied = docker("login", reg.host, "-u", REFERENCE_USER, "--password-stdin", input="wrong", timeout=60)
    assert denied.returncode != 0
    login = docker("login", reg.host, "-u", REFERENCE_USER, "--password-stdin", input=REFERENCE_PASSWORD, timeout=60)
    assert login.returncode == 0, login.stderr
    try:
        assert docker("tag", local_image, remote).returncode == 0
        pushed = docker("push", remote)
        assert pushed.returncode == 0, pushed.stderr
        image_id = docker("image", "inspect", "--format", "{{.Id}}", local_image).stdout.strip()
        assert docker("rmi", remote).returncode == 0
        docker("rmi", local_image)
        pulled = docker("pull", remote)
        assert pulled.returncode == 0, pulled.stderr
        assert docker("image", "inspect", "--format", "{{.Id}}", remote).stdout.strip() == image_id
    finally:
        docker("rmi", "-f", remote)
    anonymous = skopeo("inspect", "--tls-verify=false", "--no-creds", f"docker://{remote}")
    assert anonymous.returncode != 0
    inspected = skopeo("inspect", "--tls-verify=false", "--creds", f"{REFERENCE_USER}:{REFERENCE_PASSWORD}",
                       f"docker://{remote}")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Name"] == f"{reg.host}/acme/private"
