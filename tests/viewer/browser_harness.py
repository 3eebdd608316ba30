"""The browser harness of the viewer tests: a real headless browser, Debian's chromium driven by selenium.

selenium's driver manager cannot download here, so the system chromedriver is named explicitly.
``make test`` installs chromium and chromium-driver (``make browser``); where they are missing the
browser tests are skipped with the command that installs them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WINDOW = (1280, 900)
LOAD_TIMEOUT_S = 60


def _missing_browser() -> str | None:
    if not os.path.exists(CHROMEDRIVER) or not os.path.exists(CHROMIUM):
        return "chromium and chromium-driver are not installed: run `make browser` (apt-get install chromium " \
               "chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    return None


def start_browser():
    """A headless chromium WebDriver (the system chromedriver), or None with the reason it cannot start."""
    reason = _missing_browser()
    if reason:
        return None, reason
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "--js-flags=--max-old-space-size=1024"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(LOAD_TIMEOUT_S)
    driver.set_script_timeout(LOAD_TIMEOUT_S)
    return driver, None


@pytest.fixture(scope="session")
def _browser_session():
    driver, reason = start_browser()
    if driver is None:
        if os.environ.get("PLAIT_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(_browser_session):
    """A headless chromium WebDriver (shared by the session: starting one costs seconds), at a fixed size."""
    _browser_session.set_window_size(*WINDOW)
    _browser_session.get_log("browser")  # drop what an earlier test left
    yield _browser_session
    _browser_session.get("about:blank")


class Page:
    """A loaded page: ``js_errors`` lists the console errors and uncaught exceptions seen while loading."""

    def __init__(self, browser, path: Path):
        self.browser = browser
        self.path = path
        self.js_errors: list[str] = []

    def errors(self) -> list[str]:
        """JS errors so far (loading and since), as the browser logged them."""
        self.js_errors += [e["message"] for e in self.browser.get_log("browser") if e.get("level") == "SEVERE"]
        return self.js_errors

    def screenshot(self, out: Path) -> Path:
        self.browser.save_screenshot(str(out))
        return out


def open_page(browser, path: str | os.PathLike[str]) -> Page:
    """Load a local HTML file and return once ``document.readyState == "complete"``."""
    from selenium.webdriver.support.ui import WebDriverWait

    path = Path(path).resolve()
    browser.get(path.as_uri())
    WebDriverWait(browser, LOAD_TIMEOUT_S).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    page = Page(browser, path)
    page.errors()
    return page
