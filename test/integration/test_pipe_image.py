"""The pipe image, run the way Bitbucket runs a pipe: `docker run --network host -e ...`.

The image is built once per session by `scripts/build-pipe-image.sh` (what `make image` runs); its
contents are checked too (no pip, no setuptools, at most 16 MB over its base). As Pipelines runs a
pipe: the clone directory mounted at its own path as the working directory, the shared storage
directory under it, and the step's docker service at `DOCKER_HOST=tcp://127.0.0.1:PORT`, a second
dockerd listening on loopback; with `IMAGE_ARCHIVE`, nothing answers there. The daemon can also be
reached through the mounted socket.
"""
from __future__ import annotations

import json
import os

import pytest

from harness.accounts import TOKENS
from harness.ports import free_port
from harness.second_daemon import SecondDaemon
from test.helpers.oci_client import Client, docker, image_id
from test.helpers.pipe_runner import assert_no_secret, pipe_variables, read_output, run_pipe_image
from test.helpers.starting import start_or_fail

APP = "acme/my-container-app"
MAX_BYTES_OVER_BASE = 16 * 10**6  # the pipe, its pinned dependencies and their bytecode
# Where Pipelines mounts the clone and puts the pipes' shared storage (BITBUCKET_PIPE_SHARED_STORAGE_DIR).
SHARED_UNDER_CLONE = ".bitbucket/pipelines/generated/pipeline/pipes"


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"


@pytest.fixture(scope="module")
def docker_service(docker_daemon):
    """The step's docker service: a fresh dockerd that also listens on tcp://127.0.0.1:PORT."""
    daemon = start_or_fail("a second dockerd on loopback TCP", SecondDaemon(tcp=True).start)
    yield daemon
    daemon.stop()


def image_json(ref: str) -> dict:
    r = docker("image", "inspect", ref, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def test_pipe_image_carries_no_pip_or_setuptools_and_little_over_its_base(pipe_image):
    found = docker("run", "--rm", "--entrypoint", "python3", pipe_image, "-c",
                   "import importlib.util as u, shutil; "
                   "print([m for m in ('pip', 'setuptools', 'pkg_resources', 'wheel') if u.find_spec(m)], "
                   "[c for c in ('pip', 'pip3') if shutil.which(c)])", timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["[]", "[]"], f"the image carries: {found.stdout}"
    runs = docker("run", "--rm", "--entrypoint", "python3", pipe_image, "-c",
                  "import pipe.pipe, bitbucket_pipes_toolkit, docker, isal", timeout=120)
    assert runs.returncode == 0, runs.stderr  # the pipe and its dependencies are there
    image = image_json(pipe_image)
    base = image_json(os.environ.get("BASE", "bbc-pipe-base:bookworm"))  # the base build-pipe-image.sh uses
    layers, base_layers = image["RootFS"]["Layers"], base["RootFS"]["Layers"]
    assert layers[:len(base_layers)] == base_layers, "the image is not built on the base"
    over = image["Size"] - base["Size"]
    assert 0 < over <= MAX_BYTES_OVER_BASE, f"{over} bytes over the base (at most {MAX_BYTES_OVER_BASE})"


def test_pipe_image_pushes_three_tags_writes_the_output_then_uploads_nothing(pipe_image, registry, image_factory,
                                                                             tmp_path):
    local = image_factory(layers=[250_000, 60_000])
    source_id = image_id(local)
    shared = tmp_path / "shared"
    shared.mkdir()
    tags = ["latest", "1.2.3", "abc1234"]
    variables = pipe_variables(registry.host, local, TAGS=" ".join(tags),
                               BITBUCKET_PIPE_SHARED_STORAGE_DIR="/shared-storage")
    docker_args = ["-v", f"{shared}:/shared-storage", "-v", f"{docker_socket()}:/var/run/docker.sock"]

    run = run_pipe_image(variables, docker_args, image=pipe_image)
    assert run.returncode == 0, str(run)
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


@pytest.mark.parametrize("source", ["docker-service", "archive"])
def test_pipe_image_as_pipelines_runs_it(source, request, pipe_image, registry, local_image, tmp_path):
    """`docker run --network host -v CLONE:CLONE -w CLONE -e ...` with DOCKER_HOST=tcp://127.0.0.1:PORT."""
    clone = tmp_path / "build"
    shared = clone / SHARED_UNDER_CLONE
    shared.mkdir(parents=True)
    variables = pipe_variables(registry.host, local_image, TAGS="from-step", BITBUCKET_CLONE_DIR=str(clone),
                               BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(shared))
    if source == "docker-service":
        service = request.getfixturevalue("docker_service")
        service.load(local_image)  # the image exists only in the step's daemon, reached only over TCP
        variables["DOCKER_HOST"] = service.tcp_host
    else:
        saved = docker("save", "-o", str(clone / "image.tar"), local_image, timeout=120)
        assert saved.returncode == 0, saved.stderr
        variables.update(IMAGE_NAME=local_image.split(":")[0], IMAGE_ARCHIVE="image.tar",
                         DOCKER_HOST=f"tcp://127.0.0.1:{free_port()}")  # nothing listens there
    run = run_pipe_image(variables, ["-v", f"{clone}:{clone}", "-w", str(clone)], image=pipe_image)
    assert run.returncode == 0, str(run)
    output = read_output(shared)
    assert output["source"] == ("daemon" if source == "docker-service" else "docker-archive")
    assert output["references"] == [f"{registry.host}/{APP}:from-step"]
    manifest = Client(registry, APP, user="reader", actions="pull").get_manifest("from-step")
    assert manifest.status_code == 200 and manifest.headers["Docker-Content-Digest"] == output["digest"]
    assert manifest.json()["config"]["digest"] == image_id(local_image)
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])


CLONE_PIPE = "print('THE CLONE RAN ITS OWN PIPE')\nraise SystemExit(0)\n"


@pytest.mark.parametrize("shadow", ["package", "module"])
def test_pipe_image_ignores_a_pipe_of_the_clone_and_takes_tags_as_a_yaml_list(shadow, pipe_image, registry,
                                                                             local_image, tmp_path):
    """A repository that develops a pipe has a `pipe/` or a `pipe.py` at its root, and Pipelines runs the pipe
    with the clone as working directory: `python3 -m pipe` would run the clone's code, with the token in its
    environment. TAGS as a YAML list arrives as TAGS_COUNT, TAGS_0, ... (Pipelines' encoding of a list)."""
    clone = tmp_path / "build"
    clone.mkdir()
    if shadow == "package":
        (clone / "pipe").mkdir()
        (clone / "pipe" / "__init__.py").write_text("")
        (clone / "pipe" / "__main__.py").write_text(CLONE_PIPE)
    else:
        (clone / "pipe.py").write_text(CLONE_PIPE)
    for name in ("requests.py", "docker.py", "yaml.py"):  # nor any module the pipe imports
        (clone / name).write_text(CLONE_PIPE)
    saved = docker("save", "-o", str(clone / "image.tar"), local_image, timeout=120)
    assert saved.returncode == 0, saved.stderr
    variables = pipe_variables(registry.host, local_image.split(":")[0], IMAGE_ARCHIVE="image.tar",
                               BITBUCKET_CLONE_DIR=str(clone), DOCKER_HOST=f"tcp://127.0.0.1:{free_port()}",
                               TAGS_COUNT="2", TAGS_0=f"list-{shadow}", TAGS_1="{commit:7}",
                               BITBUCKET_COMMIT="0123456789abcdef0123456789abcdef01234567")
    run = run_pipe_image(variables, ["-v", f"{clone}:{clone}", "-w", str(clone)], image=pipe_image)
    assert "THE CLONE RAN ITS OWN PIPE" not in run.stdout + run.stderr
    assert run.returncode == 0, str(run)
    client = Client(registry, APP, user="reader", actions="pull")
    digests = {tag: client.get_manifest(tag).headers.get("Docker-Content-Digest")
               for tag in (f"list-{shadow}", "0123456")}
    assert len(set(digests.values())) == 1 and None not in digests.values(), digests
    assert_no_secret(run, "pipelines", TOKENS["pipelines"])
