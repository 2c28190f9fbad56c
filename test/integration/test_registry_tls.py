"""The registry over TLS (`serve --tls-cert --tls-key`) with a throwaway CA made by the openssl CLI.

docker trusts it through /etc/docker/certs.d/127.0.0.1:PORT/ca.crt (removed afterwards), skopeo through
--cert-dir, the pipe through the daemon (and REGISTRY_CA_FILE for its native engine), and python-dxf,
an OCI client library that refuses to send credentials over plain HTTP, through its CA bundle.
Whoever does not trust the CA is refused by the TLS handshake, so every success here went over
verified TLS (docker excepted: it skips verification for loopback registries, see the test).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dxf
import dxf.exceptions
import pytest
import requests

from harness.accounts import EMAIL, TOKENS, default_config
from harness.registry_process import RegistryProcess
from pipe.client.api import RegistryClient
from pipe.client.transport import speaks_tls
from pipe.scrubbing import Secret
from test.helpers.certificates import make_ca_and_server_cert
from test.helpers.oci_client import Client, digest_of, docker, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, pipe_variables, run_pipe

APP = "acme/my-container-app"
CERTS_D = Path("/etc/docker/certs.d")


@dataclass
class Tls:
    registry: RegistryProcess
    plain: RegistryProcess  # the same config over plain HTTP
    ca: Path
    cert_dir: Path  # ca.crt only, for skopeo --cert-dir


@pytest.fixture(scope="module")
def tls(tmp_path_factory, docker_daemon) -> Tls:
    base = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_ca_and_server_cert(base)
    cert_dir = base / "skopeo-certs"
    cert_dir.mkdir()
    shutil.copy(ca, cert_dir / "ca.crt")
    registry = RegistryProcess(base / "registry", default_config(),
                               extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]).start()
    plain = RegistryProcess(base / "plain", default_config()).start()
    daemon_dir = CERTS_D / registry.host
    created = [p for p in (CERTS_D.parent, CERTS_D) if not p.exists()]
    try:
        daemon_dir.mkdir(parents=True)
        shutil.copy(ca, daemon_dir / "ca.crt")
        yield Tls(registry, plain, ca, cert_dir)
    finally:
        # Only what this module added: the registry's directory, and its parents if it made them.
        shutil.rmtree(daemon_dir, ignore_errors=True)
        for directory in reversed(created):
            if directory.exists() and not any(directory.iterdir()):
                directory.rmdir()
        registry.stop()
        plain.stop()


def test_serves_https_only_and_the_challenge_says_https(tls):
    r = requests.get(f"{tls.registry.url}/v2/", verify=str(tls.ca), timeout=30)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith(f'Bearer realm="https://{tls.registry.host}/token"')
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls.registry.url}/v2/", timeout=30)  # the CA is not in the system's trust store
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://{tls.registry.host}/v2/", timeout=30)


def test_half_a_tls_configuration_is_refused(tmp_path):
    config = tmp_path / "c.yml"
    config.write_text("workspaces: {}\n")
    r = subprocess.run([sys.executable, "-m", "registry", "serve", "--root", str(tmp_path / "r"),
                        "--config", str(config), "--listen", "127.0.0.1:0",
                        "--tls-cert", str(tmp_path / "missing.crt")],
                       cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "give both --tls-cert and --tls-key" in r.stderr


def test_docker_login_push_pull_with_an_email_username_over_tls(tls, docker_config, image_factory, docker_refs):
    # The daemon reads certs.d/127.0.0.1:PORT/ca.crt; for loopback it would also accept an unverified
    # certificate, so this proves docker works against the TLS registry, skopeo and dxf prove the trust.
    registry = tls.registry
    r = docker("login", registry.host, "-u", EMAIL, "--password-stdin", input=TOKENS[EMAIL], timeout=60)
    assert r.returncode == 0, r.stderr
    remote = f"{registry.host}/{APP}:tls"
    assert docker("tag", image_factory(layers=[30_000]), remote, timeout=60).returncode == 0
    docker_refs.append(remote)
    pushed = docker("push", remote, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    assert docker("rmi", remote, timeout=60).returncode == 0
    pulled = docker("pull", remote, timeout=300)
    assert pulled.returncode == 0, pulled.stderr


def trusting(tls: Tls, monkeypatch) -> None:
    """Let this test's raw HTTP client (requests) trust the throwaway CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca))


def test_skopeo_trusts_the_ca_with_cert_dir_and_refuses_without(tls, monkeypatch, tmp_path):
    registry = tls.registry
    user, secret = registry.pipeline_credentials("web-app")
    trusting(tls, monkeypatch)
    Client(registry, APP, user="boss").push_image("for-skopeo", [b"layer"])
    source = f"docker://{registry.host}/{APP}:for-skopeo"
    # --cert-dir replaces the default places (which include the daemon's certs.d this module fills).
    empty = tmp_path / "no-certs"
    empty.mkdir()
    untrusted = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(empty), "--creds", f"{user}:{secret}",
                                source], capture_output=True, text=True, timeout=120)
    assert untrusted.returncode != 0 and "certificate" in untrusted.stderr, untrusted.stderr
    trusted = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", str(tls.cert_dir), "--creds",
                              f"{user}:{secret}", source], capture_output=True, text=True, timeout=120)
    assert trusted.returncode == 0, trusted.stderr


def test_the_pipe_pushes_over_tls_with_pipeline_credentials(tls, image_factory, tmp_path, monkeypatch):
    registry = tls.registry
    user, secret = registry.pipeline_credentials("web-app")
    run = run_pipe(pipe_variables(registry.host, image_factory(layers=[20_000]), TAGS="pipe-tls",
                                  BITBUCKET_PACKAGES_USERNAME=user, BITBUCKET_PACKAGES_TOKEN=secret,
                                  REGISTRY_CA_FILE=str(tls.ca), BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(tmp_path)))
    assert run.returncode == 0, str(run)
    assert_no_secret(run, user, secret)
    trusting(tls, monkeypatch)
    assert verify_tagged_image(Client(registry, APP, user="boss"), "pipe-tls") >= 2


def test_an_oci_library_that_insists_on_https_works_over_tls_and_refuses_plain_http(tls):
    def basic(user: str, secret: str):
        def auth(client: dxf.DXFBase, response: requests.Response) -> None:
            client.authenticate(user, secret, response=response)
        return auth

    registry, plain = tls.registry, tls.plain
    for user, secret in ((EMAIL, TOKENS[EMAIL]), registry.pipeline_credentials("web-app")):
        client = dxf.DXF(registry.host, APP, auth=basic(user, secret), tlsverify=str(tls.ca))
        data = uuid.uuid4().bytes * 100
        digest = client.push_blob(data=iter([data]), digest=digest_of(data))
        assert digest == digest_of(data) and b"".join(client.pull_blob(digest)) == data
    # Over plain HTTP it will not send the credentials at all.
    insecure = dxf.DXF(plain.host, APP, auth=basic(EMAIL, TOKENS[EMAIL]), insecure=True)
    with pytest.raises(dxf.exceptions.DXFAuthInsecureError):
        insecure.push_blob(data=iter([b"never sent"]), digest=digest_of(b"never sent"))
    # Nor does it trust a certificate its CA bundle does not vouch for.
    untrusting = dxf.DXF(registry.host, APP, auth=basic(EMAIL, TOKENS[EMAIL]))
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.push_blob(data=iter([b"never sent"]), digest=digest_of(b"never sent"))



def test_the_scheme_probe_tells_a_tls_port_from_a_plain_one(tls):
    assert speaks_tls(tls.registry.host) is True
    assert speaks_tls(tls.plain.host) is False
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert speaks_tls(f"127.0.0.1:{port}") is None  # nothing listens there


def _connections_and_loads(registry: RegistryProcess, ca_file: str | None) -> tuple[int, int]:
    """Four uploads started at once by one client; (connections it opened, CA loads of its adapter).
    Each connection must have used the adapter's context with no CA file of its own: urllib3 loads a
    connection's CA file again at each handshake."""
    user, secret = registry.pipeline_credentials("web-app")
    client = RegistryClient(registry.host, APP, user, Secret(secret), ca_file=ca_file, parallel=4)
    try:
        client.connect()
        together = threading.Barrier(4)

        def upload(_: int) -> None:
            together.wait(timeout=30)
            client.cancel(client.start_upload())

        with ThreadPoolExecutor(4) as threads:
            list(threads.map(upload, range(4)))
        adapter = client.transport.session.get_adapter(client.url("/v2/"))
        pools = [adapter.poolmanager.pools[key] for key in adapter.poolmanager.pools.keys()]
        for conn in (c for pool in pools for c in pool.pool.queue if c is not None):
            if ca_file:
                assert conn.ssl_context is adapter.context and conn.ca_certs is None and conn.ca_cert_dir is None
        return sum(pool.num_connections for pool in pools), adapter.loads
    finally:
        client.close()


def test_the_ca_file_is_loaded_once_for_all_the_connections_of_a_client(tls):
    connections, loads = _connections_and_loads(tls.registry, str(tls.ca))
    assert connections >= 2, "the uploads shared one connection: the test proves nothing"
    assert loads == 1
    assert _connections_and_loads(tls.plain, None)[1] == 0  # plain HTTP loads no CA at all
