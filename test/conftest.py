"""The integration marker and the fixtures. Integration tests need a real Docker daemon: without one they fail loudly.

Every fixture module under test/fixtures/ is a plugin listed here, so a test asks for any of them by name.
"""
from __future__ import annotations

import pytest

pytest_plugins = [
    "test.fixtures.docker",
    "test.fixtures.images",
    "test.fixtures.registries",
    "test.fixtures.proxies",
    "test.fixtures.archives",
    "test.fixtures.engines",
    "test.fixtures.pipe_image",
    "test.fixtures.pipelines",
    "test.fixtures.browser",
]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath) or "/pipelines/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
