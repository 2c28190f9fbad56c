"""The Container settings page in a real browser (headless Debian Chromium through Selenium), one story in
order: a workspace admin opens it from the nav, chooses "Some tags are protected", adds rules, sees every
problem of an invalid pattern beside its rule, tests a sample tag, saves, edits and removes a rule; the
saved rules refuse an overwrite at once and mark the tag on the image's page; a repository admin who is
not a workspace admin sees no link and a worded 403. Screenshots go to $UI_SCREENSHOTS_DIR or the tmp dir.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from harness.accounts import EMAIL, default_config
from harness.registry_process import RegistryProcess
from test.helpers.browser import go, login, notice
from test.helpers.oci_client import DOCKER_MANIFEST, Client, image_manifest

PAGE = "/ui/acme/container-settings"


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    config = copy.deepcopy(default_config())
    config["workspaces"]["acme"]["admins"] = [EMAIL]
    reg = RegistryProcess(tmp_path_factory.mktemp("ui-settings") / "registry", config).start()
    yield reg
    reg.stop()


def rows(browser) -> list[tuple[str, str]]:
    names = browser.find_elements(By.NAME, "rule_name")
    patterns = browser.find_elements(By.NAME, "rule_pattern")
    return [(n.get_attribute("value"), p.get_attribute("value")) for n, p in zip(names, patterns, strict=True)]


def fill_last_row(browser, name: str, pattern: str) -> None:
    browser.find_elements(By.NAME, "rule_name")[-1].send_keys(name)
    browser.find_elements(By.NAME, "rule_pattern")[-1].send_keys(pattern)


def button(browser, value: str):
    return browser.find_element(By.CSS_SELECTOR, f'button[name="action"][value="{value}"]:not(.sr)')


def shot(browser, shots: Path, name: str) -> None:
    assert browser.save_screenshot(str(shots / f"settings-{name}.png"))


class TestTheContainerSettingsPage:
    def test_a_workspace_admin_sets_rules_with_every_problem_shown_and_tests_a_tag(self, registry, browser, shots):
        login(browser, registry, EMAIL)
        go(browser, browser.find_element(By.LINK_TEXT, "Container settings"))
        assert browser.current_url == registry.url + PAGE
        assert browser.find_element(By.CSS_SELECTOR, 'input[name="protect"][value="none"]').is_selected()
        shot(browser, shots, "1-default")
        browser.find_element(By.CSS_SELECTOR, 'input[name="protect"][value="some"]').click()
        go(browser, button(browser, "add"))
        fill_last_row(browser, "releases", r"^v\d+\.\d+\.\d+$")
        go(browser, button(browser, "add"))
        fill_last_row(browser, "no-dev", "^(?!dev)")  # a lookahead: Python's re takes it, RE2 does not
        go(browser, button(browser, "add"))
        fill_last_row(browser, "", "^prod$")
        go(browser, button(browser, "save"))
        problems = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "ul.problems li")]
        assert problems == [
            "Rule 2, pattern: RE2 does not accept the pattern '^(?!dev)': invalid perl operator: (?!",
            "Rule 3, name: a rule needs a name",
        ]
        beside = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.invalid .field-error")]
        assert beside == ["RE2 does not accept the pattern '^(?!dev)': invalid perl operator: (?!",
                          "a rule needs a name"]
        assert browser.find_element(By.CSS_SELECTOR, 'input[name="protect"][value="some"]').is_selected()
        shot(browser, shots, "2-problems")
        assert registry.api("GET", "/workspaces/acme/container-settings", EMAIL).json()["protect"] == "none"

        go(browser, browser.find_element(By.CSS_SELECTOR, 'button[aria-label="Remove rule 2"]'))
        assert rows(browser) == [("releases", r"^v\d+\.\d+\.\d+$"), ("", "^prod$")]
        browser.find_elements(By.NAME, "rule_name")[1].send_keys("production")
        browser.find_element(By.NAME, "sample").send_keys("v1.2.3")
        go(browser, button(browser, "test"))
        assert browser.find_element(By.CSS_SELECTOR, ".answer").text == (
            r"'v1.2.3' matches the rule 'releases' (^v\d+\.\d+\.\d+$).")
        browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(By.CSS_SELECTOR, ".answer"))
        shot(browser, shots, "3-tester")
        sample = browser.find_element(By.NAME, "sample")
        sample.clear()
        sample.send_keys("latest")
        go(browser, button(browser, "test"))
        assert browser.find_element(By.CSS_SELECTOR, ".answer").text == "No rule matches 'latest': it stays mutable."
        go(browser, button(browser, "save"))
        assert notice(browser) == "Container settings saved: tags matching 2 rules are protected."
        assert rows(browser) == [("releases", r"^v\d+\.\d+\.\d+$"), ("production", "^prod$")]
        shot(browser, shots, "4-saved")
        assert registry.api("GET", "/workspaces/acme/container-settings", "reader").json() == {
            "protect": "some", "rules": [{"name": "releases", "pattern": r"^v\d+\.\d+\.\d+$"},
                                         {"name": "production", "pattern": "^prod$"}]}

    def test_the_saved_rules_bind_pushes_at_once_and_edits_apply(self, registry, browser, shots):
        client = Client(registry, "acme/my-container-app")
        client.push_image("prod", [b"one"])
        r = client.put_manifest("prod", image_manifest(client, [b"two"]), DOCKER_MANIFEST)
        assert r.status_code == 400 and "rule 'production' (^prod$)" in r.json()["errors"][0]["message"]
        client.push_image("latest", [b"one"])
        browser.get(registry.url + "/ui/acme/packages/my-container-app")
        badge = browser.find_element(By.CSS_SELECTOR, "table.tags .badge.immutable")
        assert badge.get_attribute("title") == "Immutable: rule 'production' (^prod$)"
        shot(browser, shots, "6-image-with-an-immutable-tag")
        browser.get(registry.url + PAGE)
        pattern = browser.find_elements(By.NAME, "rule_pattern")[1]
        pattern.clear()
        pattern.send_keys("^(prod|production)$")  # edit
        go(browser, button(browser, "save"))
        assert "saved" in notice(browser)
        r = client.put_manifest("prod", image_manifest(client, [b"three"]), DOCKER_MANIFEST)
        assert "rule 'production' (^(prod|production)$)" in r.json()["errors"][0]["message"]
        browser.find_element(By.CSS_SELECTOR, 'input[name="protect"][value="none"]').click()
        go(browser, button(browser, "save"))
        assert notice(browser) == "Container settings saved: no tags are protected."
        assert rows(browser) == [("releases", r"^v\d+\.\d+\.\d+$"), ("production", "^(prod|production)$")]
        assert client.put_manifest("prod", image_manifest(client, [b"four"]), DOCKER_MANIFEST).status_code == 201

    def test_others_see_no_link_and_a_worded_refusal(self, registry, browser, shots):
        login(browser, registry, "boss")  # admin of every repository, not a workspace admin
        assert not browser.find_elements(By.LINK_TEXT, "Container settings")
        browser.get(registry.url + PAGE)
        assert browser.find_element(By.CSS_SELECTOR, ".status").text == "403"
        assert browser.find_element(By.CSS_SELECTOR, ".error").text == (
            f"the Container settings page needs a workspace admin of acme (admins: {EMAIL}); user 'boss' is not one")
        shot(browser, shots, "5-not-an-admin")
