"""A repository with a bitbucket-pipelines.yml from test/pipelines/, run by bitbucket-pipeline-runner in the
pipelines' second daemon (test/fixtures/pipelines.py), and what a run says: each step's exit code, the log.

The repository's directory is `acme`: the runner makes BITBUCKET_WORKSPACE and BITBUCKET_REPO_SLUG of its name.
It holds the pipe image as a `docker save` tar, which each step loads into its docker service (a real step
pulls the pipe from Docker Hub), the emulator's CA as `ci/registry-ca.crt` (REGISTRY_CA_FILE), a Dockerfile
and `app.txt`, whose text makes the image's digest.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.paths import REPO_ROOT

FIXTURES = REPO_ROOT / "test" / "pipelines"
WORKSPACE = "acme"  # the repository directory's name, so the workspace's slug
PIPE_TAR = "bbc-packages-push-container-image.tar"
CA_FILE = "ci/registry-ca.crt"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP_RESULT = re.compile(r"Step '(?P<name>.+?)' executed in [0-9.]+s with exit code: (?P<code>\S+)")
RUN_TIMEOUT = 600  # seconds for one pipeline: a step is about 10-20 s here
DOCKERFILE = "FROM scratch\nCOPY app.txt /app.txt\n"
# The build context is the clone: the pipe's tar and .git stay out of it, as a repository's .dockerignore would.
DOCKERIGNORE = f"{PIPE_TAR}\n.git\n"


@dataclass
class PipelineRun:
    returncode: int
    output: str  # the runner's log and every step's output, ANSI removed

    @property
    def steps(self) -> dict[str, int | None]:
        """Each step's exit code, as the runner reports it (None: it did not run)."""
        return {m["name"]: None if m["code"] == "None" else int(m["code"]) for m in STEP_RESULT.finditer(self.output)}

    def pipe_lines(self, prefix: str) -> list[str]:
        """The lines of the pipe's log that start with `prefix` (`✔`, `✖`, `INFO: Pushed`, ...)."""
        return [line.strip() for line in self.output.splitlines() if line.strip().startswith(prefix)]

    def __str__(self) -> str:
        return f"runner exit {self.returncode}\n{self.output[-20000:]}"


@dataclass
class PipelinesSite:
    """What the session set up: the second daemon's socket and CLI, the emulator, the pipe's tar, the CA."""

    docker_host: str
    docker_cli: str
    registry: str  # host:port of the emulator on the daemon's bridge
    ca: Path
    pipe_tar: Path
    env: dict[str, str]  # the run's env file: REGISTRY, pipeline credentials, BITBUCKET_DOCKER_HOST_INTERNAL
    admin: tuple[str, str]  # a workspace admin of the emulator, to read its state through the management API

    def tags(self, package: str) -> dict[str, str]:
        """The registry's state: each tag of `package` and its digest (management API; {} for no package)."""
        r = requests.get(f"https://{self.registry}/api/workspaces/{WORKSPACE}/packages/{package}", auth=self.admin,
                         verify=str(self.ca), timeout=30)
        if r.status_code == 404:
            return {}
        r.raise_for_status()
        return {t["name"]: t["digest"] for t in r.json()["tags"]}


class PipelineRepo:
    def __init__(self, parent: Path, site: PipelinesSite) -> None:
        self.site = site
        self.path = parent / WORKSPACE
        self.path.mkdir(parents=True)
        self.data = parent / "runner-data"  # the runner's logs, artifacts, caches (XDG directories)
        self._git("init", "-q", "-b", "main")
        # The pipe's tar is ~200 MB: stored, not compressed, so commit and clone take seconds.
        self._git("config", "core.compression", "0")
        os.link(site.pipe_tar, self.path / PIPE_TAR)
        (self.path / "ci").mkdir()
        shutil.copy(site.ca, self.path / CA_FILE)
        self.write({"Dockerfile": DOCKERFILE, ".dockerignore": DOCKERIGNORE, "app.txt": "app 1\n"})

    def use(self, fixture: str) -> "PipelineRepo":
        """Copy test/pipelines/FIXTURE as bitbucket-pipelines.yml."""
        shutil.copy(FIXTURES / fixture, self.path / "bitbucket-pipelines.yml")
        return self

    def write(self, files: dict[str, str]) -> "PipelineRepo":
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        return self

    def commit(self, message: str = "change") -> str:
        self._git("add", "-A")
        self._git("-c", "user.name=Tester", "-c", "user.email=tester@example.com", "commit", "-q", "-m", message)
        return self._git("rev-parse", "HEAD").strip()

    def run(self, pipeline: str, **env: str) -> PipelineRun:
        """Commit what changed and run `pipeline` (`default`, `branches.**`, `tags.v*`, `custom.NAME`)."""
        if self._git("status", "--porcelain").strip():
            self.commit()
        env_file = self.data / "pipeline.env"
        env_file.parent.mkdir(parents=True, exist_ok=True)
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**self.site.env, **env}.items()))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_RUNNER_", "DOCKER_"))}
        child_env.update(DOCKER_HOST=self.site.docker_host, XDG_DATA_HOME=str(self.data / "share"),
                         XDG_CACHE_HOME=str(self.data / "cache"), NO_COLOR="1", PYTHONPATH=str(REPO_ROOT))
        try:
            # cwd: the runner reads a `.env` from its working directory; this one has none.
            r = subprocess.run([sys.executable, "-m", "harness.pipelines_runner", "run", pipeline, "--no-color",
                                "--repository-path", str(self.path), "--env-file", str(env_file)],
                               cwd=self.data, env=child_env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        finally:
            self._drop_docker_cache()
        return PipelineRun(r.returncode, ANSI.sub("", r.stdout + r.stderr))

    def _drop_docker_cache(self) -> None:
        """The runner keeps each project's docker service data in a volume across runs (Pipelines starts every
        step with an empty daemon unless `caches: [docker]`): drop it, so no test sees another's images."""
        cli = [self.site.docker_cli, "-H", self.site.docker_host]
        volumes = subprocess.run([*cli, "volume", "ls", "-q", "--filter", "label=org.acidrain.pipeline_runner.project"],
                                 capture_output=True, text=True, timeout=60).stdout.split()
        if volumes:
            subprocess.run([*cli, "volume", "rm", "-f", *volumes], capture_output=True, timeout=120)

    def _git(self, *args: str) -> str:
        r = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {r.stderr}")
        return r.stdout
