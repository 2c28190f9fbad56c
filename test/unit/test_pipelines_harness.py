"""The pieces of `make pipelines` that need no daemon: the runner's pipe command line with Pipelines' additions,
and the emulator image's requirements read from what registry/ imports."""
from __future__ import annotations

import pytest
from pipeline_runner.models import Pipe

from harness import pipelines_runner
from harness.pipelines_images import emulator_requirements


def test_the_pipe_command_gets_pipelines_additions_after_its_label():
    command = Pipe(pipe="atlassian/bbc-packages-push-container-image:0.1.0",
                   variables={"IMAGE_NAME": "app", "TAGS": ["1.0", "latest"]}).as_cmd()
    added = " ".join(pipelines_runner.ADDED)
    assert f"--label=org.bitbucket.pipelines.system=true {added} --env=" in command
    assert command.count("--add-host=") == 1
    # The runner's own encoding is kept: a YAML list as NAME_i and NAME_COUNT, atlassian/ as bitbucketpipelines/.
    assert '-e TAGS_0="1.0" -e TAGS_1="latest" -e TAGS_COUNT="2"' in command
    assert command.endswith(" bitbucketpipelines/bbc-packages-push-container-image:0.1.0")


def test_a_command_without_the_label_is_refused(monkeypatch):
    monkeypatch.setattr(pipelines_runner, "_runner_as_cmd", lambda pipe: "docker run image")
    with pytest.raises(RuntimeError, match="has no `--label=org.bitbucket.pipelines.system=true`"):
        pipelines_runner.as_cmd(Pipe(pipe="x/y:1"))


def test_the_emulator_image_gets_what_the_registry_imports_pinned():
    pins = dict(line.split("==") for line in emulator_requirements())
    assert {"aiohttp", "PyJWT", "aiohttp-jinja2", "google-re2", "PyYAML"} <= set(pins)
    assert not {"pytest", "selenium", "docker", "requests"} & set(pins)  # the tests' and the pipe's, not its own
    assert all(pins.values())
