"""The pipe as a whole (pipe/pipe.py): in-process against a fake Docker client, and as a script.

No Docker daemon is needed: the fake client replays recorded daemon answers. The real daemon and
registry are exercised by the integration tests.
"""
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from docker.errors import APIError, ImageNotFound

from pipe import daemon
from pipe import pipe as pipe_module
from pipe.outputs import OUTPUT_FILE_NAME
from pipe.retry import RetryPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]

TOKEN = "s3cr3t-T0ken-42"
DIGEST = "sha256:" + "cd" * 32
IMAGE_ID = "sha256:" + "11" * 32
ENV = {
    "IMAGE_NAME": "my-container-app:dev",
    "TAGS": "latest v1",
    "WORKSPACE": "acme",
    "BITBUCKET_PACKAGES_USERNAME": "pipelines",
    "BITBUCKET_PACKAGES_TOKEN": TOKEN,
    "REGISTRY": "127.0.0.1:5077",
    # These tests drive the daemon's push through a scripted client; the native engine is
    # tested against real registries in test/integration/test_native_push.py.
    "PUSH_ENGINE": "docker",
}


def ok_stream(tag, uploaded=True):
    layer = [{"status": "Pushing", "progressDetail": {"current": 100, "total": 100}, "id": "aaa"},
             {"status": "Pushed", "progressDetail": {}, "id": "aaa"}] if uploaded else \
        [{"status": "Layer already exists", "progressDetail": {}, "id": "aaa"}]
    return [{"status": "The push refers to repository [127.0.0.1:5077/acme/my-container-app]"},
            {"status": "Preparing", "progressDetail": {}, "id": "aaa"}, *layer,
            {"progressDetail": {}, "aux": {"Tag": tag, "Digest": DIGEST, "Size": 500}}]


def error_stream(message):
    return [{"status": "The push refers to repository [127.0.0.1:5077/acme/my-container-app]"},
            {"errorDetail": {"message": message}, "error": message}]


class FakeImage:
    id = IMAGE_ID
    tags = ["my-container-app:dev"]
    attrs = {"Id": IMAGE_ID, "Os": "linux", "Architecture": "amd64"}


class FakeImages:
    def __init__(self, present):
        self.present = present

    def get(self, reference):
        if not self.present:
            raise ImageNotFound(f"No such image: {reference}")
        return FakeImage()


class FakeAPI:
    def __init__(self, streams, local_tags):
        self.timeout = 30
        self.streams = list(streams)
        self.local_tags = dict(local_tags)
        self.pushed = []
        self.auth_configs = []

    def inspect_image(self, reference):
        if reference not in self.local_tags:
            raise ImageNotFound(reference)
        return {"Id": self.local_tags[reference]}

    def tag(self, image, repository, tag, force=False):
        self.local_tags[f"{repository}:{tag}"] = image
        return True

    def remove_image(self, reference, force=False, noprune=False):
        del self.local_tags[reference]

    def push(self, repository, tag=None, stream=False, decode=False, auth_config=None):
        assert stream and decode
        self.auth_configs.append(auth_config)
        self.pushed.append(f"{repository}:{tag}")
        return iter(self.streams.pop(0))


class FakeClient:
    def __init__(self, streams=(), login_error=None, image_present=True, local_tags=None):
        self.api = FakeAPI(streams, local_tags or {"my-container-app:dev": IMAGE_ID})
        self.images = FakeImages(image_present)
        self.login_error = login_error
        self.logins = []

    def ping(self):
        return True

    def login(self, username, password=None, registry=None, reauth=False):
        self.logins.append((username, registry, reauth))
        if self.login_error:
            raise self.login_error
        return {"Status": "Login Succeeded"}


@pytest.fixture
def output(monkeypatch):
    """Route the root logger to a buffer for the test, restoring handlers afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.handlers = [handler]
    yield buffer
    root.handlers, _ = saved
    root.setLevel(saved[1])


def run_pipe(monkeypatch, client, env=None, sleeps=None):
    # Here, not in the fixture: pytest re-assigns sys.stdout between a test's setup and its call.
    buffer = logging.getLogger().handlers[0].stream
    monkeypatch.setattr(sys, "stdout", buffer)
    monkeypatch.setattr(sys, "stderr", buffer)
    monkeypatch.setattr(daemon.docker, "from_env", lambda **kwargs: client)
    sleeps = [] if sleeps is None else sleeps
    pipe = pipe_module.PushContainerImagePipe(env={**ENV, **(env or {})}, retry_policy=RetryPolicy(),
                                              sleep=sleeps.append)
    try:
        pipe.run()
        return 0
    except pipe_module.PipeFailure as exc:
        print(f"FAIL: {exc}")
        return 1


def test_pushes_every_tag_writes_output_and_removes_temporary_tags(monkeypatch, output, tmp_path):
    client = FakeClient([ok_stream("latest"), ok_stream("v1", uploaded=False)])
    assert run_pipe(monkeypatch, client, {"BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(tmp_path / "out")}) == 0
    text = output.getvalue()
    assert client.logins == [("pipelines", "127.0.0.1:5077", True)]
    assert client.api.pushed == ["127.0.0.1:5077/acme/my-container-app:latest",
                                 "127.0.0.1:5077/acme/my-container-app:v1"]
    assert client.api.auth_configs[0] == {"username": "pipelines", "password": TOKEN}
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}  # only the source image is left
    assert f"Pushed 127.0.0.1:5077/acme/my-container-app:latest digest: {DIGEST} (1 layer uploaded (100 B)" in text
    assert f"Pushed 127.0.0.1:5077/acme/my-container-app:v1 digest: {DIGEST} (nothing new uploaded" in text
    assert "100 B uploaded" in text
    data = json.loads((tmp_path / "out" / OUTPUT_FILE_NAME).read_text())
    assert data["references"] == ["127.0.0.1:5077/acme/my-container-app:latest",
                                  "127.0.0.1:5077/acme/my-container-app:v1"]
    assert data["reference_by_digest"] == f"127.0.0.1:5077/acme/my-container-app@{DIGEST}"
    assert (data["digest"], data["tags"], data["pushed_bytes"]) == (DIGEST, ["latest", "v1"], 100)
    assert TOKEN not in text and TOKEN not in json.dumps(data)


def test_repush_says_nothing_new(monkeypatch, output):
    client = FakeClient([ok_stream("latest", False), ok_stream("v1", False)])
    assert run_pipe(monkeypatch, client) == 0
    assert "nothing new uploaded, every layer was already in the registry" in output.getvalue()


def test_permanent_push_error_fails_once_and_cleans_up(monkeypatch, output):
    client = FakeClient([error_stream("denied: push on acme/my-container-app needs write permission")])
    sleeps = []
    assert run_pipe(monkeypatch, client, sleeps=sleeps) == 1
    text = output.getvalue()
    assert "FAIL: Push of 127.0.0.1:5077/acme/my-container-app:latest denied: the token of user pipelines lacks push " \
           "permission" in text
    assert sleeps == [] and len(client.api.pushed) == 1
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_transient_push_error_is_retried(monkeypatch, output):
    client = FakeClient([error_stream("received unexpected HTTP status: 502 Bad Gateway"), ok_stream("latest"),
                         ok_stream("v1", False)])
    sleeps = []
    assert run_pipe(monkeypatch, client, sleeps=sleeps) == 0
    assert sleeps == [2.0]
    assert "retrying in 2 s (attempt 2 of 3)" in output.getvalue()


def test_transient_errors_give_up_after_three_attempts(monkeypatch, output):
    client = FakeClient([error_stream("write: connection reset by peer")] * 3)
    assert run_pipe(monkeypatch, client) == 1
    assert "[gave up after 3 attempts]" in output.getvalue()
    assert client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_login_refused_fails_before_tagging(monkeypatch, output):
    error = APIError("401", explanation="login attempt to http://127.0.0.1:5077/v2/ failed with status: 401 "
                                        "Unauthorized")
    client = FakeClient(login_error=error)
    assert run_pipe(monkeypatch, client) == 1
    assert ("FAIL: Login to 127.0.0.1:5077 refused for user pipelines: check BITBUCKET_PACKAGES_USERNAME / "
            "BITBUCKET_PACKAGES_TOKEN") in output.getvalue()
    assert client.api.pushed == [] and client.api.local_tags == {"my-container-app:dev": IMAGE_ID}


def test_missing_image(monkeypatch, output):
    assert run_pipe(monkeypatch, FakeClient(image_present=False)) == 1
    assert "FAIL: Image my-container-app:dev not found in the Docker daemon: build it earlier in the same step with " \
           "`docker build -t my-container-app:dev .`" in output.getvalue()


def test_existing_user_tags_are_left_or_restored(monkeypatch, output):
    other = "sha256:" + "22" * 32
    tags = {"my-container-app:dev": IMAGE_ID,
            "127.0.0.1:5077/acme/my-container-app:latest": IMAGE_ID,  # already the image: left alone
            "127.0.0.1:5077/acme/my-container-app:v1": other}        # another image: moved back afterwards
    client = FakeClient([ok_stream("latest"), ok_stream("v1")], local_tags=tags)
    assert run_pipe(monkeypatch, client) == 0
    assert client.api.local_tags == tags


def test_token_is_scrubbed_even_when_the_registry_echoes_it(monkeypatch, output):
    client = FakeClient([error_stream(f"manifest invalid: weird registry echoing {TOKEN}")])
    assert run_pipe(monkeypatch, client, {"DEBUG": "true"}) == 1
    text = output.getvalue()
    assert "weird registry echoing ********" in text
    assert TOKEN not in text


def script(env, timeout=60):
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([sys.executable, "-m", "pipe"], env={**base, **env}, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_script_reports_all_invalid_variables_without_traceback():
    result = script({"IMAGE_NAME": "Bad Name", "TAGS": "ok a,b", "BITBUCKET_PACKAGES_TOKEN": TOKEN, "DEBUG": "true",
                     "REGISTRY": "https://crg.apkg.io"})
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Invalid pipe variables (5 problems):" in out
    assert "IMAGE_NAME 'Bad Name' is not a valid image name" in out
    assert "TAGS entry 'a,b' is not a valid tag" in out
    assert "WORKSPACE is missing: set WORKSPACE to your workspace slug or run inside Bitbucket Pipelines" in out
    assert "BITBUCKET_PACKAGES_USERNAME is missing" in out
    assert "REGISTRY 'https://crg.apkg.io' is not valid" in out
    assert "Traceback" not in out and TOKEN not in out


def test_script_without_a_daemon_says_add_the_docker_service():
    result = script({**ENV, "DOCKER_HOST": "tcp://127.0.0.1:9", "DEBUG": "true"})
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Cannot connect to the Docker daemon at DOCKER_HOST=tcp://127.0.0.1:9: add `services: [docker]`" in out
    assert TOKEN not in out
