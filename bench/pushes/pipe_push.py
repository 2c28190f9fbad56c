"""The pipe against plain `docker push`: the same 4-layer image, the same embedded registry.

Each measured push goes to a freshly created package with a fresh tag, and the other tool's
package is deleted first, so neither can skip uploads by mounting what the other pushed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.accounts import TOKENS
from harness.docker_images import build_image, remove_image
from harness.paths import REPO_ROOT

from ..registries.embedded import WORKSPACE, EmbeddedRegistry

PIPE_MAIN = REPO_ROOT / "pipe" / "__main__.py"
PIPE_PACKAGE = "bench-pipe"
DOCKER_PACKAGE = "bench-docker"
SOURCE_TAG = "src"
PUSH_TIMEOUT = 300.0
USER = "pipelines"


def pipe_missing() -> str | None:
    """Why the pipe cannot run from this checkout, or None."""
    if not PIPE_MAIN.exists():
        return f"{PIPE_MAIN.relative_to(REPO_ROOT)} does not exist yet"
    return None


class PushBench:
    def __init__(self, registry: EmbeddedRegistry, workdir: Path, layers: list[int]) -> None:
        self.registry = registry
        self.workdir = workdir
        self.layers = layers
        self.docker_config = workdir / "docker-config"
        self.local_image = f"{PIPE_PACKAGE}:{SOURCE_TAG}"
        self.created_refs: list[str] = []

    # -- setup ---------------------------------------------------------------------------
    def _docker(self, *args: str, input: str | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_CONFIG": str(self.docker_config)}
        r = subprocess.run(["docker", *args], input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:2])} failed: {r.stderr.strip()[-500:]}")
        return r

    def prepare(self) -> None:
        self.docker_config.mkdir(parents=True, exist_ok=True)
        build_image(self.local_image, self.workdir / "context", self.layers)
        self.created_refs.append(self.local_image)
        self._docker("login", "--username", USER, "--password-stdin", self.registry.process.host,
                     input=TOKENS[USER])

    def image_bytes(self) -> int:
        return int(self._docker("image", "inspect", "--format", "{{.Size}}", self.local_image).stdout.strip())

    def cleanup(self) -> None:
        """Remove only the images this benchmark created or tagged (the pipe may tag some too)."""
        prefix = f"{self.registry.process.host}/{WORKSPACE}/bench-"
        r = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                           capture_output=True, text=True, timeout=60)
        tagged = [ref for ref in r.stdout.split() if ref.startswith(prefix)]
        remove_image(*self.created_refs, *tagged)

    # -- packages ------------------------------------------------------------------------
    def fresh_package(self, name: str) -> None:
        self.drop_package(name)
        r = self.registry.api("POST", f"/workspaces/{WORKSPACE}/packages", json={"name": name, "repository": "web-app"})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"creating package {name}: HTTP {r.status_code} {r.text[:200]}")

    def drop_package(self, name: str) -> None:
        r = self.registry.api("DELETE", f"/workspaces/{WORKSPACE}/packages/{name}")
        if r.status_code not in (200, 202, 204, 404):
            raise RuntimeError(f"deleting package {name}: HTTP {r.status_code} {r.text[:200]}")

    def _check_pushed(self, name: str, tag: str) -> None:
        r = self.registry.api("GET", f"/workspaces/{WORKSPACE}/packages/{name}/tags/{tag}", user=USER)
        if r.status_code != 200:
            raise RuntimeError(f"{name}:{tag} is not in the registry after the push: HTTP {r.status_code}")

    # -- measurements --------------------------------------------------------------------
    def docker_push(self, rep: int) -> float:
        tag = f"r{rep}"
        self.drop_package(PIPE_PACKAGE)
        self.fresh_package(DOCKER_PACKAGE)
        ref = f"{self.registry.process.host}/{WORKSPACE}/{DOCKER_PACKAGE}:{tag}"
        self._docker("tag", self.local_image, ref)
        self.created_refs.append(ref)
        t0 = time.monotonic()
        self._docker("push", ref, timeout=PUSH_TIMEOUT)
        elapsed = time.monotonic() - t0
        self._check_pushed(DOCKER_PACKAGE, tag)
        self.drop_package(DOCKER_PACKAGE)
        return elapsed

    def _pipe(self, tag: str) -> float:
        env = {
            **os.environ,
            "IMAGE_NAME": self.local_image,
            "TAGS": tag,
            "WORKSPACE": WORKSPACE,
            "BITBUCKET_PACKAGES_USERNAME": USER,
            "BITBUCKET_PACKAGES_TOKEN": TOKENS[USER],
            "REGISTRY": self.registry.process.host,
            "DOCKER_CONFIG": str(self.docker_config),
        }
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "pipe"], env=env, cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=PUSH_TIMEOUT)
        elapsed = time.monotonic() - t0
        if r.returncode != 0:
            raise RuntimeError(f"pipe exited with {r.returncode}: {(r.stdout + r.stderr).strip()[-800:]}")
        return elapsed

    def pipe_push(self, rep: int) -> tuple[float, float]:
        """(first push to a fresh package, no-op re-push of the same image and tag)."""
        tag = f"r{rep}"
        self.drop_package(DOCKER_PACKAGE)
        self.fresh_package(PIPE_PACKAGE)
        first = self._pipe(tag)
        self._check_pushed(PIPE_PACKAGE, tag)
        again = self._pipe(tag)
        self._check_pushed(PIPE_PACKAGE, tag)
        self.drop_package(PIPE_PACKAGE)
        return first, again
