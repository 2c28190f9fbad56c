"""Pytest fixtures over the test infrastructure: a second daemon, distribution 2.8, the HTTP proxy, images.

Imported by test/conftest.py, so every test can ask for them by name. Module-scoped where starting is
the slow part (daemon, registries); each failure to start fails the test with the reason (never skips).
"""
from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from test.http_proxy import HttpProxy
from test.layered_images import BuiltImage, Layer, build_image_on_base, build_layered_image
from test.reference_registry import DistributionRegistry
from test.second_daemon import SecondDaemon

# The htpasswd user of the `reference_registry_auth` fixture.
REFERENCE_USER = "ref-user"
REFERENCE_PASSWORD = "ref-pass-4d1f"


def _start(what: str, start: Callable):
    try:
        return start()
    except Exception as exc:  # noqa: BLE001 - the reason goes into the failure
        pytest.fail(f"could not start {what}: {exc}", pytrace=False)


@pytest.fixture(scope="module")
def second_daemon(docker_daemon) -> Iterator[SecondDaemon]:
    """A fresh dockerd (own data root, socket, bridge), as a Pipelines step gets; stopped after the module."""
    daemon = _start("a second dockerd", SecondDaemon().start)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def reference_registry(tmp_path_factory) -> Iterator[DistributionRegistry]:
    """distribution 2.8 with no auth."""
    reg = _start("docker-registry", DistributionRegistry(tmp_path_factory.mktemp("reference")).start)
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def reference_registry_auth(tmp_path_factory) -> Iterator[DistributionRegistry]:
    """distribution 2.8 with htpasswd (bcrypt) basic auth for REFERENCE_USER / REFERENCE_PASSWORD."""
    reg = DistributionRegistry(tmp_path_factory.mktemp("reference-auth"), users={REFERENCE_USER: REFERENCE_PASSWORD})
    _start("docker-registry with htpasswd", reg.start)
    yield reg
    reg.stop()


@pytest.fixture
def http_proxy_factory() -> Iterator[Callable[[str], HttpProxy]]:
    """make(upstream_url) -> a running HttpProxy in front of it; all stopped after the test."""
    started: list[HttpProxy] = []

    def make(upstream: str) -> HttpProxy:
        proxy = HttpProxy(upstream).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def layered_image_factory(docker_daemon, tmp_path: Path):
    """make(layers, name=...) / make.on_base(base_ref, extra_layer_size): images removed after the test."""
    built: list[str] = []

    def make(layers: list[Layer], name: str = "my-container-app") -> BuiltImage:
        image = build_layered_image(f"{name}:t{secrets.token_hex(5)}", layers, scratch=tmp_path)
        built.append(image.ref)
        return image

    def on_base(base: str, extra_layer_size: int, name: str = "my-container-app") -> BuiltImage:
        image = build_image_on_base(f"{name}:t{secrets.token_hex(5)}", base, extra_layer_size, context=tmp_path)
        built.append(image.ref)
        return image

    make.on_base = on_base  # type: ignore[attr-defined]
    yield make
    if built:
        subprocess.run(["docker", "rmi", "-f", *built], capture_output=True, timeout=120)
