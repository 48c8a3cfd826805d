"""The console in headless Chromium: log in, see the overview, retry a dead letter, run a job.

``make test-browser`` installs Debian's ``chromium`` and ``chromium-driver`` and runs this. It
is skipped, saying why, where Chromium is absent, and fails instead under ``CI=true``. Each page
is saved as a screenshot under ``var/screenshots/`` (not committed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import LISTENER, demo_server

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
PHONE = (390, 844)
DESKTOP = (1280, 900)


def _require_chromium() -> tuple[str, str]:
    if CHROMIUM and DRIVER:
        return CHROMIUM, DRIVER
    reason = "Chromium or its driver is not installed (make test-browser installs them)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}, and CI=true needs the browser test to run")
    pytest.skip(reason)


@pytest.fixture
def screenshots(project_root: Path) -> Path:
    folder = project_root / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def console_url(project_root: Path, tmp_path: Path) -> Iterator[str]:
    _require_chromium()
    with demo_server(project_root, tmp_path) as url:
        yield f"{url}/console"


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium, driver = _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.implicitly_wait(0)
    try:
        yield session
    finally:
        session.quit()


def _wait(browser: Any, condition: Any, timeout: float = 20) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)


def _text(browser: Any, selector: str) -> str:
    from selenium.webdriver.common.by import By

    text: str = browser.find_element(By.CSS_SELECTOR, selector).text
    return text


def _click(browser: Any, selector: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, selector).click()


def test_an_admin_logs_in_retries_a_dead_letter_and_runs_the_task_sweep(
    browser: Any, console_url: str, screenshots: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(console_url)
    _wait(browser, lambda b: "/console/login" in b.current_url)
    browser.save_screenshot(str(screenshots / "login.png"))
    browser.find_element(By.NAME, "email").send_keys("admin@example.com")
    browser.find_element(By.NAME, "password").send_keys("demo-password")
    _click(browser, "form.stack button[type=submit]")
    _wait(browser, lambda b: b.current_url.rstrip("/").endswith("/console"))
    assert _text(browser, "h1") == "Overview"
    # The login left a dead letter (the test listener refuses each login once); the overview
    # refreshes itself until it shows it, without a reload.
    browser.execute_script("document.body.dataset.loaded = 'once'")
    first = _text(browser, ".refreshed time")
    _wait(browser, lambda b: _text(b, ".refreshed time") != first)
    _wait(browser, lambda b: _text(b, '[data-figure="dead"]') == "1")
    assert browser.execute_script("return document.body.dataset.loaded") == "once"  # no reload
    browser.save_screenshot(str(screenshots / "overview.png"))
    browser.set_window_size(*PHONE)
    browser.save_screenshot(str(screenshots / "overview-phone.png"))
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], "the overview scrolls sideways on a phone"
    browser.set_window_size(*DESKTOP)

    _click(browser, '[data-figure="dead"] a')
    _wait(browser, lambda b: "status=dead" in b.current_url)
    browser.save_screenshot(str(screenshots / "deliveries.png"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
    assert len(rows) == 1
    assert LISTENER in rows[0].text
    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    _wait(browser, lambda b: _text(b, "h1").startswith("Delivery"))
    # The error text is shown as text, never as markup.
    assert "refused once <b>on purpose</b>" in _text(browser, "pre.error-text")
    browser.save_screenshot(str(screenshots / "delivery.png"))

    _click(browser, "a.button[href$='/retry']")
    _wait(browser, lambda b: "Yes, retry" in _text(b, "form.actions button"))
    browser.save_screenshot(str(screenshots / "confirm.png"))
    _click(browser, "form.actions button")
    _wait(browser, lambda b: "done=retry" in b.current_url)
    assert "queued again" in _text(browser, ".notice")

    def delivered(b: Any) -> bool:
        b.refresh()
        return bool(_text(b, "h1 .pill") == "done")

    _wait(browser, delivered)
    browser.save_screenshot(str(screenshots / "delivery-done.png"))

    _click(browser, "nav a[href='/console/jobs']")
    _wait(browser, lambda b: _text(b, "h1") == "Jobs")
    browser.save_screenshot(str(screenshots / "jobs.png"))
    _click(browser, "#job-task_sweep form button")
    _wait(browser, lambda b: b.current_url.endswith("/console/jobs/task_sweep"))
    # The runs refresh themselves until the run is over.
    _wait(browser, lambda b: _text(b, "table.runs tbody tr .pill") == "succeeded", timeout=60)
    assert "admin" in _text(browser, "table.runs tbody tr")
    browser.save_screenshot(str(screenshots / "job-run.png"))
    _click(browser, "nav a[href='/console']")
    _wait(browser, lambda b: "task_sweep" in _text(b, "#overview"))
    assert "succeeded" in _text(browser, "#overview")
    browser.save_screenshot(str(screenshots / "overview-after-sweep.png"))

    _click(browser, "nav a[href='/console/events']")
    _wait(browser, lambda b: _text(b, "h1") == "Events")
    assert "auth.login" in browser.page_source
    browser.save_screenshot(str(screenshots / "events.png"))

    _click(browser, "nav a[href='/console/integrations']")
    _wait(browser, lambda b: _text(b, "h1") == "Integrations")
    _click(browser, "#oracle_fusion form button")
    _wait(browser, lambda b: "Test connection: It answered" in _text(b, "#oracle_fusion .check"))
    assert "demo-password" not in browser.page_source
    browser.save_screenshot(str(screenshots / "integrations.png"))

    _click(browser, "nav a[href='/console/sandbox']")
    _wait(browser, lambda b: _text(b, "h1") == "Sandbox")
    browser.save_screenshot(str(screenshots / "sandbox.png"))

    _click(browser, "form.logout button")
    _wait(browser, lambda b: "/console/login" in b.current_url)
    browser.get(console_url)
    _wait(browser, lambda b: "/console/login" in b.current_url)
