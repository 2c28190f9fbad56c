"""`make serve` (python -m demo.serve) as a newcomer uses it: start it, read the URL and a token it prints,
log in to the pages in a real browser (headless Chromium), see the sample package and its tags; then
Ctrl-C (SIGINT) stops it, and what it made is gone."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.paths import REPO_ROOT
from test.helpers.browser import missing_browser, screenshot_dir, start_chromium

START_SECONDS = 60


@pytest.fixture
def browser(tmp_path):
    problem = missing_browser()
    if problem:
        pytest.fail(problem, pytrace=False)
    driver = start_chromium(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


class Serve:
    """`python -m demo.serve` as a subprocess, its stdout read line by line."""

    def __init__(self, tmpdir) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "demo.serve"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                     env={**os.environ, "TMPDIR": str(tmpdir)})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, marker: str, seconds: float) -> str:
        """Everything printed up to the line holding `marker`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if marker in line:
                return "".join(self.seen)
        raise AssertionError(f"no line with {marker!r} within {seconds} s:\n{''.join(self.seen)}")

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError("demo.serve did not stop within 20 s of the signal") from None


def test_serve_prints_credentials_that_log_in_and_show_the_sample_package(browser, tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    serve = Serve(tmpdir)
    try:
        printed = serve.until("Press Ctrl-C", START_SECONDS)
        url = re.search(r"Its pages: (http://127\.0\.0\.1:\d+)/ui/", printed).group(1)
        tokens = dict(re.findall(r"^  (reader|writer|admin)\s+([0-9a-f]{32})  ", printed, re.M))
        assert sorted(tokens) == ["admin", "reader", "writer"], printed
        assert f"docker login {url.removeprefix('http://')} -u writer" in printed
        assert "python -m pipe" in printed and f"REGISTRY={url.removeprefix('http://')}" in printed
        data = re.search(r"Data: (\S+) \(removed at exit\)", printed).group(1)
        assert data.startswith(str(tmpdir))

        assert requests.get(f"{url}/ui/login", timeout=30).status_code == 200
        browser.get(f"{url}/ui/login")
        browser.find_element(By.NAME, "username").send_keys("reader")
        browser.find_element(By.NAME, "token").send_keys(tokens["reader"])
        browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
        WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".user"))
        assert browser.find_element(By.CSS_SELECTOR, ".user").text == "reader"
        browser.get(f"{url}/ui/demo/packages")
        browser.find_element(By.LINK_TEXT, "demo-app").click()
        WebDriverWait(browser, 15).until(lambda b: b.find_elements(By.CSS_SELECTOR, "table.tags a.name"))
        tags = sorted(a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.tags a.name"))
        assert tags == ["1.0", "1.1", "latest"]
        assert browser.save_screenshot(str(screenshot_dir(tmp_path / "shots") / "serve-package.png"))
    finally:
        code = serve.stop(signal.SIGINT)
    assert code == 0, "".join(serve.seen)
    rest = serve.until("removed", 10)
    assert f"removed {data}" in rest
    assert list(tmpdir.iterdir()) == []  # the registry's root, config, log and layouts are gone
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/ui/login", timeout=5)
