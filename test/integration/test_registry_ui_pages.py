"""The registry's pages over plain HTTP: login, session cookie, who sees what, forms refused without
the session's CSRF token or the role, filter and paging. The browser flows are in test_registry_ui_browser.py."""
from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import jwt
import pytest

from harness.accounts import EMAIL, READ_SCOPED_TOKEN, default_config
from harness.registry_process import RegistryProcess
from harness.ui_client import UiClient, csrf_of
from registry.ui.session import COOKIE, KEY_FILE, SessionCodec
from test.helpers.oci_client import OCI_INDEX, OCI_MANIFEST, Client, digest_of, image_manifest, index_manifest


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = RegistryProcess(tmp_path_factory.mktemp("ui-pages") / "registry", default_config()).start()
    yield reg
    reg.stop()


def ui(registry: RegistryProcess, user: str | None = None, token: str | None = None) -> UiClient:
    client = UiClient(registry.url)
    if user:
        assert client.login(user, token).status_code == 200
    return client


def package_names(html: str) -> list[str]:
    return re.findall(r'<a class="name" href="/ui/acme/packages/([^"]+)">', html)


class TestLogin:
    def test_cookie_is_signed_httponly_samesite_and_pages_send_security_headers(self, registry):
        client = UiClient(registry.url)
        r = client.get("/ui/login")
        cookie = r.headers["Set-Cookie"]
        assert cookie.startswith(COOKIE + "=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Path=/ui" in cookie
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Frame-Options"] == "DENY"
        r = client.post("/ui/login", {"username": "boss", "token": "boss-token-27de", "csrf_token": csrf_of(r.text)},
                        allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/ui/acme/packages"
        value = client.http.cookies[COOKIE]
        claims = jwt.decode(value, options={"verify_signature": False})
        assert claims["sub"] == "boss" and "boss-token-27de" not in value
        assert claims["exp"] - time.time() > 3600  # a working day, not forever
        assert claims["exp"] - time.time() <= 8 * 3600 + 5

    def test_wrong_token_unknown_user_and_missing_csrf_are_refused(self, registry):
        client = UiClient(registry.url)
        r = client.login("boss", "not-the-token")
        assert r.status_code == 401 and "Invalid username or token." in r.text
        r = client.post("/ui/login", {"username": "nobody", "token": "x", "csrf_token": client.csrf("/ui/login")})
        assert r.status_code == 401
        r = client.post("/ui/login", {"username": "boss", "token": "boss-token-27de"})
        assert r.status_code == 403 and "CSRF" in r.text
        assert client.get("/ui/acme/packages", allow_redirects=False).status_code == 303

    def test_logged_out_pages_send_to_login_and_back(self, registry):
        client = UiClient(registry.url)
        assert client.get("/ui", allow_redirects=False).headers["Location"] == "/ui/"
        assert client.get("/ui/", allow_redirects=False).headers["Location"] == "/ui/login"
        r = client.get("/ui/acme/packages/my-container-app", allow_redirects=False)
        assert r.status_code == 303 and r.headers["Location"] == "/ui/login?next=/ui/acme/packages/my-container-app"
        form = client.get(r.headers["Location"])
        r = client.post("/ui/login", {"username": "reader", "token": "reader-token-93ab",
                                      "csrf_token": csrf_of(form.text), "next": "/ui/acme/packages/my-container-app"},
                        allow_redirects=False)
        assert r.headers["Location"] == "/ui/acme/packages/my-container-app"

    @pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/api/workspaces/acme/packages"])
    def test_login_never_sends_elsewhere(self, registry, target):
        client = UiClient(registry.url)
        r = client.post("/ui/login", {"username": "boss", "token": "boss-token-27de",
                                      "csrf_token": client.csrf("/ui/login"), "next": target}, allow_redirects=False)
        assert r.headers["Location"] == "/ui/acme/packages"

    def test_tampered_and_expired_cookies_are_logged_out(self, registry):
        client = ui(registry, "reader")
        value = client.http.cookies[COOKIE]
        header, payload, signature = value.split(".")
        forged = jwt.encode({**jwt.decode(value, options={"verify_signature": False}),
                             "roles": {"acme": {"web-app": "admin", "tools": "admin"}}},
                            "guessed-key-" * 4, algorithm="HS256")
        expired = SessionCodec((registry.root / KEY_FILE).read_bytes(), ttl_seconds=-1).logged_in(
            "boss", {"acme": {"tools": "admin"}})
        for cookie in (forged, f"{header}.{payload}.{signature[::-1]}",
                       SessionCodec((registry.root / KEY_FILE).read_bytes()).encode(expired)):
            other = UiClient(registry.url)
            other.http.cookies.set(COOKIE, cookie, path="/ui")
            assert other.get("/ui/acme/packages", allow_redirects=False).status_code == 303

    def test_sessions_survive_a_restart(self, tmp_path):
        reg = RegistryProcess(tmp_path / "registry", default_config()).start()
        try:
            client = ui(reg, "reader")
            reg.restart()
            client.base = reg.url
            assert client.get("/ui/acme/packages", allow_redirects=False).status_code == 200
        finally:
            reg.stop()

    def test_logout_needs_the_csrf_token_and_ends_the_session(self, registry):
        client = ui(registry, "reader")
        assert client.post("/ui/logout", {}).status_code == 403
        assert client.post("/ui/logout", {"csrf_token": "x" * 43}).status_code == 403
        assert client.get("/ui/acme/packages", allow_redirects=False).status_code == 200
        r = client.post("/ui/logout", {"csrf_token": client.csrf()})
        assert r.url.endswith("/ui/login") and "You are logged out." in r.text
        assert client.get("/ui/acme/packages", allow_redirects=False).status_code == 303


class TestWhoSeesWhat:
    def test_lists_show_only_readable_packages(self, registry):
        assert package_names(ui(registry, "reader").get("/ui/acme/packages").text) == ["my-container-app", "other-app"]
        assert package_names(ui(registry, "boss").get("/ui/acme/packages").text) == ["my-container-app", "other-app",
                                                                                    "tool-image"]
        r = ui(registry, "outsider").get("/ui/acme/packages")
        assert r.status_code == 200 and package_names(r.text) == [] and "No images" in r.text

    def test_project_and_repository_lists(self, registry):
        boss = ui(registry, "boss")
        assert package_names(boss.get("/ui/acme/projects/OPS/packages").text) == ["tool-image"]
        assert package_names(boss.get("/ui/acme/repositories/web-app/packages").text) == ["my-container-app",
                                                                                         "other-app"]
        assert boss.get("/ui/acme/projects/NOPE/packages").status_code == 404
        assert boss.get("/ui/acme/repositories/nope/packages").status_code == 404

    def test_a_hidden_package_looks_like_a_missing_one(self, registry):
        reader = ui(registry, "reader")
        hidden, missing = reader.get("/ui/acme/packages/tool-image"), reader.get("/ui/acme/packages/no-such-image")
        assert hidden.status_code == missing.status_code == 404
        assert "Not found" in hidden.text and "tool-image" in hidden.text

    def test_another_workspace_is_not_found(self, registry):
        assert ui(registry, "boss").get("/ui/globex/packages").status_code == 404
        assert ui(registry, "boss").get("/ui/nope/packages").status_code == 404

    def test_create_package_is_for_admins_only(self, registry):
        writer = ui(registry, "pipelines")
        assert "/create/package" not in writer.get("/ui/acme/packages").text
        assert writer.get("/ui/acme/create/package").status_code == 403
        r = writer.post("/ui/acme/create/package",
                        {"name": "sneaky", "repository": "web-app", "csrf_token": writer.csrf()})
        assert r.status_code == 403
        assert registry.api("GET", "/workspaces/acme/packages/sneaky").status_code == 404

    def test_create_package_form_errors_and_success(self, registry):
        boss = ui(registry, "boss")
        form = boss.get("/ui/acme/create/package")
        assert '<option value="tools"' in form.text and '<option value="web-app"' in form.text
        csrf = csrf_of(form.text)
        r = boss.post("/ui/acme/create/package", {"name": "Bad Name", "repository": "web-app", "csrf_token": csrf})
        assert r.status_code == 400 and "lowercase letters" in r.text and 'value="Bad Name"' in r.text
        r = boss.post("/ui/acme/create/package", {"name": "other-app", "repository": "web-app", "csrf_token": csrf})
        assert r.status_code == 409 and "already exists" in r.text
        r = boss.post("/ui/acme/create/package", {"name": "made-here", "repository": "nope", "csrf_token": csrf})
        assert r.status_code == 400
        r = boss.post("/ui/acme/create/package", {"name": "made-here", "repository": "tools"})
        assert r.status_code == 403
        r = boss.post("/ui/acme/create/package", {"name": "made-here", "repository": "tools", "csrf_token": csrf})
        assert urlsplit(r.url).path == "/ui/acme/packages/made-here" and "Package made-here created" in r.text
        assert f"docker push {registry.host}/acme/made-here:latest" in r.text and 'IMAGE_NAME: "made-here"' in r.text
        assert registry.api("GET", "/workspaces/acme/packages/made-here").json()["repository"] == "tools"

    def test_storage_page_and_cleanup_button_by_role(self, registry):
        reader, boss = ui(registry, "reader"), ui(registry, "boss")
        page = reader.get("/ui/acme/storage")
        assert page.status_code == 200 and "Stored" in page.text and "Run cleanup now" not in page.text
        collect = {"action": "collect", "csrf_token": csrf_of(page.text)}
        assert reader.post("/ui/acme/storage", collect).status_code == 403
        assert ui(registry, "outsider").get("/ui/acme/storage").status_code == 403
        page = boss.get("/ui/acme/storage")
        r = boss.post("/ui/acme/storage", {"action": "collect", "csrf_token": csrf_of(page.text)})
        assert r.status_code == 200 and "Cleanup finished: freed" in r.text


class TestFilterAndPaging:
    def test_filter_and_pages_of_a_long_list(self, registry):
        for i in range(120):
            created = registry.api("POST", "/workspaces/acme/packages",
                                   json={"name": f"paged-{i:03d}", "repository": "tools"})
            assert created.status_code == 201
        boss, reader = ui(registry, "boss"), ui(registry, "reader")
        first = boss.get("/ui/acme/packages", params={"q": "paged-"})
        assert "120 images matching" in first.text
        assert package_names(first.text) == [f"paged-{i:03d}" for i in range(50)]
        assert 'href="?q=paged-&amp;page=2"' in first.text and "Page 1 of 3" in first.text
        last = boss.get("/ui/acme/packages", params={"q": "paged-", "page": "3"})
        assert package_names(last.text) == [f"paged-{i:03d}" for i in range(100, 120)] and 'rel="next"' not in last.text
        assert package_names(boss.get("/ui/acme/packages", params={"q": "paged-", "page": "99"}).text)[0] == "paged-100"
        found = boss.get("/ui/acme/packages", params={"q": "PAGED-11"}).text
        assert package_names(found) == [f"paged-11{i}" for i in range(10)]
        # tools: not the reader's
        assert package_names(reader.get("/ui/acme/packages", params={"q": "paged-"}).text) == []
        page = boss.get("/ui/acme/packages", params={"q": "<script>x"}).text
        assert "<script>x" not in page and "&lt;script&gt;x" in page


class TestImageAndTagPages:
    def test_an_index_shows_its_platforms_and_an_image_its_config(self, registry):
        client = Client(registry, "acme/other-app")
        children = []
        for arch in ("amd64", "arm64"):
            body = image_manifest(client, [arch.encode() * 100], OCI_MANIFEST, ("linux", arch))
            assert client.put_manifest(digest_of(body), body, OCI_MANIFEST).status_code == 201
            children.append((digest_of(body), len(body), OCI_MANIFEST, ("linux", arch)))
        index = index_manifest(OCI_INDEX, children)
        assert client.put_manifest("multi", index, OCI_INDEX).status_code == 201
        single, _ = client.push_image("single", [b"x" * 5000])
        reader = ui(registry, "reader")
        image = reader.get("/ui/acme/packages/other-app")
        assert image.status_code == 200
        assert "linux/amd64, linux/arm64" in image.text and "More actions" not in image.text
        assert f"docker pull {registry.host}/acme/other-app:" in image.text and "Push to this package" not in image.text
        tag = reader.get("/ui/acme/packages/other-app/tags/multi")
        assert OCI_INDEX in tag.text and digest_of(index) in tag.text and "Platforms <span" in tag.text
        assert all(d[:19] in tag.text for d, _, _, _ in children) and "Layers" not in tag.text
        tag = reader.get("/ui/acme/packages/other-app/tags/single")
        assert single in tag.text and "Layers <span class=\"muted\">(1)</span>" in tag.text and "5.0 KB" in tag.text
        assert reader.get("/ui/acme/packages/other-app/tags/nope").status_code == 404


class TestCredentialKinds:
    """The login takes what the management API takes (email usernames with API tokens, pipeline
    credentials), and the pages keep each kind to what its scopes allow, with the API's words."""

    @staticmethod
    def tag(registry, tag: str) -> None:
        Client(registry, "acme/other-app").push_image(tag, [tag.encode() * 100])

    @staticmethod
    def tag_exists(registry, tag: str) -> bool:
        return registry.api("GET", f"/workspaces/acme/packages/other-app/tags/{tag}").status_code == 200

    def delete_tag(self, client: UiClient, tag: str):
        return client.post(f"/ui/acme/packages/other-app/tags/{tag}", {"action": "delete", "csrf_token": client.csrf()})

    def test_email_username_with_a_write_scoped_api_token(self, registry):
        self.tag(registry, "kinds-write")
        dev = ui(registry, EMAIL)
        names = package_names(dev.get("/ui/acme/packages").text)
        assert "other-app" in names and "tool-image" not in names
        page = dev.get("/ui/acme/packages/other-app").text
        assert "More actions for kinds-write" in page and "confirm=delete-image" not in page  # write, not admin
        assert self.delete_tag(dev, "kinds-write").status_code == 200 and not self.tag_exists(registry, "kinds-write")

    def test_a_read_scoped_api_token_sees_but_never_deletes(self, registry):
        self.tag(registry, "kinds-read")
        dev = ui(registry, EMAIL, READ_SCOPED_TOKEN)
        page = dev.get("/ui/acme/packages/other-app")
        assert page.status_code == 200 and "kinds-read" in page.text and "More actions" not in page.text
        confirm = {"confirm": "delete-tag", "tag": "kinds-read"}
        assert dev.get("/ui/acme/packages/other-app", params=confirm).status_code == 403
        r = self.delete_tag(dev, "kinds-read")
        assert r.status_code == 403 and "write:package:bitbucket" in r.text and self.tag_exists(registry, "kinds-read")

    def test_pipeline_credentials_reach_their_repository_and_only_pull_and_push(self, registry):
        self.tag(registry, "kinds-pipe")
        pipe = ui(registry, *registry.pipeline_credentials("web-app"))
        assert "other-app" in package_names(pipe.get("/ui/acme/packages").text)
        assert pipe.get("/ui/acme/packages/tool-image").status_code == 404  # another repository's: not shown
        assert "More actions" not in pipe.get("/ui/acme/packages/other-app").text
        r = self.delete_tag(pipe, "kinds-pipe")
        assert r.status_code == 403 and "pipeline credentials reach only pull and push" in r.text
        assert self.tag_exists(registry, "kinds-pipe")

    def test_expired_pipeline_credentials_are_refused_with_their_reason(self, registry):
        user, token = registry.pipeline_credentials("web-app", ttl=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # bounded: the credentials expire after their one second
            r = UiClient(registry.url).login(user, token)
            if r.status_code != 200:
                break
            time.sleep(0.5)
        assert r.status_code == 401 and "pipeline credentials expired at" in r.text and token not in r.text
