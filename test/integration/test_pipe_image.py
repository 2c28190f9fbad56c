"""The pipe image, run the way Bitbucket runs a pipe: `docker run --network host -e ...`.

The image is built once per session by `scripts/build-pipe-image.sh` (what `make image` runs). The
daemon is reached through the mounted socket, or through `DOCKER_HOST=tcp://127.0.0.1:PORT` as
Pipelines provides it; the running dockerd listens on its unix socket only, so a small forwarder
on loopback stands in for that TCP endpoint.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.accounts import TOKENS
from harness.paths import REPO_ROOT
from test.helpers.oci_client import Client, docker, image_id
from test.helpers.pipe_runner import PIPE_IMAGE, assert_no_secret, pipe_variables, read_output, run_pipe_image
from test.helpers.tcp_proxy import TcpProxy

APP = "acme/my-container-app"


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"


@pytest.fixture(scope="session")
def pipe_image(docker_daemon) -> str:
    """Build the pipe image as `make image` does; fail loudly (never skip) when it cannot be built."""
    previous = docker("image", "inspect", "--format", "{{.Id}}", PIPE_IMAGE, timeout=60).stdout.strip()
    try:
        r = subprocess.run(["bash", "scripts/build-pipe-image.sh"], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=900, env={**os.environ, "PYTHON": sys.executable, "IMAGE": PIPE_IMAGE})
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"building the pipe image took over {exc.timeout} s:\n{exc.stdout}\n{exc.stderr}", pytrace=False)
    if r.returncode != 0:
        pytest.fail(f"scripts/build-pipe-image.sh failed with {r.returncode}:\n{r.stdout}\n{r.stderr}", pytrace=False)
    built = docker("image", "inspect", "--format", "{{.Id}}", PIPE_IMAGE, timeout=60)
    assert built.returncode == 0, f"the build reported no image: {built.stderr}"
    if previous and previous != built.stdout.strip():
        # The build moved the tag: drop the superseded build if nothing else names or uses it (no -f).
        tags = docker("image", "inspect", "--format", "{{len .RepoTags}}", previous, timeout=60).stdout.strip()
        if tags == "0":
            docker("rmi", previous, timeout=120)
    return PIPE_IMAGE


@pytest.fixture
def docker_tcp_endpoint(docker_daemon):
    """`tcp://127.0.0.1:PORT` forwarding to the daemon's unix socket; stopped at teardown."""
    socket_path = docker_socket()
    assert Path(socket_path).exists(), f"no docker socket at {socket_path}"
    with TcpProxy(target_unix=socket_path) as proxy:
        yield f"tcp://{proxy.host}", proxy


@pytest.mark.parametrize("how", ["socket", "tcp"])
def test_pipe_image_pushes_three_tags_writes_the_output_then_uploads_nothing(how, request, pipe_image, registry,
                                                                             image_factory, tmp_path):
    local = image_factory(layers=[250_000, 60_000])
    source_id = image_id(local)
    shared = tmp_path / "shared"
    shared.mkdir()
    tags = ["latest", "1.2.3", "abc1234"]
    variables = pipe_variables(registry.host, local, TAGS=" ".join(tags),
                               BITBUCKET_PIPE_SHARED_STORAGE_DIR="/shared-storage")
    docker_args = ["-v", f"{shared}:/shared-storage"]
    proxy = None
    if how == "socket":
        docker_args += ["-v", f"{docker_socket()}:/var/run/docker.sock"]
    else:
        endpoint, proxy = request.getfixturevalue("docker_tcp_endpoint")
        variables["DOCKER_HOST"] = endpoint

    run = run_pipe_image(variables, docker_args, image=pipe_image)
    assert run.returncode == 0, str(run)
    if proxy is not None:
        assert proxy.stats.connections > 0 and proxy.stats.bytes_from_client > 0  # the daemon was reached over TCP
    repository = f"{registry.host}/{APP}"
    output = read_output(shared)
    digest = output["digest"]
    assert output["tags"] == tags and output["references"] == [f"{repository}:{t}" for t in tags]
    assert output["reference_by_digest"] == f"{repository}@{digest}" and output["pushed_bytes"] >= 310_000
    assert f"digest {digest}" in run.last_line
    client = Client(registry, APP, user="reader", actions="pull")
    for tag in tags:
        assert client.get_manifest(tag).headers["Docker-Content-Digest"] == digest, tag
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])
    listed = docker("image", "ls", "--format", "{{.Repository}}", timeout=60).stdout.split()
    assert repository not in listed  # the temporary tags are gone
    assert image_id(local) == source_id

    again = run_pipe_image(variables, docker_args, image=pipe_image)
    assert again.returncode == 0, str(again)
    assert "nothing new uploaded" in again.last_line, str(again)
    second = read_output(shared)
    assert second["pushed_bytes"] == 0 and second["digest"] == digest


def test_pipe_image_without_a_daemon_says_to_add_the_docker_service(pipe_image, registry, local_image):
    run = run_pipe_image(pipe_variables(registry.host, local_image, DEBUG="true"), [], image=pipe_image)
    assert run.returncode == 1, str(run)
    assert "Cannot connect to the Docker daemon" in run.last_line and "services: [docker]" in run.last_line
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])


def test_pipe_image_pushes_an_archive_from_the_clone_directory_with_no_daemon(pipe_image, registry, local_image,
                                                                              tmp_path):
    clone = tmp_path / "clone"
    (clone / "build").mkdir(parents=True)
    saved = docker("save", "-o", str(clone / "build" / "image.tar"), local_image)
    assert saved.returncode == 0, saved.stderr
    variables = pipe_variables(registry.host, local_image.split(":")[0], IMAGE_ARCHIVE="build/image.tar",
                               BITBUCKET_CLONE_DIR="/opt/atlassian/pipelines/agent/build", TAGS="from-archive")
    # As Pipelines runs a pipe: the clone mounted at BITBUCKET_CLONE_DIR, no docker socket at all.
    run = run_pipe_image(variables, ["-v", f"{clone}:/opt/atlassian/pipelines/agent/build:ro",
                                     "-w", "/opt/atlassian/pipelines/agent/build"], image=pipe_image)
    assert run.returncode == 0, str(run)
    manifest = Client(registry, APP, user="reader", actions="pull").get_manifest("from-archive")
    assert manifest.status_code == 200 and manifest.json()["config"]["digest"] == image_id(local_image)
