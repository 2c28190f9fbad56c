"""Run the pipe for integration tests: from the checkout (`python -m pipe`) or as its image (`docker run`), through
harness/pipe_process.py.

Both return a `PipeRun` with the exit code, stdout and stderr (ANSI colours removed), and the time it
took. The pipe prints its final line (success or failure) on stdout and its log on stderr.
"""
from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence

from harness import pipe_process
from harness.accounts import TOKENS
from harness.pipe_process import OUTPUT_FILE as OUTPUT_FILE_NAME
from harness.pipe_process import PIPE_COMMAND, PIPE_VARIABLES, PipeRun, read_output

__all__ = ["OUTPUT_FILE_NAME", "PIPE_COMMAND", "PIPE_IMAGE", "PIPE_VARIABLES", "PipeRun", "assert_no_secret",
           "assert_one_line_failure", "pipe_variables", "read_output", "run_pipe", "run_pipe_image", "secret_forms"]

# PIPE_IMAGE in the environment names another tag, so that builds from several checkouts do not collide.
PIPE_IMAGE = os.environ.get("PIPE_IMAGE", "bbc-packages-push-container-image:dev")


def pipe_variables(registry_host: str, image: str, user: str = "pipelines", **overrides: str | None) -> dict[str, str]:
    """The variables of a run against `registry_host`; an override of None removes a variable."""
    variables: dict[str, str | None] = {
        "IMAGE_NAME": image,
        "WORKSPACE": "acme",
        "REGISTRY": registry_host,
        "BITBUCKET_PACKAGES_USERNAME": user,
        "BITBUCKET_PACKAGES_TOKEN": TOKENS.get(user, ""),
        **overrides,
    }
    return {k: v for k, v in variables.items() if v is not None}


def run_pipe(variables: dict[str, str], timeout: float = 240) -> PipeRun:
    """`python -m pipe` from the checkout, with exactly `variables` as the pipe's variables."""
    return pipe_process.run_pipe(variables, timeout=timeout)


def run_pipe_image(variables: dict[str, str], docker_args: Sequence[str] = (), image: str = PIPE_IMAGE,
                   timeout: float = 240) -> PipeRun:
    """The pipe image as Bitbucket runs it: `docker run --rm --network host -e ...`."""
    return pipe_process.run_pipe(variables, image=image, docker_args=docker_args, timeout=timeout)


def secret_forms(user: str, token: str) -> list[str]:
    """The token as it could leak: plain, in HTTP Basic, in docker's X-Registry-Auth header."""
    header = json.dumps({"username": user, "password": token}).encode()
    return [token, base64.b64encode(f"{user}:{token}".encode()).decode(),
            base64.urlsafe_b64encode(header).decode(), base64.b64encode(header).decode()]


def assert_no_secret(run: PipeRun, user: str, token: str) -> None:
    for form in secret_forms(user, token):
        assert form not in run.stdout and form not in run.stderr, f"the token leaked ({form[:6]}...):\n{run}"


def assert_one_line_failure(run: PipeRun, *words: str) -> str:
    """The run failed with one line on stdout, no traceback, naming every one of `words`; returns the line."""
    assert run.returncode != 0, str(run)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"the failure must be a single line:\n{run}"
    line = run.last_line
    assert "Traceback" not in run.output, str(run)
    for word in words:
        assert word.lower() in line.lower(), f"{word!r} missing from the failure line:\n{run}"
    return line
