"""The native engine (PUSH_ENGINE=native, the default) against the real daemon and real registries.

What the pipe uploads is read back by other clients (docker pull gives the same image ID, skopeo
reads the manifest), what the registry already holds is skipped or mounted and never re-sent, and
faults (dropped connections, expiring tokens, a daemon that goes away) end in a complete push or
in one clear line with nothing left under a tag.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from harness.accounts import TOKENS, default_config
from harness.docker_images import build_image, remove_image
from test.helpers.oci_client import Client, docker, docker_login, image_id, skopeo, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, assert_one_line_failure, pipe_variables, read_output, run_pipe
from test.helpers.tcp_proxy import TcpProxy

APP = "acme/my-container-app"
MiB = 1024 * 1024


def tags_of(registry, package: str = "my-container-app") -> list[str]:
    r = registry.api("GET", f"/workspaces/acme/packages/{package}")
    assert r.status_code == 200, r.text
    return sorted(t["name"] for t in r.json()["tags"])


def native(registry_host: str, image: str, out: Path | None = None, **overrides: str) -> dict[str, str]:
    variables = pipe_variables(registry_host, image, PUSH_ENGINE="native", **overrides)
    if out is not None:
        variables["BITBUCKET_PIPE_SHARED_STORAGE_DIR"] = str(out)
    return variables


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"


class TestRoundTrip:
    def test_pull_gives_back_the_same_image_and_skopeo_reads_it(self, registry, image_factory, docker_config,
                                                                docker_refs, tmp_path):
        local = image_factory(layers=[2 * MiB, 300_000, 0, 5000])
        out = tmp_path / "out"
        run = run_pipe(native(registry.host, local, out, TAGS="latest 1.0"))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["engine"], output["layers_uploaded"], output["layers_skipped"]) == ("native", 4, 0), output
        assert "Plan: 4 layers; 0 already in the registry, 0 mounted from other images, 4 to upload" in run.stderr
        digest = output["digest"]

        remote = f"{registry.host}/{APP}:1.0"
        docker_login(registry, "reader")
        docker_refs.append(remote)
        pulled = docker("pull", remote)
        assert pulled.returncode == 0, pulled.stderr
        assert image_id(remote) == image_id(local), "docker pull must give back the very image the daemon held"
        inspect = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", f"reader:{TOKENS['reader']}",
                         f"docker://{registry.host}/{APP}:latest")
        assert inspect.returncode == 0, inspect.stderr
        assert json.loads(inspect.stdout)["Digest"] == digest
        raw = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", f"reader:{TOKENS['reader']}",
                     f"docker://{registry.host}/{APP}:latest")
        manifest = json.loads(raw.stdout)
        assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert manifest["config"]["digest"] == image_id(local)
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "1.0") == 5
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_unchanged_image_is_published_without_reading_a_layer(self, registry, image_factory, tmp_path):
        local = image_factory(layers=[1 * MiB, 1000])
        first = run_pipe(native(registry.host, local, TAGS="latest"))
        assert first.returncode == 0, str(first)
        out = tmp_path / "out"
        again = run_pipe(native(registry.host, local, out, TAGS="latest 2.0"))
        assert again.returncode == 0, str(again)
        assert "no layer was read" in again.stderr and "Uploading" not in again.stderr, str(again)
        output = read_output(out)
        assert (output["pushed_bytes"], output["layers_uploaded"], output["layers_skipped"]) == (0, 0, 2)
        assert output["digest"] in first.last_line, "the same manifest, byte for byte"
        assert tags_of(registry) == ["2.0", "latest"]

    def test_only_the_new_top_layer_and_the_config_travel(self, registry, image_factory, tmp_path):
        base = image_factory(layers=[3 * MiB, 2 * MiB, 4000])
        assert run_pipe(native(registry.host, base, TAGS="latest")).returncode == 0
        top = image_factory(layers=[500_000], name="my-container-app")
        remove_image(top)
        build_image(top, tmp_path / "top", [500_000], base=base)
        out = tmp_path / "out"
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port) as proxy:
            run = run_pipe(native(proxy.host, top, out, TAGS="latest"))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["layers_uploaded"], output["layers_skipped"]) == (1, 3), output
        # 5 MiB of base layers were not sent: only the 0.5 MB layer, the config and the requests.
        assert proxy.stats.bytes_from_client < 700_000, proxy.stats
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "latest") == 5

    def test_cache_from_another_package_mounts_its_layers(self, registry, image_factory, tmp_path):
        base = image_factory(layers=[1 * MiB, 200_000], name="other-app")
        assert run_pipe(native(registry.host, base, TAGS="base")).returncode == 0
        top = image_factory(layers=[1000], name="my-container-app")
        remove_image(top)
        build_image(top, tmp_path / "top", [1000], base=base)
        out = tmp_path / "out"
        run = run_pipe(native(registry.host, top, out, TAGS="1.0", CACHE_FROM="other-app:base main"))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["layers_uploaded"], output["layers_mounted"], output["layers_skipped"]) == (1, 2, 0), output
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "1.0") == 4

    def test_full_reference_as_image_name(self, registry, local_image, docker_refs):
        full = f"{registry.host}/acme/my-container-app:full"
        assert docker("tag", local_image, full).returncode == 0
        docker_refs.append(full)
        run = run_pipe(native(registry.host, full, TAGS=None))
        assert run.returncode == 0, str(run)
        assert tags_of(registry) == ["full"]
        wrong = run_pipe(native(registry.host, f"{registry.host}/globex/my-container-app:full"))
        assert wrong.returncode == 1, str(wrong)
        for words in ("Invalid pipe variables (1 problem)", "names registry", "and workspace globex",
                      "workspace acme (WORKSPACE)", "make them agree"):
            assert words in wrong.stdout, str(wrong)


class TestFaults:
    def test_connection_dropped_mid_layer_resumes_and_sends_less_than_image_plus_a_chunk(
            self, registry, image_factory, tmp_path):
        local = image_factory(layers=[20 * MiB])
        out = tmp_path / "out"
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, reset_after_bytes=6 * MiB,
                      max_resets=1) as proxy:
            run = run_pipe(native(proxy.host, local, out, TAGS="resumed", CHUNK_SIZE_MB="4"))
        assert run.returncode == 0, str(run)
        assert proxy.stats.resets == 1
        assert "Resuming the upload at byte" in run.stderr, str(run)
        pushed = read_output(out)["pushed_bytes"]
        assert proxy.stats.bytes_from_client < pushed + 4 * MiB, (proxy.stats, pushed)
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "resumed") == 2

    def test_refusal_while_a_big_layer_is_being_compressed_ends_the_push(self, registry_factory, image_factory):
        # The registry refuses the layer while the compressor still has blocks in flight on every
        # thread: the push must end with the registry's words, not wait on those threads.
        config = copy.deepcopy(default_config())
        config["limits"]["max_layer_bytes"] = 2 * MiB
        registry = registry_factory(config)
        local = image_factory(layers=[64 * MiB])
        run = run_pipe(native(registry.host, local, TAGS="refused", CHUNK_SIZE_MB="1"), timeout=120)
        assert run.returncode == 1, str(run)
        assert "larger than the registry accepts" in run.last_line, str(run)
        assert tags_of(registry) == []

    def test_token_expiring_mid_push_is_renewed(self, registry_factory, image_factory):
        config = copy.deepcopy(default_config())
        config["auth"] = {"token_ttl_seconds": 2}
        registry = registry_factory(config)
        local = image_factory(layers=[3 * MiB])
        # 1 MiB/s: the push lasts about 3 s, past the 2 s token.
        with TcpProxy(target_host="127.0.0.1", target_port=registry.port, client_bytes_per_second=MiB) as proxy:
            run = run_pipe(native(proxy.host, local, TAGS="renewed", CHUNK_SIZE_MB="1", DEBUG="true"))
        assert run.returncode == 0, str(run)
        assert "fetching a new one" in run.stderr, str(run)
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "renewed") == 2
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])

    def test_daemon_gone_mid_export_fails_clearly_and_tags_nothing(self, registry, image_factory):
        local = image_factory(layers=[8 * MiB])
        with TcpProxy(target_unix=docker_socket(), reset_after_server_bytes=2 * MiB, max_resets=10) as daemon:
            run = run_pipe(native(registry.host, local, DOCKER_HOST=f"tcp://{daemon.host}"))
        assert_one_line_failure(run, "Lost the connection to the Docker daemon while exporting", local)
        assert daemon.stats.server_resets >= 1
        assert tags_of(registry) == []

    def test_missing_image_fails_before_any_upload(self, registry):
        run = run_pipe(native(registry.host, "my-container-app:not-built-here"))
        assert_one_line_failure(run, "Image my-container-app:not-built-here not found in the Docker daemon",
                                "docker build -t my-container-app:not-built-here")
        assert tags_of(registry) == []

    def test_read_only_member_is_refused_before_the_export(self, registry, image_factory):
        local = image_factory(layers=[1000])
        run = run_pipe(pipe_variables(registry.host, local, user="reader", PUSH_ENGINE="native"))
        assert_one_line_failure(run, "denied", "lacks push permission")
        assert "Uploading" not in run.stderr and "Plan:" not in run.stderr, str(run)
        assert_no_secret(run, "reader", TOKENS["reader"])


def pull_and_compare(remote: str, local: str, refs: list[str]) -> None:
    refs.append(remote)
    pulled = docker("pull", remote)
    assert pulled.returncode == 0, pulled.stderr
    assert image_id(remote) == image_id(local)


class TestReferenceRegistry:
    """distribution 2.8 (Debian's docker-registry): the native engine is not tied to the emulator."""

    def test_no_auth(self, reference_registry, image_factory, docker_refs):
        local = image_factory(layers=[2 * MiB, 1000])
        run = run_pipe(native(reference_registry.host, local, TAGS="latest 1.0"))
        assert run.returncode == 0, str(run)
        pull_and_compare(f"{reference_registry.host}/{APP}:1.0", local, docker_refs)
        inspect = skopeo("inspect", "--tls-verify=false", f"docker://{reference_registry.host}/{APP}:latest")
        assert inspect.returncode == 0, inspect.stderr
        assert json.loads(inspect.stdout)["Digest"] in run.last_line

    def test_htpasswd(self, reference_registry_auth, image_factory, docker_config, docker_refs):
        from test.fixtures.registries import REFERENCE_PASSWORD, REFERENCE_USER
        local = image_factory(layers=[1 * MiB])
        host = reference_registry_auth.host
        creds = {"BITBUCKET_PACKAGES_USERNAME": REFERENCE_USER, "BITBUCKET_PACKAGES_TOKEN": REFERENCE_PASSWORD}
        run = run_pipe({**native(host, local, TAGS="basic"), **creds})
        assert run.returncode == 0, str(run)
        assert_no_secret(run, REFERENCE_USER, REFERENCE_PASSWORD)
        login = docker("login", host, "-u", REFERENCE_USER, "--password-stdin", input=REFERENCE_PASSWORD)
        assert login.returncode == 0, login.stderr
        pull_and_compare(f"{host}/{APP}:basic", local, docker_refs)
        wrong = run_pipe({**native(host, local, TAGS="basic"), **creds, "BITBUCKET_PACKAGES_TOKEN": "not-it"})
        assert_one_line_failure(wrong, f"Login to {host} refused for user {REFERENCE_USER}")

    def test_upload_cancelled_after_a_partial_chunk_is_sent_again(self, reference_registry, http_proxy_factory,
                                                                  image_factory, docker_refs):
        local = image_factory(layers=[6 * MiB])
        proxy = http_proxy_factory(reference_registry.url)
        proxy.drop("PATCH", r"/blobs/uploads/", after_bytes=MiB)
        run = run_pipe(native(proxy.host, local, TAGS="again", CHUNK_SIZE_MB="4"))
        assert run.returncode == 0, str(run)
        # distribution forgets the session after a cut chunk: the layer is read and sent once more.
        assert "dropped the upload" in run.stderr and "Reading the image again for 1 layer" in run.stderr, str(run)
        pull_and_compare(f"{reference_registry.host}/{APP}:again", local, docker_refs)


class TestPipelinesCase:
    def test_fresh_daemon_sends_only_the_new_layer_and_the_config(self, registry, http_proxy_factory, second_daemon,
                                                                   image_factory, tmp_path, docker_refs,
                                                                   docker_config):
        base = image_factory(layers=[3 * MiB, 2 * MiB, 1 * MiB])
        assert run_pipe(native(registry.host, base, TAGS="latest")).returncode == 0
        top = image_factory(layers=[400_000])
        remove_image(top)
        build_image(top, tmp_path / "top", [400_000], base=base)
        second_daemon.load(top)  # a fresh daemon that never pushed anything, as each Pipelines step has
        proxy = http_proxy_factory(f"http://{registry.host}")
        out = tmp_path / "out"
        run = run_pipe(native(proxy.host, top, out, TAGS="latest", DOCKER_HOST=second_daemon.docker_host))
        assert run.returncode == 0, str(run)
        output = read_output(out)
        assert (output["layers_uploaded"], output["layers_skipped"]) == (1, 3), output
        # Two blobs finished: the top layer and the config; the base layers were only HEADed.
        assert proxy.count("PUT", r"/blobs/uploads/") == 2, proxy.requests()
        assert proxy.bytes_in("PATCH", r"/blobs/uploads/") + proxy.bytes_in("PUT", r"/blobs/uploads/") < 600_000
        docker_login(registry, "reader")
        pull_and_compare(f"{registry.host}/{APP}:latest", top, docker_refs)


class TestAnswers:
    def test_503_and_429_are_retried_honouring_retry_after(self, registry, http_proxy_factory, image_factory):
        local = image_factory(layers=[2 * MiB])
        proxy = http_proxy_factory(f"http://{registry.host}")
        proxy.fail("PATCH", r"/blobs/uploads/", 503)
        proxy.fail("PUT", r"/manifests/", 429, headers={"Retry-After": "3"})
        run = run_pipe(native(proxy.host, local, TAGS="patient"))
        assert run.returncode == 0, str(run)
        assert proxy.count("PATCH", r"/blobs/uploads/", status=503) == 1
        assert proxy.count("PUT", r"/manifests/", status=429) == 1
        assert "resuming in" in run.stderr and "retrying in 3 s" in run.stderr, str(run)
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "patient") == 2

    def test_registry_refusing_chunks_gets_one_put_per_blob(self, registry, http_proxy_factory, image_factory):
        local = image_factory(layers=[2 * MiB, 500_000])
        proxy = http_proxy_factory(f"http://{registry.host}")
        proxy.fail("PATCH", r"/blobs/uploads/", 405, times=100,
                   body=b'{"errors":[{"code":"UNSUPPORTED","message":"chunked uploads are not supported"}]}')
        run = run_pipe(native(proxy.host, local, TAGS="whole"))
        assert run.returncode == 0, str(run)
        assert "refused a chunked upload" in run.stderr, str(run)
        # Refused once per uploader at most (the two layers may start side by side), then every blob goes whole.
        assert 1 <= proxy.count("PATCH", r"/blobs/uploads/") <= 2, proxy.requests("PATCH")
        assert proxy.count("PUT", r"/blobs/uploads/", status=201) == 3
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "whole") == 3

    def test_an_answer_it_does_not_understand_sends_the_push_through_the_daemon(
            self, registry, http_proxy_factory, image_factory, tmp_path):
        local = image_factory(layers=[300_000])
        proxy = http_proxy_factory(f"http://{registry.host}")
        proxy.fail("POST", r"/blobs/uploads/$", 400,
                   body=b'{"errors":[{"code":"QUOTA_WEIRDNESS","message":"something only this registry says"}]}')
        out = tmp_path / "out"
        run = run_pipe(native(proxy.host, local, out, TAGS="fallback"))
        assert run.returncode == 0, str(run)
        assert "does not understand" in run.stderr and "quota weirdness: something only this registry says" \
            in run.stderr, str(run)
        assert "pushing once more through the Docker daemon" in run.stderr
        assert read_output(out)["engine"] == "docker"
        assert verify_tagged_image(Client(registry, APP, user="reader", actions="pull"), "fallback") == 2
