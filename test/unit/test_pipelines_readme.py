"""The README's bitbucket-pipelines.yml examples are the ones `make pipelines` runs (test/pipelines/*.yml): each
fixture, with the substitutions of docs/PIPELINES.md#substitutions undone, is the README's block, as YAML.

Undone here, and nothing else: the `docker load` of the pipe's tar that each pipe step starts with (a real step
pulls the pipe), the four variables that point the pipe at the emulator (REGISTRY, REGISTRY_CA_FILE and the
step's credentials, which Pipelines provides), and `$REGISTRY` for `crg.apkg.io`. The promotion block is a
fragment (one step): the fixture runs it as its last step, after a build step of its own, without the README's
third pipe, which mirrors docker.io (no Docker Hub here).
"""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from harness.paths import REPO_ROOT
from test.helpers.pipelines import FIXTURES, PIPE_TAR

LOAD_PIPE = f"docker load -i {PIPE_TAR}"
EMULATOR_VARIABLES = ("REGISTRY", "REGISTRY_CA_FILE", "BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN")
# Fixture -> a text only its README block holds.
FROM_README = {
    "build-push.yml": "docker build -t my-container-app:latest .\n          - pipe:",
    "artifact.yml": 'IMAGE_ARCHIVE: "image.tar"',
    "tags.yml": "deploy-production:",
    "promote.yml": "name: Deploy to production",
}
# Fixtures of what the README shows in prose, not in a block.
OWN = {"yaml-list.yml", "digest.yml"}
DOCKER_HUB_SOURCE = "docker.io/"


def readme_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (REPO_ROOT / "README.md").read_text(), re.S)


def readme_block(marker: str):
    found = [block for block in readme_blocks() if marker in block]
    assert len(found) == 1, f"one README yaml block with {marker!r} expected, found {len(found)}"
    return yaml.safe_load(found[0])


def undo_substitutions(node):
    """The fixture as the README writes it."""
    if isinstance(node, dict):
        if "pipe" in node and isinstance(node.get("variables"), dict):
            node = {**node, "variables": {k: v for k, v in node["variables"].items() if k not in EMULATOR_VARIABLES}}
        return {k: undo_substitutions(v) for k, v in node.items()}
    if isinstance(node, list):
        return [undo_substitutions(item) for item in node if item != LOAD_PIPE]
    if isinstance(node, str):
        return node.replace("$REGISTRY/", "crg.apkg.io/")
    return node


def test_every_fixture_is_a_readme_block_or_named_as_the_tests_own():
    fixtures = {path.name for path in FIXTURES.glob("*.yml")}
    assert fixtures == set(FROM_README) | OWN


def test_every_readme_block_is_run():
    covered = [marker for marker in FROM_README.values() for block in readme_blocks() if marker in block]
    assert len(covered) == len(readme_blocks()), "a README yaml block no fixture of test/pipelines/ runs"


@pytest.mark.parametrize("fixture", sorted(set(FROM_README) - {"promote.yml"}))
def test_fixture_is_the_readme_block(fixture):
    ran = yaml.safe_load((FIXTURES / fixture).read_text())
    assert undo_substitutions(ran) == readme_block(FROM_README[fixture])


def test_promotion_fixture_ends_with_the_readme_step():
    ran = yaml.safe_load((FIXTURES / "promote.yml").read_text())["pipelines"]["default"]
    [readme_step] = copy.deepcopy(readme_block(FROM_README["promote.yml"]))
    script = readme_step["step"]["script"]
    mirrors = [item for item in script if DOCKER_HUB_SOURCE in str(item.get("variables", {}).get("SOURCE_IMAGE"))]
    assert len(mirrors) == 1, "the README's promotion step mirrors one image from Docker Hub"
    script.remove(mirrors[0])
    assert undo_substitutions(ran[-1]) == readme_step


def test_undoing_finds_a_change():
    """The comparison is not vacuous: a fixture with another tag is not the README's block."""
    ran = yaml.safe_load((FIXTURES / "build-push.yml").read_text())
    ran["pipelines"]["default"][0]["step"]["script"][-1]["variables"]["TAGS"] = "other"
    assert undo_substitutions(ran) != readme_block(FROM_README["build-push.yml"])
