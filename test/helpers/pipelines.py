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
from harness.second_daemon import SecondDaemon

FIXTURES = REPO_ROOT / "test" / "pipelines"  # the YAML beside the tests that run it
WORKSPACE = "acme"  # the repository directory's name, so the workspace's slug
PIPE_TAR = "bbc-packages-push-container-image.tar"
CA_FILE = "ci/registry-ca.crt"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP_RESULT = re.compile(r"Step '(?P<name>.+?)' executed in [0-9.]+s with exit code: (?P<code>\S+)")
# The runner's CLI exits 0 when a step fails: its last line says how the pipeline ended.
PIPELINE_RESULT = re.compile(r"Pipeline '.+?': (?P<result>Successful|Failed)$", re.MULTILINE)
# Progress lines of git and docker load, left out of failure messages (the whole log is in the run's log file).
NOISE = re.compile(r"(Counting objects|Compressing objects|Receiving objects|Resolving deltas|Loading layer|"
                   r"Enumerating objects|=> )")
RUN_TIMEOUT = 600  # seconds for one pipeline: a step is about 10-20 s here
DOCKERFILE = "FROM scratch\nCOPY app.txt /app.txt\n"
# The build context is the clone: the pipe's tar and .git stay out of it, as a repository's .dockerignore would.
DOCKERIGNORE = f"{PIPE_TAR}\n.git\n"


@dataclass(repr=False)
class PipelineRun:
    returncode: int
    output: str  # the runner's log and every step's output, ANSI removed
    log: Path  # the same, on disk

    @property
    def succeeded(self) -> bool:
        results = PIPELINE_RESULT.findall(self.output)
        return self.returncode == 0 and results == ["Successful"]

    @property
    def failed(self) -> bool:
        """It ran to its end and a step failed (not: the runner broke)."""
        return self.returncode == 0 and PIPELINE_RESULT.findall(self.output) == ["Failed"]

    @property
    def steps(self) -> dict[str, int | None]:
        """Each step's exit code, as the runner reports it (None: it did not run)."""
        return {m["name"]: None if m["code"] == "None" else int(m["code"]) for m in STEP_RESULT.finditer(self.output)}

    def pipe_lines(self, prefix: str, step: str | None = None) -> list[str]:
        """The lines of the pipe's log (of one step) that start with `prefix` (`✔`, `✖`, `INFO: Pushed`, ...)."""
        text = self.output if step is None else self.step_output(step)
        return [line.strip() for line in text.splitlines() if line.strip().startswith(prefix)]

    def step_output(self, step: str) -> str:
        """What the runner logged from the start of step `step` to its result."""
        start = self.output.index(f"Running step: {step}\n")
        return self.output[start:self.output.index(f"Step '{step}' executed in ", start)]

    def __repr__(self) -> str:  # what an assertion message shows
        lines = [line for line in self.output.splitlines() if line.strip() and not NOISE.search(line)]
        return f"runner exit {self.returncode}, whole log in {self.log}:\n" + "\n".join(lines)[-15000:]


@dataclass
class PipelinesSite:
    """What the session set up: the second daemon, the emulator, the pipe's tar, the CA."""

    daemon: SecondDaemon
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

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The docker CLI on the daemon the runner uses (not the steps' docker services inside it)."""
        return self.daemon.docker(*args, timeout=120, check=check)

    def clear(self, *packages: str) -> None:
        """Delete every tag of `packages`, so a test starts from empty packages (they stay, linked)."""
        for package in packages:
            for tag in self.tags(package):
                r = requests.delete(f"https://{self.registry}/api/workspaces/{WORKSPACE}/packages/{package}/tags/{tag}",
                                    auth=self.admin, verify=str(self.ca), timeout=30)
                r.raise_for_status()


class PipelineRepo:
    def __init__(self, parent: Path, site: PipelinesSite) -> None:
        self.site = site
        self.path = parent / WORKSPACE
        self.path.mkdir(parents=True)
        self.data = parent / "runner-data"  # the runner's logs, artifacts, caches (XDG directories)
        self.data.mkdir()
        self.runs = 0
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

    def remove(self, *names: str) -> "PipelineRepo":
        self._git("rm", "-rq", *names)
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
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**self.site.env, **env}.items()))
        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_RUNNER_", "DOCKER_"))}
        child_env.update(DOCKER_HOST=self.site.daemon.docker_host, XDG_DATA_HOME=str(self.data / "share"),
                         XDG_CACHE_HOME=str(self.data / "cache"), NO_COLOR="1", PYTHONPATH=str(REPO_ROOT))
        self.runs += 1
        log = self.data / f"run-{self.runs}-{pipeline.replace('*', '_')}.log"
        try:
            # cwd: the runner reads a `.env` from its working directory; this one has none.
            r = subprocess.run([sys.executable, "-m", "harness.pipelines_runner", "run", pipeline, "--no-color",
                                "--repository-path", str(self.path), "--env-file", str(env_file)],
                               cwd=self.data, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            # The runner was killed mid-step: its containers stay, and would stop the next run (same names).
            self._remove_leftovers()
            output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
            log.write_text(ANSI.sub("", output))
            raise AssertionError(f"the pipeline ran over {RUN_TIMEOUT} s; its log so far: {log}") from None
        finally:
            self._drop_docker_cache()
        log.write_text(ANSI.sub("", r.stdout))  # the steps' output (stdout) between the runner's lines (stderr)
        return PipelineRun(r.returncode, log.read_text(), log)

    def _remove_leftovers(self) -> None:
        """The runner's containers (pause, step, services, clone, artifacts) and volumes (the step's data, with
        the clone in it): their names start with the repository's; the emulator's does not."""
        for kind, listing in (("container", ["ps", "-a", "--format", "{{.Names}}"]),
                              ("volume", ["volume", "ls", "--format", "{{.Name}}"])):
            mine = [name for name in self.site.docker(*listing).stdout.split() if name.startswith(WORKSPACE)]
            if mine:  # best effort: what is left is named in the next run's failure
                self.site.docker(kind, "rm", "-f", *mine, check=False)

    def _drop_docker_cache(self) -> None:
        """The runner keeps each project's docker service data in a volume across runs (Pipelines starts every
        step with an empty daemon unless `caches: [docker]`): drop it, so no test sees another's images."""
        volumes = self.site.docker("volume", "ls", "-q", "--filter", "label=org.acidrain.pipeline_runner.project")
        if volumes.stdout.split():
            self.site.docker("volume", "rm", "-f", *volumes.stdout.split(), check=False)

    def _git(self, *args: str) -> str:
        r = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {r.stderr}")
        return r.stdout
