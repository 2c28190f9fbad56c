"""Classifying the daemon's text of registry errors, and the messages (pipe/daemon/words.py, pipe/errors.py).

The messages are what dockerd 20.10 put in errorDetail.message / the /auth explanation, recorded
against a registry answering each error (and the emulator's own wording for its limits).
"""


import pytest

from pipe.daemon.words import classify
from pipe.errors import (
    Kind,
    RegistryError,
    image_missing_message,
    login_failure_message,
    no_daemon_message,
    push_failure_message,
)
from pipe.token_kinds import refused_kind

DAEMON_MESSAGES = [
    # (text, kind, transient)
    ("denied", Kind.DENIED, False),
    ("denied: requested access to the resource is denied", Kind.DENIED, False),
    ("denied: push on acme/app needs write permission on repository 'web-app'; user 'reader' has read",
     Kind.DENIED, False),
    ("name unknown", Kind.NAME_UNKNOWN, False),
    ("name unknown: package acme/app does not exist: create the package 'app' in workspace 'acme' and link it to a "
     "repository before pushing", Kind.NAME_UNKNOWN, False),
    ("unauthorized", Kind.UNAUTHORIZED, False),
    ("unauthorized: authentication required", Kind.UNAUTHORIZED, False),
    ("login attempt to http://127.0.0.1:5077/v2/ failed with status: 401 Unauthorized", Kind.UNAUTHORIZED, False),
    ("size invalid: layer of 34359738369 bytes exceeds the limit of 34359738368 bytes (32 GiB)",
     Kind.LAYER_TOO_LARGE, False),
    ("denied: layer exceeds the registry's limit of 1048576 bytes (0.000976562 GiB) per layer",
     Kind.LAYER_TOO_LARGE, False),
    ("error parsing HTTP 413 response body: invalid character '<' looking for beginning of value: \"<html>\"",
     Kind.LAYER_TOO_LARGE, False),
    ("blob upload invalid: upload exceeded the registry's time limit for one upload session",
     Kind.UPLOAD_TIME_LIMIT, False),
    ("blob upload unknown: upload session expired: uploads must finish within 420 s", Kind.UPLOAD_TIME_LIMIT, False),
    ("toomanyrequests: slow down", Kind.RATE_LIMITED, True),
    ("received unexpected HTTP status: 500 Internal Server Error", Kind.SERVER_ERROR, True),
    ("received unexpected HTTP status: 503 Service Unavailable", Kind.SERVER_ERROR, True),
    ("Get \"http://127.0.0.1:5078/v2/\": dial tcp 127.0.0.1:5078: connect: connection refused", Kind.UNREACHABLE, True),
    ("Get \"https://nosuch.invalid/v2/\": dial tcp: lookup nosuch.invalid on 10.255.255.53:53: no such host",
     Kind.UNREACHABLE, False),
    ("write tcp 127.0.0.1:33826->127.0.0.1:5079: use of closed network connection", Kind.CONNECTION_LOST, True),
    ("Patch \"http://127.0.0.1:5077/v2/acme/app/blobs/uploads/u1\": read tcp 127.0.0.1:1->127.0.0.1:5077: read: "
     "connection reset by peer", Kind.CONNECTION_LOST, True),
    ("Put \"http://127.0.0.1:5077/v2/acme/app/manifests/v1\": EOF", Kind.CONNECTION_LOST, True),
    ("write: broken pipe", Kind.CONNECTION_LOST, True),
    ("Get \"https://crg.apkg.io/v2/\": net/http: TLS handshake timeout", Kind.TIMEOUT, True),
    ("Patch \"https://crg.apkg.io/v2/acme/app/blobs/uploads/x\": dial tcp 1.2.3.4:443: i/o timeout",
     Kind.TIMEOUT, True),
    ("tag does not exist: 127.0.0.1:5077/acme/app:zz", Kind.OTHER, False),
    ("manifest invalid: manifest references unknown blob", Kind.OTHER, False),
]


@pytest.mark.parametrize("text, kind, transient", DAEMON_MESSAGES)
def test_classify_daemon_messages(text, kind, transient):
    error = classify(text)
    assert (error.kind, error.transient) == (kind, transient)
    assert error.detail == text  # kept verbatim


def test_status_decides_when_text_does_not():
    assert classify("something odd", 401).kind is Kind.UNAUTHORIZED
    assert classify("something odd", 403).kind is Kind.DENIED
    assert classify("something odd", 500).kind is Kind.OTHER


def test_retry_after_hint():
    assert classify("toomanyrequests: slow down, retry after 12 seconds").retry_after == 12
    assert classify("toomanyrequests: Retry-After: 3").retry_after == 3
    assert classify("toomanyrequests: slow down").retry_after is None


def test_ports_and_digests_do_not_look_like_statuses():
    assert classify("tag does not exist: 127.0.0.1:500/acme/app:403").kind is Kind.OTHER


CONTEXT = dict(reference="crg.apkg.io/acme/app:v1", registry="crg.apkg.io", workspace="acme", package="app",
               username="pipelines")


def message(text):
    return push_failure_message(classify(text), **CONTEXT)


def test_push_messages_say_what_to_do():
    assert message("denied") == (
        "Push of crg.apkg.io/acme/app:v1 denied: the token of user pipelines lacks push permission; it needs write "
        "access on the repository that package app is linked to (registry said: denied)")
    assert message("name unknown") == (
        "Push of crg.apkg.io/acme/app:v1 refused: package app does not exist in workspace acme; create it in "
        "Bitbucket (Create > Package) and link it to a repository, then run the pipe again "
        "(registry said: name unknown)")
    assert "check BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN" in message("unauthorized")
    too_large = message("denied: layer exceeds the registry's limit of 1024 bytes (9.53674e-07 GiB) per layer")
    assert "32 GB per layer" in too_large
    assert too_large.endswith("Registry said: denied: layer exceeds the registry's limit of 1024 bytes (9.53674e-07 "
                              "GiB) per layer")
    too_slow = message("blob upload invalid: upload exceeded the registry's time limit")
    assert "longer than the registry allows (7 minutes per upload on Bitbucket)" in too_slow
    assert too_slow.endswith("Registry said: blob upload invalid: upload exceeded the registry's time limit")
    # A network timeout is not the registry's time limit: the message must not blame the upload's length.
    network = message("Patch \"http://crg.apkg.io/v2/acme/app/blobs/uploads/x\": net/http: timeout awaiting response "
                      "headers")
    assert network.startswith("Push of crg.apkg.io/acme/app:v1 timed out: crg.apkg.io stopped answering")
    assert "7 minutes" not in network
    assert message("dial tcp: lookup crg.apkg.io: no such host").startswith("Registry crg.apkg.io unreachable")
    assert "try again later" in message("received unexpected HTTP status: 502 Bad Gateway")
    assert message("manifest invalid: odd") == "Push of crg.apkg.io/acme/app:v1 failed: manifest invalid: odd"


def test_every_kind_has_a_single_line_message():
    for kind in Kind:
        text = push_failure_message(RegistryError(kind, "detail", False), **CONTEXT)
        assert "\n" not in text and "detail" in text


def test_login_messages():
    refused = login_failure_message(classify("unauthorized: bad credentials"), registry="crg.apkg.io", username="bob")
    assert refused == ("Login to crg.apkg.io refused for user bob: check BITBUCKET_PACKAGES_USERNAME / "
                       "BITBUCKET_PACKAGES_TOKEN (registry said: unauthorized: bad credentials)")
    unreachable = login_failure_message(classify("connect: connection refused"), registry="r:1", username="bob")
    assert unreachable.startswith("Registry r:1 unreachable: check REGISTRY")


def test_daemon_and_image_messages():
    assert "add `services: [docker]`" in no_daemon_message(None, "boom")
    with_host = no_daemon_message("tcp://localhost:2375", "boom")
    assert "DOCKER_HOST=tcp://localhost:2375" in with_host and "check DOCKER_HOST" in with_host
    assert image_missing_message("app:1") == (
        "Image app:1 not found in the Docker daemon: build it earlier in the same step with `docker build -t app:1 .` "
        "(each step starts with an empty Docker daemon)")


# -- the registry's words for credential cases, as docker shows them and as the native engine rebuilds them
EXPIRED = ("unauthorized: pipeline credentials expired at 2026-11-25T02:00:00Z: they are valid only during the step "
           "they were issued for; re-run the step to get new ones")
NO_WRITE_SCOPE = ("denied: token lacks the write:package:bitbucket scope: push on acme/app needs it, and user "
                  "'dev@example.com' logged in with an API token scoped read:package:bitbucket only; create an API "
                  "token with write:package:bitbucket")
OTHER_REPO = ("denied: pipeline credentials for repository web-app reach only its packages; package acme/base-image "
              "is linked to repository platform")


@pytest.mark.parametrize("text, status, kind", [
    (EXPIRED, None, Kind.CREDENTIALS_EXPIRED),
    (EXPIRED, 401, Kind.CREDENTIALS_EXPIRED),
    ('Get "https://127.0.0.1:5000/v2/": ' + EXPIRED, 401, Kind.CREDENTIALS_EXPIRED),
    (NO_WRITE_SCOPE, None, Kind.SCOPE_MISSING),
    (NO_WRITE_SCOPE, 403, Kind.SCOPE_MISSING),
    (OTHER_REPO, None, Kind.OTHER_REPOSITORY),
    (OTHER_REPO, 403, Kind.OTHER_REPOSITORY),
    # Their generic neighbours stay what they were.
    ("unauthorized: invalid username or token", 401, Kind.UNAUTHORIZED),
    ("denied: push on acme/app needs write permission on repository 'web-app'; user 'dev@example.com' has read",
     403, Kind.DENIED),
    ("blob upload unknown: upload session expired: uploads must finish within 420 s", None, Kind.UPLOAD_TIME_LIMIT),
])
def test_credential_cases_are_classified_by_the_registry_text(text, status, kind):
    error = classify(text, status)
    assert error.kind is kind and not error.transient and error.detail == text


def test_credential_case_messages_say_what_to_do():
    expired = message(EXPIRED)
    assert expired.startswith("Push of crg.apkg.io/acme/app:v1 unauthorized: the pipeline credentials of this step "
                              "(user pipelines) have expired") and "re-run the step" in expired
    login = login_failure_message(classify(EXPIRED, 401), registry="crg.apkg.io", username="bitbucket-pipelines-1")
    assert login.startswith("Login to crg.apkg.io refused: the pipeline credentials of this step "
                            "(user bitbucket-pipelines-1) have expired") and "re-run the step" in login
    scope = message(NO_WRITE_SCOPE)
    assert scope.startswith("Push of crg.apkg.io/acme/app:v1 denied: the API token of user pipelines lacks the "
                            "write:package:bitbucket scope; create an API token with the scope write:package:bitbucket")
    other = push_failure_message(classify(OTHER_REPO), **{**CONTEXT, "package": "base-image"})
    assert other.startswith("Push of crg.apkg.io/acme/app:v1 denied: package base-image is linked to repository "
                            "platform, and pipeline credentials reach only the packages of the pipeline's own "
                            "repository")
    for text in (expired, login, scope, other):
        assert text.endswith(")") and "registry said: " in text


def test_a_refused_email_username_is_told_what_401_means():
    refused = login_failure_message(classify("unauthorized: invalid username or token", 401), registry="crg.apkg.io",
                                    username="dev@exmaple.com")
    assert refused.startswith("Login to crg.apkg.io refused for user dev@exmaple.com: dev@exmaple.com is an "
                              "Atlassian account email: check it for a typo, and that BITBUCKET_PACKAGES_TOKEN is an "
                              "API token created by that same account")
    pushed = push_failure_message(classify("unauthorized: authentication required"),
                                  **{**CONTEXT, "username": "dev@example.com"})
    assert "dev@example.com is an Atlassian account email: check it for a typo" in pushed
    # A plain username keeps the plain advice.
    assert "check BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN" in message("unauthorized")


# -- tokens the registry refuses by kind (pipe/token_kinds.py) -------------------------------------
ACCESS_TOKEN = "ATCTT3xFfGN0k2l9mQ7vZr8sXw4yBn6cHd1jE5pLa0uKoVi"
APP_PASSWORD = "ATBB7hQ2mZxR9vLk3NsW8cYd5TfG1pJb4e6a"


@pytest.mark.parametrize("token, prefix", [(ACCESS_TOKEN, "ATCT"), (APP_PASSWORD, "ATBB"), ("ATCT", "ATCT")])
def test_access_tokens_and_app_passwords_are_told_apart_by_their_prefix(token, prefix):
    assert refused_kind(token).prefix == prefix


@pytest.mark.parametrize("token", [
    "ATATT3xFfGN0example",  # an API token: taken
    "bbpc_0123456789abcdef",  # pipeline credentials (the emulator's)
    "s3cr3t", "", "atct-lowercase", "xATCTinside", "ATC", " ATCTleading-space",
])
def test_other_tokens_are_not_a_refused_kind(token):
    assert refused_kind(token) is None


@pytest.mark.parametrize("token, looks_like", [
    (ACCESS_TOKEN, "looks like a Bitbucket repository, project or workspace access token (it begins ATCT), and the "
                   "container registry does not accept access tokens"),
    (APP_PASSWORD, "looks like a Bitbucket app password (it begins ATBB), and the container registry does not accept "
                   "app passwords (they stopped working on 9 June 2026)"),
])
@pytest.mark.parametrize("answer, status", [("unauthorized: invalid username or token", 401),
                                            ("denied: requested access to the resource is denied", 403)])
def test_a_refused_login_with_such_a_token_names_its_kind_and_what_to_create(token, looks_like, answer, status):
    line = login_failure_message(classify(answer, status), registry="crg.apkg.io", username="x-token-auth",
                                 token_kind=refused_kind(token))
    assert line.startswith(f"Login to crg.apkg.io refused for user x-token-auth: BITBUCKET_PACKAGES_TOKEN "
                           f"{looks_like}; create an Atlassian API token with the scopes read:package:bitbucket and "
                           "write:package:bitbucket and set it as BITBUCKET_PACKAGES_TOKEN"), line
    assert line.endswith(f"(registry said: {answer})") and "\n" not in line
    assert token not in line


def test_the_kind_changes_only_a_refused_login():
    kind = refused_kind(ACCESS_TOKEN)
    for text in ("connect: connection refused", "received unexpected HTTP status: 503 Service Unavailable"):
        assert login_failure_message(classify(text), registry="r:1", username="u", token_kind=kind) == \
            login_failure_message(classify(text), registry="r:1", username="u")
