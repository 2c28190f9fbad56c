"""The embedded registry as the bench starts it: a real process (harness.registry_process) with the bench's config."""
from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess

from ..blobs.client import Target

WORKSPACE = "acme"
BLOB_PACKAGE = "bench-blobs"
SMALL_PACKAGE = "bench-small"


def bench_config() -> dict:
    """Production limits (32 GiB layers, 7 minutes), a long grace so no collection runs mid-benchmark."""
    return {
        "workspaces": {
            WORKSPACE: {
                "repositories": {"web-app": {"project": "WEB"}},
                "packages": {BLOB_PACKAGE: "web-app", SMALL_PACKAGE: "web-app"},
                "members": {
                    "pipelines": {"token": TOKENS["pipelines"], "roles": {"web-app": "write"}},
                    "boss": {"token": TOKENS["boss"], "roles": {"web-app": "admin"}},
                },
            },
        },
        "limits": {"max_layer_bytes": 32 * 1024**3, "upload_timeout_seconds": 420},
        "gc": {"grace_seconds": 900},
        "auth": {"token_ttl_seconds": 3600},
    }


def version() -> str:
    return f"aiohttp {aiohttp.__version__}"


class EmbeddedRegistry:
    label = "embedded"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = RegistryProcess(workdir / "root", bench_config())

    @property
    def pid(self) -> int:
        assert self.process.proc is not None
        return self.process.proc.pid

    @property
    def port(self) -> int:
        return self.process.port

    def start(self) -> "EmbeddedRegistry":
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.process.log()[-2000:]

    def target(self, package: str, user: str = "pipelines") -> Target:
        repository = f"{WORKSPACE}/{package}"
        token = self.process.token(user, f"repository:{repository}:pull,push")
        return Target(self.label, "127.0.0.1", self.port, repository, f"Bearer {token}")

    def api(self, method: str, path: str, **kwargs):
        return self.process.api(method, path, **kwargs)

    def discard(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
