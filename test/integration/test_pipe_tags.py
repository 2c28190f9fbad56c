"""Tags from the step (placeholders), PROTECT_TAGS, DRY_RUN and what each tag held before, with the pipe
from the checkout against the embedded registry and distribution 2.8, pushing from the real daemon and
from archives. What the registry holds is read back by digest (skopeo, docker pull, the management API);
what reached it is counted by an HTTP proxy in front of it.
"""
from __future__ import annotations

import hashlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.accounts import TOKENS
from pipe.client.api import RegistryClient
from pipe.scrubbing import Secret
from test.helpers import archives as fx
from test.helpers.oci_client import docker, image_id, skopeo
from test.helpers.pipe_runner import assert_no_secret, assert_one_line_failure, pipe_variables, read_output, run_pipe

APP = "acme/my-container-app"
COMMIT = "3f9c2d1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
NO_DAEMON = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
RELEASE = {"TAGS": "{semver} latest", "BITBUCKET_TAG": "v1.4.2", "BITBUCKET_COMMIT": COMMIT,
           "PROTECT_TAGS": "[0-9]*.*.*"}
WRITES = ("POST", "PATCH", "PUT")


def digest_of_tag(host: str, tag: str, creds: tuple[str, ...] = ()) -> str | None:
    r = skopeo("inspect", "--raw", "--tls-verify=false", *creds, f"docker://{host}/{APP}:{tag}")
    if r.returncode != 0:
        return None
    return "sha256:" + hashlib.sha256(r.stdout.encode()).hexdigest()


def emulator_tags(registry) -> dict[str, str]:
    package = registry.api("GET", "/workspaces/acme/packages/my-container-app")
    assert package.status_code == 200, package.text
    return {t["name"]: t["digest"] for t in package.json()["tags"]}


def emulator_blobs(registry) -> tuple[int, int]:
    storage = registry.api("GET", "/workspaces/acme/storage").json()
    return storage["blobs"], storage["stored_bytes"]


def printed_digest(run) -> str:
    found = set(DIGEST.findall(run.last_line))
    assert len(found) == 1, str(run)
    return found.pop()


def writes(proxy, start: int) -> list[str]:
    """The requests that write, of those the proxy saw from number `start` on."""
    return [f"{r.method} {r.path}" for r in proxy.requests()[start:] if r.method in WRITES]


def push_archive(host: str, path, **variables: str):
    return run_pipe(pipe_variables(host, "my-container-app", IMAGE_ARCHIVE=str(path), **NO_DAEMON, **variables))


class TestDerivedTags:
    def test_a_branch_build_pushes_its_derived_tags_and_docker_pulls_them(self, registry, image_factory,
                                                                          docker_config, docker_refs, tmp_path):
        local = image_factory(layers=[60_000])
        out = tmp_path / "shared"
        run = run_pipe(pipe_variables(registry.host, local, TAGS="{branch} {commit:7} {branch}-{build} {semver}",
                                      BITBUCKET_BRANCH="feature/Login-Page", BITBUCKET_COMMIT=COMMIT,
                                      BITBUCKET_BUILD_NUMBER="42", BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
        assert run.returncode == 0, str(run)
        digest = printed_digest(run)
        expected = ["feature-login-page", COMMIT[:7], "feature-login-page-42"]
        assert "TAGS entry '{semver}' left out: {semver}: BITBUCKET_TAG is not set" in run.stderr
        output = read_output(out)
        assert output["tags"] == expected
        assert output["previous_digests"] == dict.fromkeys(expected)
        assert emulator_tags(registry) == dict.fromkeys(expected, digest)
        for tag in expected:
            assert f"Tag {tag}: new" in run.stderr
        remote = f"{registry.host}/{APP}:{COMMIT[:7]}"
        r = docker("login", registry.host, "-u", "reader", "--password-stdin", input=TOKENS["reader"], timeout=60)
        assert r.returncode == 0, r.stderr
        original = image_id(local)
        assert docker("rmi", local).returncode == 0
        pulled = docker("pull", remote)
        docker_refs.append(remote)
        assert pulled.returncode == 0 and f"Digest: {digest}" in pulled.stdout, pulled.stderr
        assert image_id(remote) == original

    def test_a_release_from_an_archive_moves_semver_tags_on_distribution(self, reference_registry, image_factory,
                                                                         tmp_path):
        local = image_factory(layers=[50_000])
        archive = fx.docker_save(local, tmp_path / "save.tar")
        out = tmp_path / "shared"
        run = run_pipe(pipe_variables(reference_registry.host, "my-container-app", IMAGE_ARCHIVE=str(archive.path),
                                      BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out), **NO_DAEMON,
                                      **{**RELEASE, "PROTECT_TAGS": ""}))
        assert run.returncode == 0, str(run)
        digest = printed_digest(run)
        tags = ["1.4.2", "1.4", "1", "latest"]
        assert read_output(out)["tags"] == tags
        for tag in tags:
            assert digest_of_tag(reference_registry.host, tag) == digest, tag
        copied = skopeo("copy", "--src-tls-verify=false", f"docker://{reference_registry.host}/{APP}:1.4",
                        f"docker-archive:{tmp_path / 'back.tar'}")
        assert copied.returncode == 0, copied.stderr
        assert fx.read_archive(tmp_path / "back.tar").images[0].diff_ids == archive.images[0].diff_ids


class TestProtectedTags:
    def test_a_protected_tag_is_refused_with_nothing_pushed_and_an_identical_rerun_succeeds(
            self, registry, image_factory, tmp_path):
        first = image_factory(layers=[70_000])
        seeded = run_pipe(pipe_variables(registry.host, first, **RELEASE))
        assert seeded.returncode == 0, str(seeded)
        held = printed_digest(seeded)
        before = (emulator_tags(registry), emulator_blobs(registry))
        assert before[0] == dict.fromkeys(["1.4.2", "1.4", "1", "latest"], held)

        other = image_factory(layers=[90_000])  # another build of the same git tag
        run = run_pipe(pipe_variables(registry.host, other, **RELEASE))
        line = assert_one_line_failure(run, "PROTECT_TAGS", "1.4.2", held, image_id(other), "nothing was pushed")
        assert "1.4 holds" not in line  # only the protected tag is named
        assert "Plan:" not in run.stderr  # refused before any layer was read
        assert (emulator_tags(registry), emulator_blobs(registry)) == before

        out = tmp_path / "shared"
        again = run_pipe(pipe_variables(registry.host, first, BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out), **RELEASE))
        assert again.returncode == 0, str(again)
        assert printed_digest(again) == held
        assert "Tag 1.4.2: unchanged" in again.stderr
        assert read_output(out)["previous_digests"] == dict.fromkeys(["1.4.2", "1.4", "1", "latest"], held)

    def test_an_oci_layout_with_a_protected_tag_on_distribution_writes_nothing(
            self, reference_registry, image_factory, http_proxy_factory, tmp_path):
        layouts = [fx.skopeo_oci_layout(image_factory(layers=[40_000 + i]), tmp_path / f"layout{i}", "1.0")
                   for i in range(2)]
        proxy = http_proxy_factory(reference_registry.url)
        variables = {**RELEASE, "BITBUCKET_TAG": "v2.0.0"}
        seeded = push_archive(proxy.host, layouts[0].path, **variables)
        assert seeded.returncode == 0, str(seeded)
        held = layouts[0].top_digest
        assert printed_digest(seeded) == held

        start = len(proxy.requests())
        run = push_archive(proxy.host, layouts[1].path, **variables)
        assert_one_line_failure(run, "PROTECT_TAGS", "2.0.0 holds", held, layouts[1].top_digest)
        sent = writes(proxy, start)
        assert sent == [f"POST /v2/{APP}/blobs/uploads/"], sent  # only the push-access check, cancelled
        for tag in ("2.0.0", "2.0", "2", "latest"):
            assert digest_of_tag(reference_registry.host, tag) == held, tag

        again = push_archive(proxy.host, layouts[0].path, **variables)
        assert again.returncode == 0 and printed_digest(again) == held, str(again)


class TestDryRun:
    def test_a_dry_run_writes_nothing_and_its_plan_is_what_the_push_then_does(
            self, registry, image_factory, layered_image_factory, http_proxy_factory, tmp_path):
        base = image_factory(layers=[80_000, 20_000])
        proxy = http_proxy_factory(registry.url)
        seeded = run_pipe(pipe_variables(proxy.host, base, TAGS="latest 1.0"))
        assert seeded.returncode == 0, str(seeded)
        held = printed_digest(seeded)
        newer = layered_image_factory.on_base(base, 30_000)
        out = tmp_path / "shared"
        variables = pipe_variables(proxy.host, newer.ref, TAGS="latest {branch}", BITBUCKET_BRANCH="release/2.x",
                                   BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out))
        start = len(proxy.requests())
        dry = run_pipe({**variables, "DRY_RUN": "true", "DEBUG": "true"})
        assert dry.returncode == 0, str(dry)
        assert writes(proxy, start) == []
        assert not out.exists()
        assert_no_secret(dry, "pipelines", TOKENS["pipelines"])
        assert "Dry run: push access to acme/my-container-app granted" in dry.stderr
        shared = len(newer.diff_ids) - 1
        assert f"Dry run: layers: 1 layer to upload, 0 to mount, {shared} already in the registry" in dry.stderr
        assert f"Dry run: tag latest: moves from {held}" in dry.stderr
        assert "Dry run: tag release-2.x: new" in dry.stderr
        assert "is allowed; nothing was written" in dry.last_line
        assert emulator_tags(registry) == {"latest": held, "1.0": held}

        real = run_pipe(variables)
        assert real.returncode == 0, str(real)
        assert "Layers: 1 layer uploaded" in real.stderr and f"{shared} already in the registry" in real.stderr
        assert f"Tag latest: moved from {held}" in real.stderr and "Tag release-2.x: new" in real.stderr
        assert read_output(out)["previous_digests"] == {"latest": held, "release-2.x": None}

    def test_a_dry_run_that_protection_refuses_fails_with_its_message_and_writes_nothing(
            self, reference_registry, image_factory, http_proxy_factory, tmp_path):
        proxy = http_proxy_factory(reference_registry.url)
        saved = [fx.docker_save(image_factory(layers=[30_000 + i]), tmp_path / f"save{i}.tar") for i in range(2)]
        variables = {**RELEASE, "BITBUCKET_TAG": "v3.1.0"}
        seeded = push_archive(proxy.host, saved[0].path, **variables)
        assert seeded.returncode == 0, str(seeded)
        held = printed_digest(seeded)

        start = len(proxy.requests())
        dry = push_archive(proxy.host, saved[1].path, **variables, DRY_RUN="true")
        assert_one_line_failure(dry, "Dry run", "PROTECT_TAGS", "3.1.0 holds", held)
        assert "Dry run: tag 3.1: moves from" in dry.stderr and "Dry run: tag 3.1.0: moves from" in dry.stderr
        count = len(saved[1].images[0].diff_ids)
        assert f"Dry run: layers: {count} layer{'s' if count > 1 else ''} to upload" in dry.stderr
        assert "push access is not checked" in dry.stderr  # distribution without auth does not say
        assert writes(proxy, start) == []
        identical = push_archive(proxy.host, saved[0].path, **variables, DRY_RUN="true")
        assert identical.returncode == 0, str(identical)
        count = len(saved[0].images[0].diff_ids)
        assert f"Dry run: layers: 0 layers to upload, 0 to mount, {count} already in the registry" in identical.stderr
        assert f"Dry run: the tags would point at {held}" in identical.stderr
        for tag in ("3.1.0", "3.1", "3", "latest"):
            assert f"Dry run: tag {tag}: unchanged" in identical.stderr


class TestDaemonEngine:
    def test_the_daemons_push_records_prior_tags_and_protects_by_image(self, registry, image_factory, tmp_path):
        first, other = image_factory(layers=[45_000]), image_factory(layers=[55_000])
        variables = {**RELEASE, "BITBUCKET_TAG": "v5.0.0", "PUSH_ENGINE": "docker"}
        seeded = run_pipe(pipe_variables(registry.host, first, **variables))
        assert seeded.returncode == 0, str(seeded)
        held = printed_digest(seeded)
        before = (emulator_tags(registry), emulator_blobs(registry))

        run = run_pipe(pipe_variables(registry.host, other, **variables))
        assert_one_line_failure(run, "PROTECT_TAGS", "5.0.0 holds", held, image_id(other))
        assert (emulator_tags(registry), emulator_blobs(registry)) == before

        out = tmp_path / "shared"
        again = run_pipe(pipe_variables(registry.host, first, BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out), **variables))
        assert again.returncode == 0, str(again)
        output = read_output(out)
        assert output["engine"] == "docker"
        assert output["previous_digests"] == dict.fromkeys(["5.0.0", "5.0", "5", "latest"], held)


class TestAskingTheRegistry:
    def test_a_registry_without_docker_content_digest_on_head_is_asked_with_a_get(self):
        body = b'{"schemaVersion": 2, "layers": []}'
        seen: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def answer(self, with_body: bool) -> None:
                seen.append(f"{self.command} {self.path}")
                if self.path == "/v2/":
                    status, payload = 200, b"{}"
                elif self.path == f"/v2/{APP}/manifests/held":
                    status, payload = 200, body
                else:
                    status, payload = 404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}'
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if with_body:
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self.answer(True)

            def do_HEAD(self) -> None:
                self.answer(False)

            def log_message(self, *args) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            client = RegistryClient(f"127.0.0.1:{server.server_port}", APP, "u", Secret("t"))
            client.connect()
            assert client.granted_push() is None  # no token: the registry does not say
            assert client.head_manifest("held") == "sha256:" + hashlib.sha256(body).hexdigest()
            assert client.head_manifest("new") is None
            client.close()
        finally:
            server.shutdown()
        assert seen == ["GET /v2/", f"HEAD /v2/{APP}/manifests/held", f"GET /v2/{APP}/manifests/held",
                        f"HEAD /v2/{APP}/manifests/new"]

    def test_a_dry_run_with_credentials_that_cannot_push_fails_without_writing(self, registry, image_factory,
                                                                               http_proxy_factory):
        proxy = http_proxy_factory(registry.url)
        run = run_pipe(pipe_variables(proxy.host, image_factory(layers=[10_000]), user="reader", DRY_RUN="true"))
        assert_one_line_failure(run, "Dry run", "grants user reader no push", "acme/my-container-app")
        assert writes(proxy, 0) == []
        assert_no_secret(run, "reader", TOKENS["reader"])


class TestRegistrySource:
    def test_a_dry_run_of_a_copy_plans_its_mounts_without_making_them(self, registry, image_factory,
                                                                       http_proxy_factory, tmp_path):
        layout = fx.skopeo_oci_layout(image_factory(layers=[35_000, 15_000]), tmp_path / "layout", "1.0")
        seeded = push_archive(registry.host, layout.path, TAGS="2.0")
        assert seeded.returncode == 0, str(seeded)
        proxy = http_proxy_factory(registry.url)
        source = f"{proxy.host}/{APP}:2.0"
        out = tmp_path / "shared"
        variables = pipe_variables(proxy.host, "other-app", SOURCE_IMAGE=source, TAGS="copied", **NO_DAEMON,
                                   BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out))
        dry = run_pipe({**variables, "DRY_RUN": "true"})
        assert dry.returncode == 0, str(dry)
        assert writes(proxy, 0) == [] and not out.exists()
        count = len(layout.images[0].layer_digests)
        assert f"Dry run: layers: 0 layers to upload, {count} to mount, 0 already in the registry" in dry.stderr
        assert f"to mount from {APP}" in dry.stderr
        assert f"Dry run: the tags would point at {layout.top_digest}" in dry.stderr
        assert "Dry run: tag copied: new" in dry.stderr

        real = run_pipe(variables)
        assert real.returncode == 0, str(real)
        output = read_output(out)
        assert (output["layers_mounted"], output["layers_uploaded"], output["digest"]) == (count, 0, layout.top_digest)
        assert output["previous_digests"] == {"copied": None}
        mounts = [r for r in proxy.requests("POST") if "mount=" in r.query and r.status == 201]
        assert len(mounts) == count + 1, mounts  # the layers and the config, made by the real copy only
