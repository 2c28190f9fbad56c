"""Every failure the pipe reports, triggered for real: the message, the exit code, and no token in any output.

Each run happens with DEBUG off and (where it matters) on: the debug log adds the daemon's and the
registry's details and the traceback, and must still never show the token.
"""
from __future__ import annotations

import copy

import pytest

from harness.accounts import TOKENS, default_config
from harness.ports import free_port
from test.helpers.oci_client import Client, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, pipe_variables, run_pipe
from test.helpers.tcp_proxy import TcpProxy

APP = "acme/my-container-app"
HANG_GUARD = 60  # seconds; not a performance claim, only proof that nothing waits forever


def failed(run, *words: str) -> str:
    """Assert a failed run whose last line names every word; return that line."""
    assert run.returncode == 1, str(run)
    line = run.last_line
    assert line.startswith("✖"), str(run)
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} missing from the failure line:\n{run}"
    return line


def debug_checks(run, debug: bool) -> None:
    if debug:
        assert "DEBUG:" in run.stderr, f"DEBUG=true gave no debug log:\n{run}"
    else:
        assert "DEBUG:" not in run.stderr and "Traceback" not in run.output, str(run)


def tags_of(registry) -> list[str]:
    r = registry.api("GET", "/workspaces/acme/packages/my-container-app")
    assert r.status_code == 200, r.text
    return [t["name"] for t in r.json()["tags"]]


DEBUG = pytest.mark.parametrize("debug", [False, True], ids=["quiet", "debug"])


class TestDaemonAndCredentials:
    @DEBUG
    def test_no_docker_daemon_says_to_add_the_docker_service(self, debug, registry, local_image):
        port = free_port()
        run = run_pipe({**pipe_variables(registry.host, local_image, DEBUG=str(debug).lower()),
                        "DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
        failed(run, "Cannot connect to the Docker daemon", f"DOCKER_HOST=tcp://127.0.0.1:{port}",
               "add `services: [docker]`", "connection refused")
        assert run.seconds < HANG_GUARD
        debug_checks(run, debug)
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    @DEBUG
    def test_wrong_token_is_a_refused_login(self, debug, registry, local_image):
        token = "wrong-token-for-pipelines-77"
        run = run_pipe(pipe_variables(registry.host, local_image, DEBUG=str(debug).lower(),
                                      BITBUCKET_PACKAGES_TOKEN=token))
        failed(run, f"Login to {registry.host} refused for user pipelines", "BITBUCKET_PACKAGES_TOKEN",
               "unauthorized")
        assert "gave up" not in run.last_line and "retrying" not in run.stderr  # 401 is not retried
        debug_checks(run, debug)
        assert_no_secret(run, "pipelines", token)
        assert tags_of(registry) == []

    @DEBUG
    def test_read_only_member_lacks_push_permission(self, debug, registry, local_image):
        run = run_pipe(pipe_variables(registry.host, local_image, user="reader", DEBUG=str(debug).lower()))
        failed(run, f"Push of {registry.host}/{APP}:", "denied", "user reader lacks push permission",
               "write access", "my-container-app")
        assert "gave up" not in run.last_line and "retrying" not in run.stderr  # 403 is not retried
        debug_checks(run, debug)
        assert_no_secret(run, "reader", TOKENS["reader"])
        assert tags_of(registry) == []

    @DEBUG
    def test_missing_package_says_to_create_it_and_link_it(self, debug, registry, image_factory):
        local = image_factory(name="ghost-app")
        run = run_pipe(pipe_variables(registry.host, local, DEBUG=str(debug).lower()))
        failed(run, f"Push of {registry.host}/acme/ghost-app:", "package ghost-app does not exist",
               "workspace acme", "create it", "link it to a repository")
        assert "gave up" not in run.last_line
        debug_checks(run, debug)
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        listing = registry.api("GET", "/workspaces/acme/packages")
        assert listing.status_code == 200 and "ghost-app" not in listing.text


class TestRegistryLimitsAndOutages:
    def test_layer_over_the_registry_limit_fails_fast_naming_the_limit(self, registry_factory, image_factory):
        config = copy.deepcopy(default_config())
        config["limits"]["max_layer_bytes"] = 100_000
        registry = registry_factory(config)
        local = image_factory(layers=[400_000])
        run = run_pipe(pipe_variables(registry.host, local, DEBUG="true"))
        failed(run, f"Push of {registry.host}/{APP}:", "layer is larger than the registry accepts",
               "32 GB per layer", "split the big layer", "limit of 100000 bytes")
        # Refused, not retried: neither the daemon nor the pipe tries again.
        assert "gave up" not in run.last_line
        assert "retrying" not in run.stderr.lower(), str(run)
        assert run.seconds < HANG_GUARD
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        assert tags_of(registry) == []

    @pytest.mark.parametrize("engine", ["native", "docker"])
    def test_upload_slower_than_the_registry_time_limit_says_so(self, engine, registry_factory, image_factory):
        config = copy.deepcopy(default_config())
        config["limits"]["upload_timeout_seconds"] = 1
        registry = registry_factory(config)
        local = image_factory(layers=[300_000])
        # A slow uplink: 300 kB at 100 kB/s takes 3 s, over the registry's 1 s per upload session.
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, client_bytes_per_second=100_000) as proxy:
            run = run_pipe(pipe_variables(proxy.host, local, TAGS="slow", PUSH_ENGINE=engine))
        failed(run, f"Push of {proxy.host}/{APP}:slow timed out", "longer than the registry allows",
               "7 minutes per upload on Bitbucket", "smaller", "faster network", "time limit")
        if engine == "docker":
            # The daemon retries the layer on its own (5 attempts in all); the pipe does not add more on top.
            assert run.stderr.count("upload failed; the Docker daemon is retrying") == 4, str(run)
        else:
            # The native engine knows the time limit is final: no retry at all.
            assert "retrying" not in run.stderr.lower() and "resuming" not in run.stderr.lower(), str(run)
        assert "gave up" not in run.last_line and "WARNING" not in run.stderr, str(run)
        assert run.seconds < 90
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        assert tags_of(registry) == []

    def test_stopped_registry_is_unreachable_after_bounded_retries(self, registry_factory, local_image):
        registry = registry_factory()
        registry.stop()
        run = run_pipe(pipe_variables(registry.host, local_image, DEBUG="true"))
        failed(run, f"Registry {registry.host} unreachable", "check REGISTRY", "connection refused",
               "gave up after 3 attempts")
        assert run.stderr.count("retrying in") == 2, str(run)
        assert run.seconds < HANG_GUARD
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_dropped_connections_at_login_are_retried_by_the_pipe(self, registry, local_image):
        # The daemon's login tries https then http: dropping 2 connections fails the pipe's first login attempt.
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, drop_first=2) as proxy:
            run = run_pipe(pipe_variables(proxy.host, local_image, TAGS="flaky", DEBUG="true"))
        assert run.returncode == 0, str(run)
        assert proxy.stats.dropped == 2
        assert f"Login to {proxy.host} failed" in run.stderr and "connection reset" in run.stderr.lower(), str(run)
        assert run.seconds < HANG_GUARD
        assert "digest: sha256:" in run.stderr and "✔ Pushed" in run.last_line
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "flaky") == 2
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    @pytest.mark.parametrize("engine", ["native", "docker"])
    def test_connections_reset_mid_upload_are_retried_and_the_push_is_intact(self, engine, registry, image_factory):
        local = image_factory(layers=[3_000_000, 20_000])
        # Reset the big layer's upload twice once 500 kB went through; the daemon retries (5 s, then 10 s).
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, reset_after_bytes=500_000,
                      max_resets=2) as proxy:
            run = run_pipe(pipe_variables(proxy.host, local, TAGS="resilient", PUSH_ENGINE=engine))
        assert run.returncode == 0, str(run)
        assert proxy.stats.resets == 2
        if engine == "docker":
            assert run.stderr.count("upload failed; the Docker daemon is retrying") == 2, str(run)
        else:
            # The native engine asks where the upload stands and goes on from there.
            assert run.stderr.count("Resuming the upload at byte") == 2, str(run)
        assert run.seconds < 90
        # What was reset left nothing half-written behind: every blob of the tag verifies.
        client = Client(registry, APP, user="reader", actions="pull")
        assert verify_tagged_image(client, "resilient") == 3
        assert client.get_manifest("resilient").headers["Docker-Content-Digest"] in run.last_line
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_registry_that_drops_every_connection_fails_clearly(self, registry, local_image):
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, drop_all=True) as proxy:
            run = run_pipe(pipe_variables(proxy.host, local_image, DEBUG="true"))
        failed(run, f"Registry {proxy.host} unreachable", "connection reset", "gave up after 3 attempts")
        assert proxy.stats.dropped >= 3
        assert run.seconds < HANG_GUARD
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        assert tags_of(registry) == []


class TestVariables:
    @DEBUG
    def test_every_invalid_variable_is_reported_together(self, debug, registry):
        token = "a-token-that-must-stay-hidden-31"
        run = run_pipe({
            "IMAGE_NAME": "My-App:v1",
            "TAGS": "ok latest,stable -bad",
            "REGISTRY": f"http://{registry.host}",
            "BITBUCKET_PACKAGES_TOKEN": token,
            "DEBUG": str(debug).lower(),
        })
        assert run.returncode == 1, str(run)
        assert "Invalid pipe variables (6 problems):" in run.stdout, str(run)
        for words in ("IMAGE_NAME 'My-App:v1'", "must be lowercase",
                      "TAGS entry 'latest,stable'", "TAGS is space-separated",
                      "TAGS entry '-bad'",
                      "WORKSPACE is missing",
                      "BITBUCKET_PACKAGES_USERNAME is missing",
                      f"REGISTRY 'http://{registry.host}' is not valid", "without a scheme"):
            assert words in run.stdout, f"{words!r} missing:\n{run}"
        assert "Traceback" not in run.output
        assert_no_secret(run, "", token)
