"""The pipe as Bitbucket Pipelines runs it: bitbucket-pipeline-runner runs the README's bitbucket-pipelines.yml
(test/pipelines/, with the substitutions of docs/PIPELINES.md) in a second daemon; the pipe runs inside the
step's docker service, with the clone as its working directory and DOCKER_HOST=tcp://host.docker.internal:2375,
against the emulator over TLS at its address on the daemon's bridge.

Each test checks the steps' exit codes, the pipe's lines, and the registry's tags and digests. What of the
runner differs from Pipelines (docs/PIPELINES.md): it knows no tag builds (the env file gives BITBUCKET_TAG),
keeps the docker service's data across the steps of a run (the tests drop it after each run), and its pipe
command line lacks Pipelines' `--add-host` for host.docker.internal, BITBUCKET_PIPE_SHARED_STORAGE_DIR and
BITBUCKET_TAG (harness/pipelines_runner.py adds them); the docker service is Docker 26, not 25.0.5.
"""
from __future__ import annotations

import re

from test.fixtures.pipelines import PIPE_REF
from test.helpers.pipelines import PipelineRepo

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def pushed(run, reference: str) -> str:
    """The digest of the pipe's `Pushed REFERENCE digest: D` line."""
    lines = [line for line in run.pipe_lines("INFO: Pushed ") if f" {reference} digest: " in line]
    assert len(lines) == 1, f"one `Pushed {reference}` line expected:\n{run}"
    return DIGEST.search(lines[0]).group(0)


def assert_clean(run, site) -> None:
    """No secret in the log: the step's credentials are passed by name, never printed."""
    assert site.env["BITBUCKET_PACKAGES_TOKEN"] not in run.output


def test_build_and_push_in_one_step(pipeline_repo: PipelineRepo):
    site = pipeline_repo.site
    run = pipeline_repo.use("build-push.yml").run("default")
    assert run.succeeded and run.steps == {"<unnamed>": 0}, run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:latest")
    [done] = run.pipe_lines("✔ ")
    assert done.startswith(f"✔ Pushed {site.registry}/acme/my-container-app with tags latest (digest {digest}; "), run
    # It ran inside the step's docker service (the only daemon that holds the pipe image: the step loads it
    # there) and read the image `docker build` made there, through DOCKER_HOST as Pipelines sets it.
    assert "INFO: Docker daemon: Docker 26." in run.output, run
    assert site.docker("image", "ls", "-q", PIPE_REF).stdout.strip() == "", "the pipe image is in the outer daemon"
    assert site.tags("my-container-app") == {"latest": digest}
    assert_clean(run, site)


def test_branch_build_tags_from_placeholders(pipeline_repo: PipelineRepo):
    site = pipeline_repo.site
    commit = pipeline_repo.use("tags.yml").commit("branch build")
    run = pipeline_repo.run("branches.**")
    assert run.succeeded and list(run.steps.values()) == [0], run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:main")
    assert pushed(run, f"{site.registry}/acme/my-container-app:{commit[:7]}") == digest
    assert site.tags("my-container-app") == {"main": digest, commit[:7]: digest}
    assert_clean(run, site)


def test_tag_build_semver_then_a_moved_release_is_refused(pipeline_repo: PipelineRepo):
    """The runner sets no BITBUCKET_TAG (Pipelines does on a tag build): the run's env file gives it."""
    site = pipeline_repo.site
    pipeline_repo.use("tags.yml")
    first = pipeline_repo.run("tags.v*", BITBUCKET_TAG="v1.4.2")
    assert first.succeeded and list(first.steps.values()) == [0], first
    digest = pushed(first, f"{site.registry}/acme/my-container-app:1.4.2")
    released = {"1.4.2": digest, "1.4": digest, "1": digest, "latest": digest}
    assert site.tags("my-container-app") == released

    # Another build of the same release tag with other content: 1.4.2 is protected and would move.
    second = pipeline_repo.write({"app.txt": "app 2\n"}).run("tags.v*", BITBUCKET_TAG="v1.4.2")
    assert second.failed and list(second.steps.values()) == [1], second
    # The step fails with the pipe's one line.
    refusals = second.pipe_lines("✖ ")
    assert len(refusals) == 1, second
    assert refusals[0].startswith(f"✖ PROTECT_TAGS refuses the push: 1.4.2 holds {digest}, and this push would "
                                  "give it a new manifest"), second
    assert refusals[0].endswith("Nothing was pushed. A protected tag never moves: push a new tag, or leave this one "
                                "out of PROTECT_TAGS if it is meant to move"), second
    assert not second.pipe_lines("INFO: Pushed "), second
    assert site.tags("my-container-app") == released  # no tag at all moved
    assert_clean(second, site)


def test_dry_run_then_the_push(pipeline_repo: PipelineRepo):
    site = pipeline_repo.site
    run = pipeline_repo.use("tags.yml").run("custom.deploy-production")
    assert run.succeeded and list(run.steps.values()) == [0], run
    done = run.pipe_lines("✔ ")
    assert len(done) == 2 and done[0].startswith("✔ Dry run: pushing my-container-app:latest to ") \
        and done[0].endswith("with tags production is allowed; nothing was written"), run
    assert run.pipe_lines("INFO: Dry run: tag production: ") == ["INFO: Dry run: tag production: new"], run
    # The dry run wrote nothing: the push after it still uploads the layer, and the tag is new.
    assert run.pipe_lines("INFO: Plan: ") == ["INFO: Plan: 1 layer; 0 already in the registry, 0 mounted from "
                                              "other images, 1 to upload"], run
    assert run.pipe_lines("INFO: Tag production: ") == ["INFO: Tag production: new"], run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:production")
    assert site.tags("my-container-app") == {"production": digest}
    assert_clean(run, site)


def test_build_step_saves_an_artifact_the_push_step_pushes_without_a_docker_service(pipeline_repo: PipelineRepo):
    """The push step names no docker service; the runner adds one, as Pipelines runs every pipe in docker,
    but the pipe reads the artifact and never asks that daemon."""
    site = pipeline_repo.site
    commit = pipeline_repo.use("artifact.yml").commit("artifact")
    run = pipeline_repo.run("default")
    assert run.succeeded and run.steps == {"Build": 0, "Push": 0}, run
    assert run.pipe_lines("INFO: Archive: ", step="Push") == [
        "INFO: Archive: docker-archive (tar), image my-container-app:latest, linux/amd64, 1 layer"], run
    assert not run.pipe_lines("INFO: Docker daemon: ", step="Push"), run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:latest")
    assert pushed(run, f"{site.registry}/acme/my-container-app:{commit}") == digest
    assert site.tags("my-container-app") == {"latest": digest, commit: digest}
    assert_clean(run, site)


def test_promotion_in_a_later_step(pipeline_repo: PipelineRepo):
    """The Deploy step has no docker service in the YAML and builds nothing: it copies within the registry."""
    site = pipeline_repo.site
    commit = pipeline_repo.use("promote.yml").commit("promote")
    run = pipeline_repo.run("default")
    assert run.succeeded and run.steps == {"Build": 0, "Deploy to production": 0}, run
    built = site.tags("my-container-app")[commit]
    assert site.tags("my-container-app") == {commit: built, "production": built}
    assert site.tags("my-app-staging") == {commit: built}
    assert site.tags("my-app") == {commit: built, "latest": built}
    deploy = "Deploy to production"
    assert pushed(run, f"{site.registry}/acme/my-container-app:production") == built
    # A new tag of the same package: 0 bytes moved; another package of the workspace: a mount.
    assert run.pipe_lines("INFO: Layers: ", step=deploy) == [
        "INFO: Layers: nothing new uploaded: 1 already in the registry, 0 mounted; no layer was read",
        "INFO: Layers: nothing new uploaded: 0 already in the registry, 1 mounted; no layer was read"], run
    assert [line.split(" to ")[0] for line in run.pipe_lines("✔ ", step=deploy)] == [
        f"✔ Copied :{commit}", f"✔ Copied {site.registry}/acme/my-app-staging:{commit}"], run
    assert_clean(run, site)


def test_tags_as_a_yaml_list(pipeline_repo: PipelineRepo):
    """Pipelines (and the runner) pass `TAGS: [a, b]` as TAGS_COUNT, TAGS_0, TAGS_1: every item is pushed."""
    site = pipeline_repo.site
    run = pipeline_repo.use("yaml-list.yml").run("default")
    assert run.succeeded and list(run.steps.values()) == [0], run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:1.0")
    assert site.tags("my-container-app") == {"1.0": digest, "latest": digest, "main": digest}
    assert_clean(run, site)


def test_a_clone_with_its_own_pipe_module_does_not_replace_the_pipe(pipeline_repo: PipelineRepo):
    """The pipe runs with the clone as its working directory; a repository that develops a pipe has a `pipe/`
    package or a `pipe.py` there. Neither runs: the marker lines are absent and the push happened."""
    site = pipeline_repo.site
    marker = "THE CLONE'S OWN {} RAN"
    pipeline_repo.use("build-push.yml").write({
        "pipe/__init__.py": "",
        "pipe/__main__.py": f"print({marker.format('pipe/__main__.py')!r})\n",
    })
    run = pipeline_repo.run("default")
    assert marker.format("pipe/__main__.py") not in run.output, run
    assert run.succeeded and run.steps == {"<unnamed>": 0}, run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:latest")

    # pipe.py alone (a package would take precedence over it).
    pipeline_repo.remove("pipe").write({"pipe.py": f"print({marker.format('pipe.py')!r})\n", "app.txt": "app 2\n"})
    second = pipeline_repo.run("default")
    assert marker.format("pipe.py") not in second.output, second
    assert second.succeeded and second.steps == {"<unnamed>": 0}, second
    moved = pushed(second, f"{site.registry}/acme/my-container-app:latest")
    assert moved != digest and site.tags("my-container-app") == {"latest": moved}
    assert_clean(second, site)


def test_a_later_command_reads_the_digest_back_from_the_registry(pipeline_repo: PipelineRepo):
    """skopeo in the step, with the step's credentials and the CA in the clone, finds the digest the pipe logged
    and wrote to its output file (in BITBUCKET_PIPE_SHARED_STORAGE_DIR, which the runner leaves unset)."""
    site = pipeline_repo.site
    commit = pipeline_repo.use("digest.yml").commit("digest")
    run = pipeline_repo.run("default")
    assert run.succeeded and list(run.steps.values()) == [0], run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:{commit[:7]}")
    assert f"Registry digest {digest}" in run.output, run
    assert site.tags("my-container-app") == {commit[:7]: digest}
    assert_clean(run, site)
