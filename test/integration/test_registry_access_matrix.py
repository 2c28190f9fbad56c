"""Every route of /v2/ and of the management API, tried with every kind of credential, table-driven.

Credentials: none, wrong ones, a forged token, an expired token, a token issued for workspace
globex, each role on the package's repository (reader: read, pipelines: write, boss: admin,
outsider: none), an email username with a read+write API token and with a read-scoped one (both
on a write role), pipeline credentials of the package's repository, of another repository, and
expired ones. The expected answer comes from the permission table and the access rule in README.md.
Credentials without access that may not push anywhere get, for an existing package, exactly the
answer (status, code, message) a missing package gets; the /v2/ routes and the management API
give the same answer. Afterwards neither the responses nor the registry's debug log contain a
member token or a bearer token.

Two registries are shared by the module: the main one (started with --debug), and one with a
1-second token lifetime whose tokens are left to expire once, for all the "expired" cases.
"""
from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field

import jwt
import pytest
import requests

from harness.accounts import EMAIL, READ_SCOPED_TOKEN, TOKENS, default_config
from harness.registry_process import RegistryProcess
from test.helpers.oci_client import (
    DOCKER_MANIFEST,
    Client,
    digest_of,
    docker_login,
    docker_push,
    error_codes,
    error_message,
    image_manifest,
    verify_tagged_image,
)

GLOBEX_TOKEN = "globex-token-11aa"  # member `pipelines` of workspace globex (write on its repository `site`)
APP = "acme/my-container-app"      # linked to web-app: reader read, pipelines write, boss admin, outsider none
TOOL = "acme/tool-image"           # linked to tools: reader and outsider have no role there
MISSING = "acme/no-such-package"
GENERIC_DENIED = "requested access to the resource is denied"
RANK = {None: 0, "read": 1, "write": 2, "admin": 3}
MEMBERS = ("reader", "pipelines", "boss", "outsider")
# Credentials that are not a member's own token: an email username with API tokens, pipeline credentials.
SCOPED = ("email-write", "email-read", "pipeline", "pipeline-other")
ROLE_ON_WEB_APP = {"reader": "read", "pipelines": "write", "boss": "admin", "outsider": None,
                   "email-write": "write", "email-read": "write", "pipeline": "write", "pipeline-other": None}
READ_SCOPED = {"email-read"}  # a read:package:bitbucket API token: pull, whatever the role
NO_DELETE = READ_SCOPED | {"pipeline", "pipeline-other"}  # pipeline credentials pull and push, nothing more
PUSHERS = ("pipelines", "boss", "email-write", "pipeline")  # may push to APP
PIPELINE_OTHER_DENIED = ("pipeline credentials for repository tools reach only its packages; "
                         "package acme/my-container-app is linked to repository web-app")
TIMEOUT = 30

# Every response the matrix received, for the leak check at the end of the module.
SEEN: list[requests.Response] = []
ISSUED: list[str] = []  # every bearer token the tests obtained


def send(method: str, url: str, headers: dict | None = None, **kwargs) -> requests.Response:
    r = requests.request(method, url, headers=headers or {}, timeout=TIMEOUT, allow_redirects=False, **kwargs)
    SEEN.append(r)
    return r


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def logins(world: "World") -> dict[str, tuple[str, str]]:
    """cred -> (username, secret) for every credential kind that logs in."""
    return {**{m: (m, TOKENS[m]) for m in MEMBERS}, "email-write": (EMAIL, TOKENS[EMAIL]),
            "email-read": (EMAIL, READ_SCOPED_TOKEN), **world.pipeline}


def bearer_for(registry: RegistryProcess, user: str, secret: str, *repositories: str) -> str:
    params = [("service", "crg.apkg.io")] + [("scope", f"repository:{r}:pull,push,delete") for r in repositories]
    r = send("GET", f"{registry.url}/token", params=params, auth=(user, secret))
    assert r.status_code == 200, r.text
    ISSUED.append(r.json()["token"])
    return r.json()["token"]


class FreshClient(Client):
    """A client that asks for a new token on every request (tokens of the short-lived registry expire in 1 s)."""

    def token(self) -> str:
        self._token = None
        token = super().token()
        ISSUED.append(token)
        return token


@dataclass
class Content:
    """What the boss pushed into a package: one image, tag v1."""

    layer: str
    config: str
    manifest: str
    blobs: list[dict]  # descriptors, to build further manifests from


@dataclass
class World:
    main: RegistryProcess
    short: RegistryProcess
    content: dict[tuple[int, str], Content] = field(default_factory=dict)
    expired: dict[str, str] = field(default_factory=dict)  # repository -> expired boss token (short registry)
    pipeline: dict[str, tuple[str, str]] = field(default_factory=dict)  # cred -> pipeline credentials (main)
    pipeline_expired: dict[str, str] = field(default_factory=dict)  # repository -> bearer of expired ones (main)

    def of(self, cred: str) -> RegistryProcess:
        return self.short if cred == "expired" else self.main


def populate(registry: RegistryProcess, repository: str) -> Content:
    client = FreshClient(registry, repository, user="boss")
    body = image_manifest(client, [os.urandom(3000)], DOCKER_MANIFEST)
    r = client.put_manifest("v1", body, DOCKER_MANIFEST)
    assert r.status_code == 201, r.text
    doc = json.loads(body)
    return Content(doc["layers"][0]["digest"], doc["config"]["digest"], digest_of(body),
                   [doc["config"], *doc["layers"]])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    base = tmp_path_factory.mktemp("access-matrix")
    main = RegistryProcess(base / "main", default_config(), extra_args=["--debug"]).start()
    short_config = default_config()
    short_config["auth"] = {"token_ttl_seconds": 1}
    short = RegistryProcess(base / "short", short_config, extra_args=["--debug"]).start()
    try:
        world = World(main, short)
        for registry in (main, short):
            for repository in (APP, TOOL):
                world.content[(registry.port, repository)] = populate(registry, repository)
        # Boss (admin everywhere) tokens for every repository, left to expire once for all "expired" cases.
        world.pipeline["pipeline"] = main.pipeline_credentials("web-app")
        world.pipeline["pipeline-other"] = main.pipeline_credentials("tools")
        world.pipeline["pipeline-expired"] = main.pipeline_credentials("web-app", ttl=2)
        for repository in (APP, TOOL, MISSING):
            world.expired[repository] = bearer_for(short, "boss", TOKENS["boss"], repository)
            # Bearer tokens never outlive the pipeline credentials they were issued for (main's last 300 s).
            world.pipeline_expired[repository] = bearer_for(main, *world.pipeline["pipeline-expired"], repository)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            time.sleep(0.5)
            probes = [send("GET", f"{reg.url}/v2/", {"Authorization": f"Bearer {token}"})
                      for reg, token in ((short, world.expired[APP]), (main, world.pipeline_expired[APP]))]
            if all(p.status_code == 401 for p in probes):
                break
        else:
            pytest.fail("the short-lived tokens did not expire")
        yield world
    finally:
        main.stop()
        short.stop()


def forged_token(repository: str) -> str:
    """Well-formed, with every right, signed with a key the registry does not have."""
    now = int(time.time())
    return jwt.encode({
        "iss": "crg-emulator", "sub": "boss", "aud": "crg.apkg.io", "iat": now, "nbf": now - 1, "exp": now + 300,
        "access": [{"type": "repository", "name": repository, "actions": ["delete", "pull", "push"]}],
    }, b"k" * 32, algorithm="HS256")


# -- /v2/ ---------------------------------------------------------------------------------
V2_CREDS = ("none", "wrong", "forged", "expired", "globex", "pipeline-expired", *MEMBERS, *SCOPED)
PULL_ROUTES = {
    "blob HEAD": ("HEAD", "/v2/{repo}/blobs/{layer}"),
    "blob GET": ("GET", "/v2/{repo}/blobs/{layer}"),
    "manifest HEAD": ("HEAD", "/v2/{repo}/manifests/v1"),
    "manifest GET": ("GET", "/v2/{repo}/manifests/v1"),
}
PUSH_ROUTES = {
    "upload POST": ("POST", "/v2/{repo}/blobs/uploads/"),
    "upload GET": ("GET", "/v2/{repo}/blobs/uploads/{upload}"),
    "upload PATCH": ("PATCH", "/v2/{repo}/blobs/uploads/{upload}"),
    "upload PUT": ("PUT", "/v2/{repo}/blobs/uploads/{upload}?digest={empty}"),
    "upload DELETE": ("DELETE", "/v2/{repo}/blobs/uploads/{upload}"),
    "manifest PUT": ("PUT", "/v2/{repo}/manifests/{new_tag}"),
}
UNSUPPORTED_ROUTES = {
    "manifest DELETE by tag": ("DELETE", "/v2/{repo}/manifests/v1"),
    "manifest DELETE by digest": ("DELETE", "/v2/{repo}/manifests/{manifest}"),
    "blob DELETE": ("DELETE", "/v2/{repo}/blobs/{layer}"),
    "tags list": ("GET", "/v2/{repo}/tags/list"),
    "catalog": ("GET", "/v2/_catalog"),
}
V2_ROUTES = {"ping": ("GET", "/v2/"), **PULL_ROUTES, **PUSH_ROUTES, **UNSUPPORTED_ROUTES}
SUCCESS = {"ping": 200, "blob HEAD": 200, "blob GET": 200, "manifest HEAD": 200, "manifest GET": 200,
           "upload POST": 202, "upload GET": 204, "upload PATCH": 202, "upload PUT": 201, "upload DELETE": 204,
           "manifest PUT": 201}


def expected_v2(route: str, cred: str) -> tuple[int, str | None]:
    """The permission table: (status, OCI code) for `cred` on `route` of an existing package linked to web-app."""
    if route in UNSUPPORTED_ROUTES:
        return 405, "UNSUPPORTED"  # like crg.apkg.io, whoever asks
    if cred in ("none", "wrong", "forged", "expired", "pipeline-expired"):
        return 401, "UNAUTHORIZED"
    if route == "ping":
        return 200, None  # any valid token of this registry, whatever it grants
    if cred == "globex":
        return 401, "UNAUTHORIZED"  # credentials of another workspace grant nothing in acme
    needed = "read" if route in PULL_ROUTES else "write"
    if RANK[ROLE_ON_WEB_APP[cred]] >= RANK[needed] and not (needed == "write" and cred in READ_SCOPED):
        return SUCCESS[route], None
    return 403, "DENIED"


def expected_denial(cred: str, needed: str) -> str:
    """The words of a 403 DENIED for `cred` on APP (linked to web-app)."""
    if cred in READ_SCOPED:
        return "token lacks the write:package:bitbucket scope"
    if cred == "pipeline-other":
        return PIPELINE_OTHER_DENIED
    if ROLE_ON_WEB_APP.get(cred) is None:
        return GENERIC_DENIED
    return f"needs {needed} permission on repository 'web-app'"


def v2_headers(world: World, cred: str, repository: str, user_for: str | None = None) -> dict[str, str]:
    registry = world.of(cred)
    if cred == "none":
        return {}
    if cred == "wrong":
        return {"Authorization": basic("pipelines", "not-the-token")}
    if cred == "forged":
        return {"Authorization": f"Bearer {forged_token(repository)}"}
    if cred == "expired":
        return {"Authorization": f"Bearer {world.expired[repository]}"}
    if cred == "pipeline-expired":
        return {"Authorization": f"Bearer {world.pipeline_expired[repository]}"}
    if cred == "globex":
        bearer = bearer_for(registry, "pipelines", GLOBEX_TOKEN, repository, "globex/site-image")
        return {"Authorization": f"Bearer {bearer}"}
    return {"Authorization": f"Bearer {bearer_for(registry, *logins(world)[cred], repository)}"}


def upload_id_for(world: World, cred: str, repository: str) -> str:
    """The caller's own session when it may push there, else a session of the boss (or none for a missing package)."""
    registry = world.of(cred)
    user, secret = logins(world)[cred] if cred in PUSHERS else ("boss", TOKENS["boss"])
    if repository == MISSING:
        return uuid.uuid4().hex
    location = FreshClient(registry, repository, user=user, secret=secret).start_upload()
    return location.rsplit("/", 1)[1]


def v2_request(world: World, route: str, cred: str, repository: str) -> requests.Response:
    registry = world.of(cred)
    method, template = V2_ROUTES[route]
    content = world.content.get((registry.port, repository)) or world.content[(registry.port, APP)]
    values = {"repo": repository, "layer": content.layer, "manifest": content.manifest, "empty": digest_of(b""),
              "new_tag": "put-" + uuid.uuid4().hex[:8]}
    if "{upload}" in template:
        values["upload"] = upload_id_for(world, cred, repository)
    body = None
    if route == "upload PATCH":
        body = b"a chunk"
    elif route == "manifest PUT":
        body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": content.blobs[0],
                           "layers": content.blobs[1:], "annotations": {"n": uuid.uuid4().hex}}).encode()
    headers = v2_headers(world, cred, repository)
    if route == "manifest PUT":
        headers["Content-Type"] = DOCKER_MANIFEST
    return send(method, registry.url + template.format(**values), headers, data=body)


def answer(r: requests.Response, *names: str) -> tuple:
    """What a client learns from an answer, with package names blanked out."""
    def blank(text: str) -> str:
        for name in names:
            text = text.replace(name, "PKG")
        return text
    return (r.status_code, tuple(error_codes(r)), blank(error_message(r)), blank(r.headers.get("WWW-Authenticate", "")))


@pytest.mark.parametrize("cred", V2_CREDS)
@pytest.mark.parametrize("route", list(V2_ROUTES))
def test_v2_route_answers_as_the_permission_table_says(world, route, cred):
    status, code = expected_v2(route, cred)
    r = v2_request(world, route, cred, APP)
    assert r.status_code == status, (route, cred, r.status_code, r.text)
    if code is not None and V2_ROUTES[route][0] != "HEAD":  # a HEAD answer has no body
        assert error_codes(r) == [code], (route, cred, r.text)
    if status == 401:
        challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith(f'Bearer realm="{world.of(cred).url}/token"')
        assert 'service="crg.apkg.io"' in challenge
        if route != "ping":
            assert f"repository:{APP}:" in challenge
    if status == 403 and V2_ROUTES[route][0] != "HEAD":
        assert expected_denial(cred, "write") in error_message(r), (route, cred, r.text)
    if cred == "expired":
        # Expiry, and nothing else, is why it was refused: a fresh token of the same member works.
        fresh = FreshClient(world.short, APP, user="boss", actions="pull,push,delete")
        method, template = V2_ROUTES[route]
        if route in PULL_ROUTES or route == "ping":
            c = world.content[(world.short.port, APP)]
            url = world.short.url + template.format(repo=APP, layer=c.layer)
            assert fresh.request(method, url).status_code == 200


@pytest.mark.parametrize("route", [*PULL_ROUTES, *PUSH_ROUTES])
@pytest.mark.parametrize("cred, hidden", [
    ("none", APP), ("wrong", APP), ("forged", APP), ("expired", APP), ("globex", APP),
    ("outsider", APP), ("reader", TOOL), ("email-read", TOOL), ("pipeline-expired", APP),
])
def test_without_access_an_existing_package_answers_like_a_missing_one(world, route, cred, hidden):
    existing, missing = v2_request(world, route, cred, hidden), v2_request(world, route, cred, MISSING)
    assert existing.status_code in (401, 403), (route, cred, existing.status_code, existing.text)
    assert answer(existing, hidden, MISSING) == answer(missing, hidden, MISSING)


@pytest.mark.parametrize("user", ["pipelines", "boss", "email-write", "pipeline", "pipeline-other"])
def test_members_who_may_push_are_told_a_package_is_missing(world, user):
    r = v2_request(world, "upload POST", user, MISSING)
    assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"]
    assert "create the package 'no-such-package'" in error_message(r)


PIPELINE_TOOL_DENIED = ("pipeline credentials for repository web-app reach only its packages; "
                        "package acme/tool-image is linked to repository tools")


@pytest.mark.parametrize("cred, repository, pull_words, push_words", [
    ("pipeline-other", APP, PIPELINE_OTHER_DENIED, PIPELINE_OTHER_DENIED),
    ("pipeline", TOOL, PIPELINE_TOOL_DENIED, PIPELINE_TOOL_DENIED),
    ("email-write", TOOL,
     "pull on acme/tool-image needs read permission on repository 'tools'; user 'dev@example.com' has no role there",
     "push on acme/tool-image needs write permission on repository 'tools'; user 'dev@example.com' has no role there"),
])
def test_credentials_that_may_push_are_told_which_repository_a_package_is_linked_to(
        world, cred, repository, pull_words, push_words):
    for route, words in (("manifest GET", pull_words), ("upload POST", push_words)):
        r = v2_request(world, route, cred, repository)
        assert r.status_code == 403 and error_codes(r) == ["DENIED"], r.text
        assert error_message(r) == words


def test_a_read_scoped_token_on_a_write_role_pulls_but_is_told_the_scope_it_lacks(world):
    registry = world.main
    reader = FreshClient(registry, APP, user=EMAIL, secret=READ_SCOPED_TOKEN)
    assert verify_tagged_image(reader, "v1") == 2
    r = reader.request("POST", "blobs/uploads/")
    assert r.status_code == 403 and error_codes(r) == ["DENIED"]
    assert error_message(r) == (
        f"token lacks the write:package:bitbucket scope: push on {APP} needs it, and user '{EMAIL}' logged in with "
        "an API token scoped read:package:bitbucket only; create an API token with write:package:bitbucket")
    # The token endpoint granted the intersection: requested pull,push x role write x token scope read.
    claims = jwt.decode(reader.token(), options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": APP, "actions": ["pull"]}]


def test_expired_pipeline_credentials_are_told_they_expired(world):
    user, secret = world.pipeline["pipeline-expired"]
    url = world.main.url
    for r in (send("GET", f"{url}/token", params={"scope": f"repository:{APP}:pull"}, auth=(user, secret)),
              send("GET", f"{url}/api/workspaces/acme/packages", auth=(user, secret))):
        assert r.status_code == 401 and error_codes(r) == ["UNAUTHORIZED"], r.text
        assert error_message(r).startswith("pipeline credentials expired at ") and "re-run the step" in error_message(r)
    # Only the right token learns that: a wrong one for the same username is just wrong.
    r = send("GET", f"{url}/token", auth=(user, secret + "x"))
    assert r.status_code == 401 and error_message(r) == "invalid username or token"


# The same question on /v2/ and in the management API: (v2 route, API route) needing the same role and action.
SAME_QUESTION = [("manifest GET", "details"), ("blob GET", "tag details")]


@pytest.mark.parametrize("cred", [c for c in (*MEMBERS, *SCOPED)])
@pytest.mark.parametrize("repository", [APP, TOOL, MISSING])
@pytest.mark.parametrize("v2_route, api_route", SAME_QUESTION)
def test_v2_and_the_management_api_give_the_same_answer(world, cred, repository, v2_route, api_route):
    v2 = v2_request(world, v2_route, cred, repository)
    package = repository.split("/", 1)[1]
    template = API_ROUTES[api_route][1].replace("/tags/v1", "/tags/no-such-tag")
    api = send(API_ROUTES[api_route][0], world.main.url + template.format(pkg=package), api_headers(world, cred))
    if v2.status_code in (403, 404):
        assert (api.status_code, error_codes(api)) == (v2.status_code, error_codes(v2)), (api.text, v2.text)
        assert error_message(api) == error_message(v2), (api.text, v2.text)
    else:
        assert v2.status_code == 200 and (api.status_code == 200 or error_codes(api) == ["MANIFEST_UNKNOWN"])


# -- management API -----------------------------------------------------------------------
API_CREDS = ("none", "wrong", "bearer", "expired", "globex", "pipeline-expired", *MEMBERS, *SCOPED)
API_ROUTES = {
    "list": ("GET", "/api/workspaces/acme/packages"),
    "create": ("POST", "/api/workspaces/acme/packages"),
    "details": ("GET", "/api/workspaces/acme/packages/{pkg}"),
    "tag details": ("GET", "/api/workspaces/acme/packages/{pkg}/tags/v1"),
    "delete tag": ("DELETE", "/api/workspaces/acme/packages/{pkg}/tags/v1"),
    "delete image": ("DELETE", "/api/workspaces/acme/packages/{pkg}"),
    "storage": ("GET", "/api/workspaces/acme/storage"),
    "gc": ("POST", "/api/workspaces/acme/gc"),
}
PACKAGE_ROUTES = {"details": "read", "tag details": "read", "delete tag": "write", "delete image": "admin"}


def expected_api(route: str, cred: str) -> tuple[int, str | None]:
    if cred in ("none", "wrong", "bearer", "expired", "globex", "pipeline-expired"):
        return 401, "UNAUTHORIZED"  # HTTP Basic with valid credentials for this workspace, nothing else
    role = ROLE_ON_WEB_APP[cred]
    writes = cred not in READ_SCOPED
    if route == "list":
        return 200, None  # a member sees the packages of repositories they have a role on
    if route in PACKAGE_ROUTES:
        needed = PACKAGE_ROUTES[route]
        deletes = route.startswith("delete")
        allowed = RANK[role] >= RANK[needed] and not (deletes and cred in NO_DELETE)
        return (200, None) if allowed else (403, "DENIED")  # the same rule as /v2/ (README: Access)
    if route == "create":
        return (201, None) if role == "admin" and writes else (403, "DENIED")
    if route == "storage":
        return (200, None) if cred != "outsider" else (403, "DENIED")  # any role in the workspace
    return (200, None) if role == "admin" and writes else (403, "DENIED")  # gc


def fresh_package(registry: RegistryProcess, repository: str = "web-app") -> str:
    """A package of its own for each case (deletes are destructive), with tag v1 pushed."""
    name = "m-" + uuid.uuid4().hex[:10]
    r = requests.post(f"{registry.url}/api/workspaces/acme/packages", json={"name": name, "repository": repository},
                      auth=("boss", TOKENS["boss"]), timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    FreshClient(registry, f"acme/{name}", user="boss").push_image("v1", [os.urandom(1000)])
    return name


def api_headers(world: World, cred: str) -> dict[str, str]:
    if cred == "none":
        return {}
    if cred == "wrong":
        return {"Authorization": basic("boss", "not-the-token")}
    if cred == "bearer":
        return {"Authorization": f"Bearer {bearer_for(world.main, 'boss', TOKENS['boss'], APP)}"}
    if cred == "expired":
        return {"Authorization": f"Bearer {world.expired[APP]}"}
    if cred == "globex":
        return {"Authorization": basic("pipelines", GLOBEX_TOKEN)}
    if cred == "pipeline-expired":
        return {"Authorization": basic(*world.pipeline["pipeline-expired"])}
    return {"Authorization": basic(*logins(world)[cred])}


def api_request(world: World, route: str, cred: str, package: str) -> requests.Response:
    registry = world.of(cred)
    method, template = API_ROUTES[route]
    body = {"name": "c-" + uuid.uuid4().hex[:10], "repository": "web-app"} if route == "create" else None
    return send(method, registry.url + template.format(pkg=package), api_headers(world, cred), json=body)


@pytest.mark.parametrize("cred", API_CREDS)
@pytest.mark.parametrize("route", list(API_ROUTES))
def test_management_api_route_answers_as_the_permission_table_says(world, route, cred):
    registry = world.of(cred)
    package = fresh_package(registry)
    status, code = expected_api(route, cred)
    r = api_request(world, route, cred, package)
    assert r.status_code == status, (route, cred, r.status_code, r.text)
    if code is not None:
        assert error_codes(r) == [code], (route, cred, r.text)
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    # What a refused request did not do, and what an allowed one did.
    details = requests.get(f"{registry.url}/api/workspaces/acme/packages/{package}", auth=("boss", TOKENS["boss"]),
                           timeout=TIMEOUT)
    if route == "delete image" and status == 200:
        assert details.status_code == 404
    else:
        assert details.status_code == 200
        tags = [t["name"] for t in details.json()["tags"]]
        assert tags == ([] if route == "delete tag" and status == 200 else ["v1"])
    if route == "list" and status == 200:
        listed = [p["name"] for p in r.json()["packages"]]
        assert (package in listed) == (ROLE_ON_WEB_APP[cred] is not None)


@pytest.mark.parametrize("route", list(PACKAGE_ROUTES))
@pytest.mark.parametrize("cred, repository", [("outsider", "web-app"), ("reader", "tools"), ("email-read", "tools")])
def test_management_api_hides_packages_a_member_cannot_see(world, route, cred, repository):
    hidden = fresh_package(world.main, repository)
    existing, missing = api_request(world, route, cred, hidden), api_request(world, route, cred, "no-such-package")
    assert existing.status_code == 403 and error_codes(existing) == ["DENIED"]
    assert error_message(existing) == GENERIC_DENIED
    assert answer(existing, hidden, "no-such-package") == answer(missing, hidden, "no-such-package")


# -- upload sessions across workspaces (members and repositories: test_registry_limits.py) --
def test_an_upload_session_cannot_be_used_from_another_workspace(world):
    owner = Client(world.main, APP)
    location = owner.start_upload()
    upload_id = location.rsplit("/", 1)[1]
    assert owner.request("PATCH", location, data=b"owner's part").status_code == 202
    # The same username in globex, with globex's credentials, on its own package: the session is unknown there.
    globex = Client(world.main, "globex/site-image", user="pipelines", secret=GLOBEX_TOKEN)
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = globex.request(method, f"blobs/uploads/{upload_id}", data=b"evil", params={"digest": digest_of(b"evil")})
        assert r.status_code == 404 and error_codes(r) == ["BLOB_UPLOAD_UNKNOWN"], method
        # ... and on acme's path its token grants nothing.
        r = globex.request(method, world.main.url + location, data=b"evil", params={"digest": digest_of(b"evil")})
        assert r.status_code == 401, method
    r = owner.request("PUT", location, params={"digest": digest_of(b"owner's part")})
    assert r.status_code == 201, r.text
    assert owner.get_blob(digest_of(b"owner's part")).content == b"owner's part"


# -- secrets ------------------------------------------------------------------------------
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}")


def secret_forms(world: World) -> list[str]:
    forms = []
    for user, secret in [*TOKENS.items(), ("pipelines", GLOBEX_TOKEN), (EMAIL, READ_SCOPED_TOKEN),
                         *world.pipeline.values()]:
        forms += [secret, base64.b64encode(f"{user}:{secret}".encode()).decode()]
    return forms


def test_no_token_in_any_response_or_in_the_debug_log(world, docker_config, image_factory, docker_refs):
    registry = world.main
    # A run of logins and pushes: docker CLI, raw clients of every member, the password grant, failed logins.
    docker_login(registry, "pipelines")
    pushed = docker_push(image_factory(layers=[50_000]), f"{registry.host}/{APP}:leak-check", docker_refs)
    assert pushed.returncode == 0, pushed.stderr
    for user in ("pipelines", "boss"):
        FreshClient(registry, APP, user=user).push_image(f"by-{user}", [os.urandom(2000)])
    assert verify_tagged_image(FreshClient(registry, APP, user="reader", actions="pull"), "leak-check") == 2
    r = send("POST", f"{registry.url}/token", data={"grant_type": "password", "username": "boss",
                                                   "password": TOKENS["boss"], "scope": f"repository:{APP}:pull"})
    assert r.status_code == 200
    ISSUED.append(r.json()["token"])
    assert send("GET", f"{registry.url}/token", auth=("boss", TOKENS["reader"])).status_code == 401
    assert send("GET", f"{registry.url}/api/workspaces/acme/packages", auth=("boss", TOKENS["boss"])).status_code == 200
    # Every route once more with a few credentials, so the check has answers to look at even when run alone.
    for route in V2_ROUTES:
        for cred in ("pipelines", "outsider", "globex", "none"):
            v2_request(world, route, cred, APP)
    package = fresh_package(registry)
    for route in API_ROUTES:
        for cred in ("reader", "wrong"):
            api_request(world, route, cred, package)

    assert len(SEEN) > 80 and ISSUED, "nothing to check"
    secrets = secret_forms(world)
    for r in SEEN:
        text = r.text + json.dumps(dict(r.headers))
        assert not [s for s in secrets if s in text], (r.request.method, r.url)
        if not r.url.split("?")[0].endswith("/token"):  # the token endpoint hands out the token it issues
            assert not JWT_RE.search(text), (r.request.method, r.url)
            assert not [t for t in ISSUED if t in text], (r.request.method, r.url)
    for reg in (world.main, world.short):
        log = reg.log()
        assert "DEBUG" in log or "INFO" in log, "no log to check"
        assert not [s for s in secrets if s in log]
        assert not [t for t in ISSUED if t in log]
        assert not JWT_RE.search(log)
