"""The demo's Docker side: is a daemon there, build a tiny image with it, pull the pushed one back."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class DockerFailed(RuntimeError):
    pass


def daemon_answers() -> bool:
    """`docker info` succeeds: there is a CLI and the daemon it points at (DOCKER_HOST or the socket) answers."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def docker(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120) -> str:
    r = subprocess.run(["docker", *args], capture_output=True, text=True, input=stdin, env=env, timeout=timeout)
    if r.returncode != 0:
        raise DockerFailed(f"docker {args[0]} failed: {r.stderr.strip()}")
    return r.stdout


def build_tiny_image(tag: str, context: Path, files: dict[str, bytes]) -> None:
    """`docker build` of an image FROM scratch holding `files`: no base image to pull, no network."""
    context.mkdir(parents=True)
    for name, data in files.items():
        (context / name).write_bytes(data)
    (context / "Dockerfile").write_text(f"FROM scratch\nCOPY {' '.join(sorted(files))} /\n")
    docker("build", "--quiet", "-t", tag, str(context))


def pull_digest(reference: str, repository: str, user: str, token: str, config_dir: Path) -> str:
    """`docker login` (a private CLI config), `docker pull`, and the digest the daemon recorded for it."""
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    registry = reference.split("/", 1)[0]
    docker("login", registry, "-u", user, "--password-stdin", env=env, stdin=token)
    docker("pull", "--quiet", reference, env=env)
    digests = docker("image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", reference)
    for line in digests.split():
        if line.startswith(repository + "@"):
            return line.split("@", 1)[1]
    raise DockerFailed(f"docker pull recorded no digest for {repository}: {digests.strip()}")


def remove_images(*references: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *references], capture_output=True, timeout=120)
