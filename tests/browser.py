"""Headless Chromium for the page tests: ``browser`` fixture, waits, screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

needs_chromium = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for_text(browser, text: str, timeout: float = 15.0) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda d: text in d.find_element("tag name", "main").text)
    return browser.find_element("tag name", "main").text


def screenshot(browser, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def settled(browser, action=None, timeout: float = 15.0) -> None:
    """Run ``action`` (a navigation, a click) and wait until the page has rendered after it."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("if (document.body) delete document.body.dataset.ready")
    if action is not None:
        action()
    WebDriverWait(browser, timeout).until(
        lambda d: d.execute_script("return document.body && document.body.dataset.ready === 'true'"))


def show(browser, url: str) -> None:
    """Open ``url`` (often only a new #fragment of the same page) and wait for it to render."""
    same = browser.current_url == url  # then get() changes nothing: reload instead
    settled(browser, browser.refresh if same else lambda: browser.get(url))


def console_errors(browser) -> list[str]:
    """The page's errors since the last call: script errors, CSP violations, failed loads."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
