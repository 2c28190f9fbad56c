"""The registry's pages in a real browser (headless Debian Chromium through Selenium), one story in order:
an admin creates a package, the pipe pushes to it, the image and its tags appear, a writer deletes a tag
through More actions > Delete tag > Confirm and `docker pull` of it then fails, a reader sees no delete
control and forged POSTs are refused, an admin deletes the image, and the storage page shows what
cleanup will free and then the space freed. Screenshots go to $UI_SCREENSHOTS_DIR or the tmp dir.
"""
from __future__ import annotations

import calendar
import re
import secrets
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from harness.accounts import TOKENS, default_config
from harness.docker_images import build_image, remove_image
from harness.registry_process import RegistryProcess
from harness.ui_client import UiClient
from test.helpers.browser import go, login, notice
from test.helpers.oci_client import docker
from test.helpers.pipe_runner import pipe_variables, run_pipe

GRACE = 15  # seconds: long enough to see what a collection will free before it runs
PACKAGE = "web-shop"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    config = default_config()
    config["gc"]["grace_seconds"] = GRACE
    reg = RegistryProcess(tmp_path_factory.mktemp("ui-browser") / "registry", config).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def local_image(docker_daemon, tmp_path_factory):
    ref = build_image(f"{PACKAGE}:{secrets.token_hex(4)}", tmp_path_factory.mktemp("ctx"), [300_000, 80_000])
    pulled: list[str] = []
    yield ref, pulled
    remove_image(ref, *pulled)


@pytest.fixture(scope="module")
def docker_config(tmp_path_factory):
    """A private docker CLI config for this module's logins."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
        yield


# -- helpers ---------------------------------------------------------------------------------
def shot(browser: WebDriver, shots: Path, name: str) -> None:
    assert browser.save_screenshot(str(shots / f"{name}.png"))


def tag_rows(browser: WebDriver) -> list[str]:
    return [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.tags a.name")]


def figure_bytes(browser: WebDriver, kind: str) -> int:
    return int(browser.find_element(By.CSS_SELECTOR, f".value.{kind}").get_attribute("title").split()[0])


def more_actions(browser: WebDriver, label: str = "More actions") -> None:
    browser.find_element(By.CSS_SELECTOR, f'summary[aria-label="{label}"]').click()


class TestPagesInABrowser:
    def test_an_admin_creates_a_package(self, registry, browser, shots):
        login(browser, registry, "boss")
        browser.find_element(By.CSS_SELECTOR, "details.create summary").click()
        go(browser, browser.find_element(By.LINK_TEXT, "Package"))
        browser.find_element(By.NAME, "name").send_keys(PACKAGE)
        Select(browser.find_element(By.NAME, "repository")).select_by_value("web-app")
        go(browser, browser.find_element(By.CSS_SELECTOR, "form button.primary"))
        assert browser.current_url == f"{registry.url}/ui/acme/packages/{PACKAGE}"
        assert f"Package {PACKAGE} created, linked to repository web-app" in notice(browser)
        assert "No tags yet" in browser.page_source
        howto = browser.find_element(By.CSS_SELECTOR, "details.howto").text
        assert f"docker push {registry.host}/acme/{PACKAGE}:latest" in howto
        shot(browser, shots, "1-created")

    def test_the_pipe_pushes_and_the_image_and_tags_appear(self, registry, browser, shots, local_image):
        run = run_pipe(pipe_variables(registry.host, local_image[0], TAGS="v1 v2 latest"))
        assert run.returncode == 0, str(run)
        digest = re.search(r"sha256:[0-9a-f]{64}", run.last_line).group(0)

        browser.get(f"{registry.url}/ui/acme/packages")
        row = browser.find_element(By.XPATH, f'//tr[td/a[@class="name" and text()="{PACKAGE}"]]')
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[1:4] == ["web-app", "WEB", "3"] and cells[4].endswith("KB")
        go(browser, row.find_element(By.LINK_TEXT, PACKAGE))
        assert sorted(tag_rows(browser)) == ["latest", "v1", "v2"]
        assert browser.find_element(By.CSS_SELECTOR, "table.tags tbody tr td:nth-child(3)").text == "linux/amd64"
        assert digest[:19] in browser.find_element(By.CSS_SELECTOR, "table.tags").text
        assert browser.find_element(By.CSS_SELECTOR, "pre.snippet button.copy").text == "Copy"  # the script ran (CSP)
        shot(browser, shots, "2-image")
        go(browser, browser.find_element(By.LINK_TEXT, "v1"))
        facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        assert digest in facts and "linux/amd64" in facts
        assert len(browser.find_elements(By.CSS_SELECTOR, "table.list tbody tr")) == 2  # the two layers
        shot(browser, shots, "3-tag")

    def test_a_writer_deletes_a_tag_and_it_can_no_longer_be_pulled(self, registry, browser, shots, local_image,
                                                                   docker_config):
        login(browser, registry, "pipelines")
        browser.get(f"{registry.url}/ui/acme/packages/{PACKAGE}")
        assert not browser.find_elements(By.CSS_SELECTOR, 'summary[aria-label="More actions"]')  # no Delete image
        more_actions(browser, "More actions for v1")
        go(browser, browser.find_element(By.LINK_TEXT, "Delete tag"))
        assert "Delete tag v1?" in browser.find_element(By.CSS_SELECTOR, ".confirm").text
        shot(browser, shots, "4-confirm-delete-tag")
        go(browser, browser.find_element(By.XPATH, '//section[@class="confirm"]//button[text()="Confirm"]'))
        assert "Tag v1 deleted" in notice(browser) and "after cleanup" in notice(browser)
        assert sorted(tag_rows(browser)) == ["latest", "v2"]

        login_r = docker("login", registry.host, "-u", "reader", "--password-stdin", input=TOKENS["reader"], timeout=60)
        assert login_r.returncode == 0, login_r.stderr
        gone = docker("pull", f"{registry.host}/acme/{PACKAGE}:v1", timeout=120)
        assert gone.returncode != 0 and "not found" in (gone.stderr + gone.stdout).lower(), gone.stderr
        local_image[1].append(f"{registry.host}/acme/{PACKAGE}:v2")
        kept = docker("pull", f"{registry.host}/acme/{PACKAGE}:v2", timeout=120)
        assert kept.returncode == 0, kept.stderr

    def test_a_reader_sees_no_delete_control_and_forged_posts_are_refused(self, registry, browser, shots):
        login(browser, registry, "reader")
        for path in (f"/ui/acme/packages/{PACKAGE}", f"/ui/acme/packages/{PACKAGE}/tags/v2"):
            browser.get(registry.url + path)
            assert not browser.find_elements(By.CSS_SELECTOR, "details.more"), path
            assert "Delete" not in browser.find_element(By.TAG_NAME, "main").text, path
        shot(browser, shots, "5-reader-tag")
        browser.get(f"{registry.url}/ui/acme/packages/{PACKAGE}/tags/v2?confirm=delete-tag")
        assert "Not allowed" in browser.find_element(By.TAG_NAME, "h1").text

        reader, writer = UiClient(registry.url), UiClient(registry.url)
        reader.login("reader")
        writer.login("pipelines")
        reader_csrf, writer_csrf = reader.csrf(), writer.csrf()
        tag_url, image_url = f"/ui/acme/packages/{PACKAGE}/tags/v2", f"/ui/acme/packages/{PACKAGE}"
        attempts = [
            (reader, tag_url, reader_csrf),   # the reader's own valid token: the role refuses
            (reader, tag_url, writer_csrf),   # a token of another session
            (reader, tag_url, None),
            (reader, image_url, reader_csrf),
            (writer, tag_url, None),          # a writer could delete, but not without the session's token
            (writer, tag_url, reader_csrf),
            (writer, tag_url, "x" * 43),
        ]
        for client, path, csrf in attempts:
            form = {"action": "delete", **({"csrf_token": csrf} if csrf else {})}
            r = client.post(path, form, allow_redirects=False)
            assert r.status_code == 403, (path, csrf, r.status_code)
            assert "<h1>Not allowed" in r.text
        tags = [t["name"] for t in registry.api("GET", f"/workspaces/acme/packages/{PACKAGE}").json()["tags"]]
        assert sorted(tags) == ["latest", "v2"]

    def test_an_admin_deletes_the_image_and_cleanup_frees_its_space(self, registry, browser, shots, local_image):
        login(browser, registry, "boss")
        # A no-op re-push (a HEAD per layer) restarts the layers' grace period, as a push in progress would.
        pushed_at = time.monotonic()
        run = run_pipe(pipe_variables(registry.host, local_image[0], TAGS="v2 latest"))
        assert run.returncode == 0, str(run)

        browser.get(f"{registry.url}/ui/acme/packages/{PACKAGE}")
        more_actions(browser)
        go(browser, browser.find_element(By.LINK_TEXT, "Delete image"))
        assert f"Delete image {PACKAGE}?" in browser.find_element(By.CSS_SELECTOR, ".confirm").text
        go(browser, browser.find_element(By.XPATH, '//section[@class="confirm"]//button[text()="Confirm"]'))
        assert browser.current_url == f"{registry.url}/ui/acme/packages"
        assert f"Image {PACKAGE} and its 2 tags deleted" in notice(browser) and "after cleanup" in notice(browser)
        assert PACKAGE not in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.name")]

        go(browser, browser.find_element(By.LINK_TEXT, "Storage"))
        stored, reclaimable = figure_bytes(browser, "stored"), figure_bytes(browser, "reclaimable")
        assert time.monotonic() - pushed_at < GRACE, "too slow to see the storage before cleanup"
        assert reclaimable > 380_000  # both layers and the config are unreferenced now
        # The collection the delete started left them to their grace period and comes back when it ends.
        shown = browser.find_element(By.CSS_SELECTOR, ".gc-next").text
        due = calendar.timegm(time.strptime(shown, "%Y-%m-%d %H:%M:%S UTC"))
        assert -2 < due - time.time() <= GRACE + 2
        shot(browser, shots, "6-storage-before-cleanup")

        time.sleep(max(0.0, pushed_at + GRACE + 1 - time.monotonic()))
        go(browser, browser.find_element(By.XPATH, '//button[text()="Run cleanup now"]'))
        assert "Cleanup finished" in notice(browser)
        assert figure_bytes(browser, "reclaimable") == 0
        assert figure_bytes(browser, "stored") == stored - reclaimable
        assert "freed" in browser.find_element(By.CSS_SELECTOR, ".gc-last").text
        shot(browser, shots, "7-storage-after-cleanup")
