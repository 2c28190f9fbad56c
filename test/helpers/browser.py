"""Headless Debian Chromium driven by Selenium, for the tests of the registry's pages.

Selenium is given the system chromedriver and chromium explicitly, so it never downloads
a driver or a browser. Screenshots go to $UI_SCREENSHOTS_DIR when set, else to the test's
temporary directory.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from harness.accounts import TOKENS
from harness.registry_process import RegistryProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if shutil.which(path) is None:
            return f"{path} is missing: install the Debian package {package} (`bash .ci/run` does)"
    return None


def start_chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


def screenshot_dir(default: Path) -> Path:
    path = Path(os.environ.get("UI_SCREENSHOTS_DIR") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- driving the pages ------------------------------------------------------------------------
def login(browser: WebDriver, registry: RegistryProcess, user: str) -> None:
    browser.get(registry.url + "/ui/login")
    if browser.find_elements(By.CSS_SELECTOR, "form.logout button"):
        go(browser, browser.find_element(By.CSS_SELECTOR, "form.logout button"))
    browser.find_element(By.NAME, "username").send_keys(user)
    browser.find_element(By.NAME, "token").send_keys(TOKENS[user])
    go(browser, browser.find_element(By.CSS_SELECTOR, "form button.primary"))
    assert browser.find_element(By.CSS_SELECTOR, ".user").text == user


def replaced(element) -> bool:
    """Whether `element` belongs to a page that is gone. Chromium says so either as a stale element or,
    when asked in the middle of the navigation, as "Node with given id does not belong to the document"."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


def go(browser: WebDriver, element) -> None:
    """Click something that loads another page, and wait until that page has loaded."""
    old = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 15).until(lambda _: replaced(old))
    WebDriverWait(browser, 15).until(lambda b: b.execute_script("return document.readyState") == "complete")


def notice(browser: WebDriver) -> str:
    """The one-time notice after a form post (waits for the page the post redirected to)."""
    try:
        return WebDriverWait(browser, 10).until(lambda b: b.find_element(By.CSS_SELECTOR, ".notice")).text
    except TimeoutException:
        raise AssertionError("no notice on "
                             f"{browser.current_url}:\n{browser.find_element(By.TAG_NAME, 'main').text}") from None
