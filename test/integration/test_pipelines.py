"""The pipe as Bitbucket Pipelines runs it: bitbucket-pipeline-runner runs the README's bitbucket-pipelines.yml
(test/pipelines/, with the substitutions of docs/PIPELINES.md) in a second daemon; the pipe runs inside the
step's docker service, with the clone as its working directory and DOCKER_HOST=tcp://host.docker.internal:2375,
against the emulator over TLS at its address on the daemon's bridge.

Each test checks the steps' exit codes, the pipe's lines, and the registry's tags and digests. What of the
runner differs from Pipelines (docs/PIPELINES.md): it sets no BITBUCKET_TAG (the env file gives it), keeps the
docker service's data across steps of a run, and its pipe command line lacks Pipelines' `--add-host` and
BITBUCKET_PIPE_SHARED_STORAGE_DIR (harness/pipelines_runner.py adds both); the service is Docker 26, not 25.0.5.
"""
from __future__ import annotations

import re

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
    assert run.returncode == 0 and run.steps == {"<unnamed>": 0}, run
    digest = pushed(run, f"{site.registry}/acme/my-container-app:latest")
    assert run.pipe_lines("✔ Pushed ") == [f"✔ Pushed {site.registry}/acme/my-container-app with tags latest "
                                           f"(digest {digest}; " + run.pipe_lines("✔ Pushed ")[0].split("; ", 1)[1]]
    # It ran inside the step's docker service, reaching it as Pipelines' pipes do.
    assert "INFO: Docker daemon: Docker 26." in run.output, run
    assert site.tags("my-container-app") == {"latest": digest}
    assert_clean(run, site)
