"""Immutable tags end to end, against the emulator as a real process: the rules from the config and from
the management API (and what survives a restart), docker and skopeo pushing over an immutable tag
(refused, the message, nothing changed) and again with the same digest (accepted), deletes by each role
through the API and the pages, and two pushes racing for a new immutable tag (exactly one is kept).
The workspace admin is dev@example.com (API tokens); boss administers both repositories but is not one.
"""
from __future__ import annotations

import copy
import signal
import subprocess
import threading

import pytest
import requests

from harness.accounts import EMAIL, READ_SCOPED_TOKEN, TOKENS, default_config
from harness.ui_client import UiClient
from test.helpers.oci_client import DOCKER_MANIFEST, Client, digest_of, docker, docker_login, image_manifest, skopeo

APP = "acme/my-container-app"
SETTINGS = "/workspaces/acme/container-settings"
RELEASES = {"name": "releases", "pattern": r"^v\d+\.\d+\.\d+$"}
PRODUCTION = {"name": "production", "pattern": "^prod$"}
ROUNDS = 25  # of the race between real HTTP clients
PUSHERS = 4


def immutable_config(immutable_tags: dict | None = None) -> dict:
    config = copy.deepcopy(default_config())
    config["workspaces"]["acme"]["admins"] = [EMAIL]
    if immutable_tags is not None:
        config["workspaces"]["acme"]["immutable_tags"] = immutable_tags
    return config


def api(registry, method: str, path: str, user: str, secret: str | None = None, **kwargs) -> requests.Response:
    return requests.request(method, f"{registry.url}/api{path}", auth=(user, secret or TOKENS[user]), timeout=30,
                            **kwargs)


def error(response: requests.Response) -> tuple[int, str, str]:
    first = response.json()["errors"][0]
    return response.status_code, first["code"], first["message"]


def tag_digest(registry, tag: str) -> str | None:
    r = api(registry, "GET", f"/workspaces/acme/packages/my-container-app/tags/{tag}", "boss")
    return r.json()["digest"] if r.status_code == 200 else None


def package_state(registry) -> dict:
    """The tags (name -> digest) and the manifests the package holds."""
    r = api(registry, "GET", "/workspaces/acme/packages/my-container-app", "boss")
    assert r.status_code == 200, r.text
    details = r.json()
    return {"tags": {t["name"]: t["digest"] for t in details["tags"]},
            "manifests": sorted(m["digest"] for m in details.get("manifests", []))}


def refused_words(tag: str, held: str, rule: dict | None) -> str:
    why = ("the workspace protects all tags" if rule is None
           else f"the workspace's rule '{rule['name']}' ({rule['pattern']}) protects it")
    return (f"The tag '{tag}' of {APP} is immutable: {why}. It holds {held} and cannot be overwritten; "
            "push a new tag, or ask a workspace admin.")


class TestTheSettingsThroughTheApi:
    def test_any_member_reads_them_and_pipeline_credentials_do_not(self, registry_factory):
        registry = registry_factory(immutable_config({"protect": "some", "rules": [RELEASES]}))
        for user in ("reader", "outsider", "boss", "pipelines"):
            r = api(registry, "GET", SETTINGS, user)
            assert r.status_code == 200 and r.json() == {"protect": "some", "rules": [RELEASES]}, (user, r.text)
        assert api(registry, "GET", SETTINGS, EMAIL, READ_SCOPED_TOKEN).status_code == 200
        assert api(registry, "GET", SETTINGS.replace("acme", "globex"), "boss").status_code == 401
        user, token = registry.pipeline_credentials("web-app")
        assert error(api(registry, "GET", SETTINGS, user, token)) == (
            403, "DENIED", "reading the Container settings is for the workspace's members; "
                           "pipeline credentials are not one")

    def test_only_a_workspace_admin_changes_them_and_every_problem_is_listed(self, registry_factory):
        registry = registry_factory(immutable_config())
        assert api(registry, "GET", SETTINGS, "reader").json() == {"protect": "none", "rules": []}
        wanted = {"protect": "some", "rules": [RELEASES, PRODUCTION]}
        for user in ("boss", "pipelines", "reader"):
            assert error(api(registry, "PUT", SETTINGS, user, json=wanted)) == (
                403, "DENIED", f"changing the Container settings needs a workspace admin of acme (admins: {EMAIL}); "
                               f"user '{user}' is not one")
        status, code, message = error(api(registry, "PUT", SETTINGS, EMAIL, READ_SCOPED_TOKEN, json=wanted))
        assert (status, code) == (403, "DENIED") and "write:package:bitbucket" in message
        bad = {"protect": "some", "rules": [{"name": "ahead", "pattern": "^(?=v)"}, {"name": "", "pattern": "x" * 101},
                                            *[{"name": f"r{i}", "pattern": f"^r{i}$"} for i in range(6)]]}
        r = api(registry, "PUT", SETTINGS, EMAIL, json=bad)
        assert (r.status_code, r.json()["errors"][0]["code"]) == (400, "INVALID_REQUEST")
        problems = r.json()["errors"][0]["detail"]["problems"]
        assert problems == [
            "rules has 8 rules; at most 7",
            "rules[0].pattern: RE2 does not accept the pattern '^(?=v)': invalid perl operator: (?=",
            "rules[1].name: a rule needs a name",
            "rules[1].pattern: the pattern has 101 characters; at most 100",
        ]
        assert r.json()["errors"][0]["message"].startswith("the immutable tag settings have 4 problem(s): rules has 8")
        assert api(registry, "PUT", SETTINGS, EMAIL, data=b"{nope").status_code == 400
        assert api(registry, "GET", SETTINGS, "reader").json() == {"protect": "none", "rules": []}  # unchanged
        r = api(registry, "PUT", SETTINGS, EMAIL, json=wanted)
        assert r.status_code == 200 and r.json() == wanted
        assert api(registry, "GET", SETTINGS, "reader").json() == wanted

    def test_rules_set_through_the_api_bind_at_once_and_survive_a_killed_registry(self, registry_factory):
        registry = registry_factory(immutable_config())
        client = Client(registry, APP)
        first, _ = client.push_image("prod", [b"one"])
        client.push_image("prod", [b"two"])  # not protected yet: it moves
        held = tag_digest(registry, "prod")
        assert held != first
        assert api(registry, "PUT", SETTINGS, EMAIL, json={"protect": "some", "rules": [PRODUCTION]}).status_code == 200
        body = image_manifest(client, [b"three"])
        assert error(client.put_manifest("prod", body, DOCKER_MANIFEST)) == (
            400, "TAG_INVALID", refused_words("prod", held, PRODUCTION))
        registry.stop(signal.SIGKILL)  # acknowledged, so kept
        registry.start()
        assert api(registry, "GET", SETTINGS, "reader").json() == {"protect": "some", "rules": [PRODUCTION]}
        assert "changed through the API" in registry.log()
        client = Client(registry, APP)
        assert client.put_manifest("prod", body, DOCKER_MANIFEST).status_code == 400
        assert tag_digest(registry, "prod") == held


@pytest.fixture
def protected(registry_factory):
    """The emulator with the releases and production rules in its config, and boss logged in to docker."""
    return registry_factory(immutable_config({"protect": "some", "rules": [RELEASES, PRODUCTION]}))


class TestClientsPushingOverAnImmutableTag:
    def test_docker_push_is_refused_with_the_rule_and_nothing_changes_then_the_same_image_passes(
            self, protected, image_factory, docker_config, docker_refs):
        docker_login(protected, "boss")
        remote = f"{protected.host}/{APP}:v1.0.0"
        first, second = image_factory([20_000]), image_factory([30_000])
        for local in (first, second):
            assert docker("tag", local, remote).returncode == 0
            docker_refs.append(remote)
            pushed = docker("push", remote)
            if local == first:
                assert pushed.returncode == 0, pushed.stderr
                held = tag_digest(protected, "v1.0.0")
                before = package_state(protected)
        assert pushed.returncode != 0
        assert f"tag invalid: {refused_words('v1.0.0', held, RELEASES)}" in pushed.stderr
        assert package_state(protected) == before  # the tag, and no orphaned manifest
        assert docker("tag", first, remote).returncode == 0
        again = docker("push", remote)
        assert again.returncode == 0, again.stderr
        assert package_state(protected) == before

    def test_skopeo_copy_is_refused_and_the_same_digest_is_accepted(self, protected, image_factory):
        creds = f"pipelines:{TOKENS['pipelines']}"
        first, second = image_factory([10_000]), image_factory([12_000])
        target = f"docker://{protected.host}/{APP}:prod"

        def copy_(local: str) -> subprocess.CompletedProcess:
            return skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"docker-daemon:{local}", target)

        assert copy_(first).returncode == 0
        held, before = tag_digest(protected, "prod"), package_state(protected)
        refused = copy_(second)
        assert refused.returncode != 0
        assert f"tag invalid: {refused_words('prod', held, PRODUCTION)}" in refused.stderr
        assert package_state(protected) == before
        again = copy_(first)
        assert again.returncode == 0, again.stderr
        assert package_state(protected) == before
        # A tag no rule protects moves as before.
        other = f"docker://{protected.host}/{APP}:latest"
        for local in (first, second):
            r = skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"docker-daemon:{local}", other)
            assert r.returncode == 0, r.stderr
        assert tag_digest(protected, "latest") != held

    def test_a_refused_push_changes_no_storage_figure_but_the_uploaded_blobs(self, protected):
        client = Client(protected, APP)
        client.push_image("v2.0.0", [b"a" * 1000])
        body = image_manifest(client, [b"b" * 2000])  # blobs uploaded, as every client does before the manifest
        before = api(protected, "GET", "/workspaces/acme/storage", "boss").json()
        assert client.put_manifest("v2.0.0", body, DOCKER_MANIFEST).status_code == 400
        after = api(protected, "GET", "/workspaces/acme/storage", "boss").json()
        for key in ("stored_bytes", "blobs", "manifests", "reclaimable_bytes"):
            assert after[key] == before[key], key
        # Those blobs are unreferenced, as after any abandoned push: the next collection frees them.
        collected = api(protected, "POST", "/workspaces/acme/gc", "boss").json()
        assert collected["blobs_deleted"] == 2 and tag_digest(protected, "v2.0.0") is not None


def race_put(start: threading.Barrier, answers: list, i: int, client: Client, tag: str, body: bytes) -> None:
    start.wait()
    answers[i] = client.put_manifest(tag, body, DOCKER_MANIFEST)


class TestTheRace:
    def test_concurrent_pushes_to_a_new_immutable_tag_keep_exactly_one(self, protected):
        """Each round, PUSHERS threads PUT different manifests under the same new tag at the same moment."""
        clients = [Client(protected, APP) for _ in range(PUSHERS)]
        for round_ in range(ROUNDS):
            tag = f"v9.{round_}.0"
            bodies = [image_manifest(c, [f"{round_}-{i}".encode()]) for i, c in enumerate(clients)]
            start = threading.Barrier(PUSHERS, timeout=30)
            answers: list[requests.Response | None] = [None] * PUSHERS

            threads = [threading.Thread(target=race_put, args=(start, answers, i, clients[i], tag, bodies[i]))
                       for i in range(PUSHERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not any(t.is_alive() for t in threads)
            statuses = sorted(a.status_code for a in answers)
            assert statuses == [201] + [400] * (PUSHERS - 1), (round_, [a.text for a in answers])
            winner = next(i for i, a in enumerate(answers) if a.status_code == 201)
            assert tag_digest(protected, tag) == digest_of(bodies[winner])
            for a in answers:
                if a.status_code == 400:
                    assert error(a)[1] == "TAG_INVALID" and a.json()["errors"][0]["detail"]["digest"] == \
                        digest_of(bodies[winner])
        state = package_state(protected)
        assert len([t for t in state["tags"] if t.startswith("v9.")]) == ROUNDS
        assert len(state["manifests"]) == ROUNDS  # the losers' manifests were never stored

    def test_concurrent_skopeo_copies_keep_exactly_one(self, protected, image_factory):
        creds = f"pipelines:{TOKENS['pipelines']}"
        images = [image_factory([8_000]) for _ in range(2)]
        for round_ in range(3):
            target = f"docker://{protected.host}/{APP}:v8.{round_}.0"
            procs = [subprocess.Popen(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", creds,
                                       f"docker-daemon:{image}", target], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for image in images]
            results = [(p.wait(120), p.stderr.read()) for p in procs]
            codes = sorted(code for code, _ in results)
            assert codes[0] == 0 and codes[1] != 0, results
            assert "is immutable" in next(err for code, err in results if code != 0)


class TestDeletes:
    @pytest.fixture
    def pushed(self, protected):
        client = Client(protected, APP)
        for tag in ("v1.0.0", "prod", "latest"):
            client.push_image(tag, [tag.encode()])
        return protected

    def test_through_the_api_by_each_role(self, pushed):
        tag_path = "/workspaces/acme/packages/my-container-app/tags/"
        image_path = "/workspaces/acme/packages/my-container-app"
        for user in ("pipelines", "boss"):  # may delete tags (write, admin on web-app), not immutable ones
            assert error(api(pushed, "DELETE", tag_path + "prod", user)) == (
                403, "DENIED", f"The tag 'prod' of {APP} is immutable (the workspace's rule 'production' (^prod$)); "
                               "only a workspace admin can delete it.")
        assert error(api(pushed, "DELETE", image_path, "boss")) == (
            403, "DENIED",
            f"The image {APP} holds immutable tags (prod, v1.0.0); only a workspace admin can delete it.")
        assert api(pushed, "DELETE", tag_path + "prod", "reader").status_code == 403
        user, token = pushed.pipeline_credentials("web-app")
        assert api(pushed, "DELETE", tag_path + "prod", user, token).status_code == 403
        status, _, message = error(api(pushed, "DELETE", tag_path + "prod", EMAIL, READ_SCOPED_TOKEN))
        assert status == 403 and "write:package:bitbucket" in message
        assert set(package_state(pushed)["tags"]) == {"v1.0.0", "prod", "latest"}
        assert api(pushed, "DELETE", tag_path + "latest", "pipelines").status_code == 200  # a mutable tag
        assert api(pushed, "DELETE", tag_path + "prod", EMAIL).status_code == 200  # the workspace admin
        assert api(pushed, "DELETE", image_path, EMAIL).status_code == 200

    def test_through_the_pages(self, pushed):
        writer = UiClient(pushed.url)
        assert writer.login("pipelines").status_code == 200
        image = writer.get("/ui/acme/packages/my-container-app").text
        assert image.count('class="badge immutable"') == 2  # v1.0.0 and prod
        assert 'aria-label="More actions for latest"' in image  # the controls shown: the mutable tag's only
        assert 'aria-label="More actions for prod"' not in image and "More actions for v1.0.0" not in image
        page = "/ui/acme/packages/my-container-app/tags/v1.0.0"
        assert "only a workspace admin can delete it" in writer.get(page).text
        r = writer.get(page + "?confirm=delete-tag")
        assert r.status_code == 403 and "only a workspace admin can delete it." in r.text
        r = writer.post(page, {"action": "delete", "csrf_token": writer.csrf(page)})
        assert r.status_code == 403
        assert "only a workspace admin can delete it." in r.text and "releases" in r.text
        r = writer.post("/ui/acme/packages/my-container-app/tags/latest",
                        {"action": "delete", "csrf_token": writer.csrf(page)})
        assert r.status_code == 200 and "Tag latest deleted" in r.text
        boss = UiClient(pushed.url)
        assert boss.login("boss").status_code == 200
        r = boss.post("/ui/acme/packages/my-container-app", {"action": "delete", "csrf_token": boss.csrf(page)})
        assert r.status_code == 403 and "holds immutable tags (prod, v1.0.0)" in r.text
        admin = UiClient(pushed.url)
        assert admin.login(EMAIL).status_code == 200
        assert 'aria-label="More actions for prod"' in admin.get("/ui/acme/packages/my-container-app").text
        r = admin.post(page, {"action": "delete", "csrf_token": admin.csrf(page)})
        assert r.status_code == 200 and "Tag v1.0.0 deleted" in r.text
        assert set(package_state(pushed)["tags"]) == {"prod"}


class TestEveryDockerEngine:
    def test_docker_push_over_an_immutable_tag_from_each_engine(self, engine, registry_factory, tmp_path,
                                                               docker_config):
        """Docker 20.10 and 26 (classic store) quote the registry's words; 26 with the containerd store quotes
        only the status. Either way nothing changes, and the same image again passes."""
        registry = registry_factory(immutable_config({"protect": "some", "rules": [RELEASES]}))
        login = engine.docker("login", registry.host, "-u", "pipelines", "--password-stdin",
                              input=TOKENS["pipelines"])
        assert login.returncode == 0, login.stderr
        remote = f"{registry.host}/{APP}:v3.0.0"
        first, second = (engine.build(tmp_path / name, [15_000]) for name in ("first", "second"))

        def push(local: str) -> subprocess.CompletedProcess:
            assert engine.docker("tag", local, remote).returncode == 0
            engine.built.append(remote)
            return engine.docker("push", remote, timeout=300)

        pushed = push(first)
        assert pushed.returncode == 0, pushed.stderr
        held, before = tag_digest(registry, "v3.0.0"), package_state(registry)
        refused = push(second)
        assert refused.returncode != 0
        if engine.containerd_store:
            assert f"/v2/{APP}/manifests/v3.0.0: 400 Bad Request" in refused.stderr, refused.stderr
        else:
            assert f"tag invalid: {refused_words('v3.0.0', held, RELEASES)}" in refused.stderr, refused.stderr
        assert package_state(registry) == before
        again = push(first)
        assert again.returncode == 0, again.stderr
        assert package_state(registry) == before

    """Docker 26 with the containerd image store puts each child manifest under the tag before the index
    (test_engines.py), so under "All tags are protected" the first push of a new tag refuses itself: the
    first child takes the tag, and the next manifest under it would move it. crg.apkg.io would do the same:
    there is no public evidence of an exception for it."""

    def test_a_first_push_of_an_index_under_all_tags_protected(self, engine_26_containerd, registry_factory, tmp_path,
                                                               docker_config):
        registry = registry_factory(immutable_config({"protect": "all"}))
        daemon = engine_26_containerd
        local = daemon.build(tmp_path / "ctx", [20_000], attestations=True)
        login = daemon.docker("login", registry.host, "-u", "pipelines", "--password-stdin", input=TOKENS["pipelines"])
        assert login.returncode == 0, login.stderr
        remote = f"{registry.host}/{APP}:v1"
        assert daemon.docker("tag", local, remote).returncode == 0
        daemon.built.append(remote)
        index = daemon.image_id(local)
        for _ in range(2):  # a re-run refuses itself the same way
            pushed = daemon.docker("push", remote, timeout=300)
            assert pushed.returncode != 0
            # containerd's pusher quotes the status only, not the registry's message.
            assert f"/v2/{APP}/manifests/v1: 400 Bad Request" in pushed.stderr, pushed.stderr
        held = tag_digest(registry, "v1")
        reader = Client(registry, APP, user="reader", actions="pull")
        first = reader.get_manifest("v1")
        assert first.headers["Docker-Content-Digest"] == held != index
        assert first.json()["mediaType"] == "application/vnd.oci.image.manifest.v1+json"  # one platform's image
        assert reader.get_manifest(index).status_code == 404  # the index never went up
        assert len(package_state(registry)["manifests"]) == 1  # nor the attestation
