"""Run the pipe for integration tests: from the checkout (`python -m pipe`) or as its image (`docker run`).

Both return a `PipeRun` with the exit code, stdout and stderr (ANSI colours removed), and the time it
took. The pipe prints its final line (success or failure) on stdout and its log on stderr.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.accounts import TOKENS
from harness.paths import REPO_ROOT

PIPE_COMMAND = [sys.executable, "-m", "pipe"]
# PIPE_IMAGE in the environment names another tag, so that builds from several checkouts do not collide.
PIPE_IMAGE = os.environ.get("PIPE_IMAGE", "bbc-packages-push-container-image:dev")
OUTPUT_FILE_NAME = "bbc-packages-push-container-image.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Variables the pipe reads; never inherited from the environment the tests run in.
PIPE_VARIABLES = ("IMAGE_NAME", "TAGS", "WORKSPACE", "BITBUCKET_WORKSPACE", "BITBUCKET_PACKAGES_USERNAME",
                  "BITBUCKET_PACKAGES_TOKEN", "REGISTRY", "DEBUG", "BITBUCKET_PIPE_SHARED_STORAGE_DIR", "PUSH_ENGINE",
                  "CACHE_FROM", "COMPRESSION_LEVEL", "UPLOAD_PARALLELISM", "CHUNK_SIZE_MB", "REGISTRY_CA_FILE",
                  "IMAGE_ARCHIVE", "PLATFORMS", "BITBUCKET_CLONE_DIR", "SOURCE_IMAGE", "SOURCE_USERNAME",
                  "SOURCE_PASSWORD", "SOURCE_CA_FILE",
                  "PROTECT_TAGS", "DRY_RUN", "BITBUCKET_BRANCH", "BITBUCKET_TAG", "BITBUCKET_COMMIT",
                  "BITBUCKET_BUILD_NUMBER")


@dataclass
class PipeRun:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def last_line(self) -> str:
        """The pipe's final word: the last non-empty line of stdout."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"the pipe printed nothing on stdout; stderr:\n{self.stderr}"
        return lines[-1]

    def __str__(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout}"
                f"\n--- stderr\n{self.stderr}")


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
    env = {k: v for k, v in os.environ.items() if k not in PIPE_VARIABLES}
    env.update(variables)
    started = time.monotonic()
    r = subprocess.run(PIPE_COMMAND, env=env, cwd=REPO_ROOT, capture_output=True,
                       text=True, timeout=timeout)
    return PipeRun(r.returncode, ANSI.sub("", r.stdout), ANSI.sub("", r.stderr), time.monotonic() - started)


def run_pipe_image(variables: dict[str, str], docker_args: list[str] = (), image: str = PIPE_IMAGE,
                   timeout: float = 240) -> PipeRun:
    """The pipe image as Bitbucket runs it: `docker run --rm --network host -e ...`."""
    command = ["docker", "run", "--rm", "--network", "host", *docker_args]
    for name, value in variables.items():
        command += ["-e", f"{name}={value}"]
    command.append(image)
    started = time.monotonic()
    r = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return PipeRun(r.returncode, ANSI.sub("", r.stdout), ANSI.sub("", r.stderr), time.monotonic() - started)


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


def read_output(directory: Path) -> dict:
    return json.loads((directory / OUTPUT_FILE_NAME).read_text())
