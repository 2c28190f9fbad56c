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
from selenium.webdriver.chrome.service import Service

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
