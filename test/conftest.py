"""Shared fixtures. Integration tests need a real Docker daemon: without one they fail loudly."""
from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from test.archive_fixtures import archive_tools, runnable_image_factory  # noqa: F401 - fixtures, found by name
from test.docker_images import build_image, remove_image
from test.infra_fixtures import (  # noqa: F401 - fixtures, found by name
    http_proxy_factory,
    layered_image_factory,
    reference_registry,
    reference_registry_auth,
    second_daemon,
)
from test.registry_process import TOKENS, RegistryProcess, default_config


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def docker_daemon() -> None:
    """Fail (never skip) when no daemon answers: integration tests must run."""
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not installed: run `bash .ci/run` or install docker.io", pytrace=False)
    r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.fail(f"no Docker daemon is reachable ({r.stderr.strip()}): start dockerd first "
                    "(`bash .ci/run` does it)", pytrace=False)


@pytest.fixture
def registry_factory(tmp_path: Path):
    started: list[RegistryProcess] = []

    def make(config: dict | None = None, name: str = "registry") -> RegistryProcess:
        reg = RegistryProcess(tmp_path / name, config or default_config()).start()
        started.append(reg)
        return reg

    yield make
    for reg in started:
        reg.stop()


@pytest.fixture
def registry(registry_factory) -> RegistryProcess:
    return registry_factory()


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch) -> Path:
    """A private docker CLI config, so logins in tests never touch the user's."""
    path = tmp_path / "docker-config"
    path.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(path))
    return path


@pytest.fixture
def image_factory(docker_daemon, tmp_path: Path):
    built: list[str] = []

    def make(layers: list[int] | None = None, name: str = "my-container-app", tag: str | None = None) -> str:
        ref = f"{name}:{tag or 't' + uuid.uuid4().hex[:10]}"
        build_image(ref, tmp_path / f"ctx-{len(built)}", layers)
        built.append(ref)
        return ref

    yield make
    remove_image(*built)


@pytest.fixture
def local_image(image_factory) -> str:
    return image_factory()


__all__ = ["TOKENS"]
