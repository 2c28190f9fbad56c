"""Each kind of credentials with real clients: docker login/push/pull, skopeo, the pipe, and the management API.

Kinds: a member's own token (pipelines: write on web-app), an email username with a read+write API
token and with a read-scoped one (write role on web-app, admin on tools), pipeline credentials of
web-app (the package's repository; they pull and push, nothing more), of tools (another
repository), and expired ones. Every refusal
must carry the registry's words for its cause, and the pipe must turn them into what to do.
"""
from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from harness.accounts import EMAIL, READ_SCOPED_TOKEN, TOKENS, default_config
from harness.docker_images import build_image, remove_image
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import Client, docker, verify_tagged_image
from test.helpers.pipe_runner import assert_no_secret, pipe_variables, run_pipe

APP = "acme/my-container-app"  # linked to web-app
KINDS = ("member", "email-write", "email-read", "pipeline", "pipeline-other", "pipeline-expired")
MAY_PUSH = {"member", "email-write", "pipeline"}
MAY_PULL = MAY_PUSH | {"email-read"}
# The registry's words for each refused kind (docker and skopeo show them, the pipe quotes them).
PUSH_REFUSAL = {
    "email-read": "token lacks the write:package:bitbucket scope",
    "pipeline-other": "pipeline credentials for repository tools reach only its packages; "
                      "package acme/my-container-app is linked to repository web-app",
    "pipeline-expired": "pipeline credentials expired at",
}
PULL_REFUSAL = {k: v for k, v in PUSH_REFUSAL.items() if k != "email-read"}


@dataclass
class Setup:
    registry: RegistryProcess
    logins: dict[str, tuple[str, str]]
    image: str  # a local image, pushed as APP:v1 by the boss


def config() -> dict:
    data = default_config()
    data["workspaces"]["acme"]["members"][EMAIL]["roles"]["tools"] = "admin"
    return data


@pytest.fixture(scope="module")
def setup(tmp_path_factory, docker_daemon) -> Setup:
    base = tmp_path_factory.mktemp("credentials")
    registry = RegistryProcess(base / "registry", config()).start()
    image = f"my-container-app:creds-{uuid.uuid4().hex[:8]}"
    try:
        build_image(image, base / "ctx", [20_000])
        expired = registry.pipeline_credentials("web-app", ttl=1)
        logins = {
            "member": ("pipelines", TOKENS["pipelines"]),
            "email-write": (EMAIL, TOKENS[EMAIL]),
            "email-read": (EMAIL, READ_SCOPED_TOKEN),
            "pipeline": registry.pipeline_credentials("web-app"),
            "pipeline-other": registry.pipeline_credentials("tools"),
            "pipeline-expired": expired,
        }
        # A real image as v1 (docker pull extracts it), pushed by the admin with skopeo from the daemon.
        copied = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", f"boss:{TOKENS['boss']}",
                        f"docker-daemon:{image}", f"docker://{registry.host}/{APP}:v1")
        assert copied.returncode == 0, copied.stderr
        time.sleep(1.5)  # the expired ones are past their second
        yield Setup(registry, logins, image)
    finally:
        registry.stop()
        remove_image(image)


def login(setup: Setup, kind: str) -> subprocess.CompletedProcess:
    user, secret = setup.logins[kind]
    return docker("login", setup.registry.host, "-u", user, "--password-stdin", input=secret, timeout=60)


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)


def pushed(setup: Setup, tag: str) -> bool:
    return setup.registry.api("GET", f"/workspaces/acme/packages/my-container-app/tags/{tag}").status_code == 200


@pytest.mark.parametrize("kind", KINDS)
def test_docker_login_push_and_pull(setup, kind, docker_config, docker_refs):
    logged_in = login(setup, kind)
    if kind == "pipeline-expired":
        assert logged_in.returncode != 0 and PUSH_REFUSAL[kind] in logged_in.stderr, logged_in.stderr
        assert "re-run the step" in logged_in.stderr
        return
    assert logged_in.returncode == 0, logged_in.stderr
    tag = f"docker-{kind}"
    remote = f"{setup.registry.host}/{APP}:{tag}"
    assert docker("tag", setup.image, remote, timeout=60).returncode == 0
    docker_refs.append(remote)
    push = docker("push", remote, timeout=300)
    if kind in MAY_PUSH:
        assert push.returncode == 0, push.stderr
        assert verify_tagged_image(Client(setup.registry, APP, user="boss"), tag) >= 2
    else:
        assert push.returncode != 0 and PUSH_REFUSAL[kind] in push.stderr, push.stderr
        assert not pushed(setup, tag)
    base = f"{setup.registry.host}/{APP}:v1"
    docker_refs.append(base)
    pull = docker("pull", base, timeout=300)
    if kind in MAY_PULL:
        assert pull.returncode == 0, pull.stderr
    else:
        assert pull.returncode != 0 and PULL_REFUSAL[kind] in pull.stderr, pull.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_skopeo_copy_and_inspect(setup, kind):
    user, secret = setup.logins[kind]
    source = f"docker://{setup.registry.host}/{APP}:v1"
    target = f"docker://{setup.registry.host}/{APP}:skopeo-{kind}"
    copy = skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--src-creds", f"boss:{TOKENS['boss']}",
                  "--dest-creds", f"{user}:{secret}", source, target)
    inspect = skopeo("inspect", "--no-tags", "--tls-verify=false", "--creds", f"{user}:{secret}", source)
    if kind in MAY_PUSH:
        assert copy.returncode == 0, copy.stderr
        assert pushed(setup, f"skopeo-{kind}")
    else:
        # skopeo first checks for the blob with HEAD, whose 403 has no body to carry the words.
        assert copy.returncode != 0, copy.stderr
        assert PUSH_REFUSAL[kind] in copy.stderr or (kind != "pipeline-expired" and "403 (Forbidden)" in copy.stderr), \
            copy.stderr
        assert not pushed(setup, f"skopeo-{kind}")
    if kind in MAY_PULL:
        assert inspect.returncode == 0, inspect.stderr
    else:
        assert inspect.returncode != 0 and PULL_REFUSAL[kind] in inspect.stderr, inspect.stderr


PIPE_FAILURE = {
    "email-read": "Push of {ref} denied: the API token of user dev@example.com lacks the write:package:bitbucket "
                  "scope; create an API token with the scope write:package:bitbucket",
    "pipeline-other": "Push of {ref} denied: package my-container-app is linked to repository web-app, and pipeline "
                      "credentials reach only the packages of the pipeline's own repository",
    "pipeline-expired": "Login to {host} refused: the pipeline credentials of this step (user {user}) have expired",
}


@pytest.mark.parametrize("kind", KINDS)
def test_the_pipe(setup, kind, tmp_path):
    user, secret = setup.logins[kind]
    tag = f"pipe-{kind}"
    run = run_pipe(pipe_variables(setup.registry.host, setup.image, TAGS=tag, BITBUCKET_PACKAGES_USERNAME=user,
                                  BITBUCKET_PACKAGES_TOKEN=secret, BITBUCKET_PIPE_SHARED_STORAGE_DIR=str(tmp_path)))
    assert_no_secret(run, user, secret)
    ref = f"{setup.registry.host}/{APP}:{tag}"
    if kind in MAY_PUSH:
        assert run.returncode == 0, str(run)
        assert verify_tagged_image(Client(setup.registry, APP, user="boss"), tag) >= 2
        return
    assert run.returncode != 0, str(run)
    expected = PIPE_FAILURE[kind].format(ref=ref, host=setup.registry.host, user=user)
    assert run.last_line.lstrip("✖ ").startswith(expected), str(run)
    assert "re-run the step" in run.last_line if kind == "pipeline-expired" else True
    assert not pushed(setup, tag)


def test_the_pipe_explains_a_refused_email_username(setup, tmp_path):
    run = run_pipe(pipe_variables(setup.registry.host, setup.image, BITBUCKET_PACKAGES_USERNAME="dev@exmaple.com",
                                  BITBUCKET_PACKAGES_TOKEN=TOKENS[EMAIL]))
    assert run.returncode != 0
    assert run.last_line.lstrip("✖ ").startswith(
        f"Login to {setup.registry.host} refused for user dev@exmaple.com: dev@exmaple.com is an Atlassian account "
        "email: check it for a typo, and that BITBUCKET_PACKAGES_TOKEN is an API token created by that same account"), \
        str(run)


# -- the management API: delete tag (write), delete image and create package (admin) -------
# email-* are admin on tools; pipeline credentials are write on their repository.
API_EXPECTED = {
    # kind: (delete tag on web-app, delete image on tools, create package on tools)
    "member": (200, 403, 403),
    "email-write": (200, 200, 201),
    "email-read": (403, 403, 403),
    "pipeline": (403, 403, 403),  # pipeline credentials pull and push, nothing more
    "pipeline-other": (403, 403, 403),
    "pipeline-expired": (401, 401, 401),
}


@pytest.mark.parametrize("kind", KINDS)
def test_management_api_delete_tag_delete_image_create_package(setup, kind):
    registry = setup.registry
    user, secret = setup.logins[kind]
    tag = f"api-{kind}"
    Client(registry, APP, user="boss").push_image(tag, [uuid.uuid4().bytes])
    victim = f"victim-{uuid.uuid4().hex[:8]}"
    created = registry.api("POST", "/workspaces/acme/packages", json={"name": victim, "repository": "tools"})
    assert created.status_code == 201
    url = f"{registry.url}/api/workspaces/acme/packages"
    answers = (
        requests.delete(f"{url}/my-container-app/tags/{tag}", auth=(user, secret), timeout=30),
        requests.delete(f"{url}/{victim}", auth=(user, secret), timeout=30),
        requests.post(url, json={"name": f"new-{uuid.uuid4().hex[:8]}", "repository": "tools"}, auth=(user, secret),
                      timeout=30),
    )
    assert tuple(r.status_code for r in answers) == API_EXPECTED[kind], [r.text for r in answers]
    assert pushed(setup, tag) == (answers[0].status_code != 200)
    if kind == "email-read":
        assert all("token lacks the write:package:bitbucket scope" in r.text for r in answers)
    if kind == "pipeline":
        assert "pipeline credentials reach only pull and push: delete on acme/my-container-app needs" in answers[0].text
    if kind == "pipeline-expired":
        assert all("pipeline credentials expired at" in r.text for r in answers)
