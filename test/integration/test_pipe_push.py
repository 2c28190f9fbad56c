"""The pipe from the checkout (`python -m pipe`) against the real daemon and the embedded registry.

The main job (push with auth, pull back with `docker pull` and `skopeo inspect`, refused pushes leave
the registry unchanged) and the pipe's outputs and behaviour (several tags, the output file, a re-push
that uploads nothing, temporary tags removed from the daemon).
"""
from __future__ import annotations

import json
import re

import pytest

from harness.accounts import TOKENS
from test.helpers.oci_client import Client, docker, docker_login, image_id, skopeo, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, assert_one_line_failure, pipe_variables, read_output, run_pipe

APP = "acme/my-container-app"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
OUTPUT_FIELDS = {"registry", "workspace", "image", "source_image", "digest", "tags", "references",
                 "reference_by_digest", "pushed_bytes", "duration_seconds", "engine", "layers_uploaded",
                 "layers_mounted", "layers_skipped", "source", "platforms", "index_digest", "manifests",
                 "previous_digests", "tags_written", "tags_unchanged"}


def registry_state(registry) -> tuple[int, int, list[tuple[str, str]]]:
    """(blobs, stored bytes, tags of my-container-app with their digests), as the workspace admin sees them."""
    storage = registry.api("GET", "/workspaces/acme/storage")
    assert storage.status_code == 200, storage.text
    package = registry.api("GET", "/workspaces/acme/packages/my-container-app")
    assert package.status_code == 200, package.text
    tags = sorted((t["name"], t["digest"]) for t in package.json()["tags"])
    return storage.json()["blobs"], storage.json()["stored_bytes"], tags


def registry_refs(registry) -> list[str]:
    """Local daemon references under the registry's host (what the pipe tags temporarily)."""
    r = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", timeout=60)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.split() if line.startswith(f"{registry.host}/")]


def printed_digest(run) -> str:
    found = DIGEST.findall(run.last_line)
    assert len(set(found)) == 1, f"expected one digest in the last line:\n{run}"
    return found[0]


class TestPushAndPullBack:
    def test_push_then_docker_pull_and_skopeo_show_the_printed_digest(self, registry, docker_config, image_factory,
                                                                      docker_refs, tmp_path):
        local = image_factory(layers=[200_000, 30_000])
        original_id = image_id(local)
        out = tmp_path / "shared"
        run = run_pipe(pipe_variables(registry.host, local, TAGS="v1", BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
        assert run.returncode == 0, str(run)
        digest = printed_digest(run)
        remote = f"{registry.host}/{APP}:v1"
        assert f"Pushed {remote} digest: {digest}" in run.stderr
        assert read_output(out)["digest"] == digest
        assert_no_secret(run, "pipelines", TOKENS["pipelines"])
        # The pipe removed its registry-tagged reference; remove the source too so the pull fetches layers.
        assert registry_refs(registry) == []
        assert docker("rmi", local).returncode == 0

        docker_login(registry, "reader")
        pulled = docker("pull", remote)
        docker_refs.append(remote)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        assert image_id(remote) == original_id

        r = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", f"pipelines:{TOKENS['pipelines']}",
                   f"docker://{remote}")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == digest and len(info["Layers"]) == 2

    @pytest.mark.parametrize("case", ["wrong token", "read member", "image not local"])
    def test_refused_push_is_one_clear_line_and_the_registry_holds_nothing_new(self, case, registry, image_factory):
        local = image_factory(layers=[100_000])
        seeded = run_pipe(pipe_variables(registry.host, local, TAGS="existing"))
        assert seeded.returncode == 0, str(seeded)
        before = registry_state(registry)
        assert before[0] >= 2 and before[2] == [("existing", printed_digest(seeded))]

        fresh = image_factory(layers=[150_000])  # new layers: any upload would show in the storage
        user, token = "pipelines", TOKENS["pipelines"]
        variables = pipe_variables(registry.host, fresh, TAGS="new other")
        if case == "wrong token":
            token = variables["BITBUCKET_PACKAGES_TOKEN"] = "not-the-token-5a5a"
            words = ["login", "refused", "pipelines", "BITBUCKET_PACKAGES_TOKEN"]
        elif case == "read member":
            user, token = "reader", TOKENS["reader"]
            variables = pipe_variables(registry.host, fresh, user="reader", TAGS="new other")
            words = ["denied", "reader", "lacks push permission", "write"]
        else:
            variables["IMAGE_NAME"] = "my-container-app:not-built-here"
            words = ["my-container-app:not-built-here", "not found", "build it", "same step"]
        run = run_pipe(variables)
        assert_one_line_failure(run, *words)
        assert run.returncode == 1
        assert_no_secret(run, user, token)
        assert registry_state(registry) == before
        assert registry_refs(registry) == []


class TestOutputsAndBehaviour:
    def test_three_tags_one_digest_output_file_then_nothing_new(self, registry, image_factory, tmp_path):
        local = image_factory(layers=[120_000, 40_000])
        source_id = image_id(local)
        out = tmp_path / "shared"
        tags = ["latest", "1.0.0", "build-42"]
        run = run_pipe(pipe_variables(registry.host, local, TAGS=" ".join(tags),
                                      BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
        assert run.returncode == 0, str(run)
        digest = printed_digest(run)
        repository = f"{registry.host}/{APP}"

        output = read_output(out)
        assert set(output) == OUTPUT_FIELDS
        assert output["registry"] == registry.host and output["workspace"] == "acme"
        assert output["image"] == "my-container-app" and output["source_image"] == local
        assert output["digest"] == digest
        assert output["tags"] == tags
        assert output["references"] == [f"{repository}:{tag}" for tag in tags]
        assert output["reference_by_digest"] == f"{repository}@{digest}"
        assert (output["tags_written"], output["tags_unchanged"]) == (tags, [])
        assert output["pushed_bytes"] >= 160_000
        assert isinstance(output["duration_seconds"], float) and output["duration_seconds"] >= 0
        for tag in tags:
            assert f"Pushed {repository}:{tag} digest: {digest}" in run.stderr

        # Every tag names the same manifest in the registry, and every blob is intact.
        client = Client(registry, APP, user="reader", actions="pull")
        for tag in tags:
            r = client.get_manifest(tag)
            assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest, (tag, r.text)
        assert verify_tagged_image(client, "build-42") == 3
        assert registry_state(registry)[2] == sorted((tag, digest) for tag in tags)
        r = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", f"reader:{TOKENS['reader']}",
                   f"docker://{repository}@{digest}")
        assert r.returncode == 0 and json.loads(r.stdout)["Digest"] == digest, r.stderr

        # The daemon: no temporary tags left, the source image untouched.
        assert registry_refs(registry) == []
        assert image_id(local) == source_id

        blobs, stored, _ = registry_state(registry)
        again = run_pipe(pipe_variables(registry.host, local, TAGS=" ".join(tags),
                                        BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(out)))
        assert again.returncode == 0, str(again)
        assert "nothing new uploaded" in again.last_line
        assert printed_digest(again) == digest
        second = read_output(out)
        assert second["pushed_bytes"] == 0 and second["digest"] == digest and second["tags"] == tags
        # Every tag already held the digest: none was written again.
        assert (second["tags_written"], second["tags_unchanged"]) == ([], tags)
        assert "Pushed " not in again.stderr and f"Tag {tags[0]}: unchanged (not written)" in again.stderr
        assert registry_state(registry)[:2] == (blobs, stored)
        assert registry_refs(registry) == []

    def test_existing_daemon_tags_are_restored_and_only_the_pipes_own_removed(self, registry, image_factory,
                                                                           docker_refs):
        local = image_factory(layers=[50_000])
        other = image_factory(layers=[10_000], name="other-app")
        repository = f"{registry.host}/{APP}"
        # The user already has `keep` pointing at another image and `same` at the source image.
        for tag, source in (("keep", other), ("same", local)):
            assert docker("tag", source, f"{repository}:{tag}").returncode == 0
            docker_refs.append(f"{repository}:{tag}")

        run = run_pipe(pipe_variables(registry.host, local, TAGS="keep same fresh"))
        assert run.returncode == 0, str(run)
        assert image_id(f"{repository}:keep") == image_id(other)
        assert image_id(f"{repository}:same") == image_id(local)
        assert sorted(registry_refs(registry)) == [f"{repository}:keep", f"{repository}:same"]
        # The registry got the source image under all three tags, `keep` included.
        assert {tag for tag, digest in registry_state(registry)[2]} == {"keep", "same", "fresh"}
        assert len({digest for tag, digest in registry_state(registry)[2]}) == 1
