"""The demo page at the gateway's root, driven in a real headless Chromium (Debian's
chromium and chromedriver, no downloaded browser) against the test cluster: sign up, a
conversation whose mood declines, comfort, feedback that moves a weight and an arm's
posterior, plain errors (401, 429, 503), a phone-sized screen, and screenshots."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = REPO_ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"
README_SCREENSHOT = REPO_ROOT / "docs" / "demo.png"
T = TypeVar("T")


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    # Selenium Manager would look for (and download) a browser or driver otherwise.
    os.environ["SE_OFFLINE"] = "true"
    profile = tempfile.mkdtemp(prefix="v5-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = 15) -> T:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def by_id(driver: WebDriver, element_id: str):  # type: ignore[no-untyped-def]
    return driver.find_element(By.ID, element_id)


def weight_values(driver: WebDriver) -> dict[str, float]:
    # Read in one script: the chart is redrawn while the test polls it.
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('#weights rect.bar'))"
        ".map(b => [b.dataset.weight, b.dataset.value])"
    )
    return {name: float(value) for name, value in pairs}


def screenshot(driver: WebDriver, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def test_root_serves_the_page_with_a_strict_policy(gateway_url: str) -> None:
    with httpx.Client(base_url=gateway_url, timeout=10.0) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        for part in (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ):
            assert part in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert len(page.headers.get_list("x-request-id")) == 1
        script = client.get("/web/app.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("text/javascript")
        style = client.get("/web/app.css")
        assert style.headers["content-type"].startswith("text/css")
        # Still JSON for everything the page is not.
        assert client.get("/web/nope.js").json() == {"detail": "Not Found"}
        refused = client.post("/", content=b"{}")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        assert "detail" in refused.json()


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for path in WEB_DIR.iterdir():
        text = path.read_text()
        # No other origin, no inline script or style (the CSP would refuse them anyway).
        assert not re.search(r"(src|href)\s*=\s*[\"'](https?:)?//", text), path
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), path
        assert "https://" not in text, path
        if path.suffix == ".html":
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
            assert "<style" not in text and "style=" not in text, path


def test_demo_in_a_browser(browser: WebDriver, gateway_url: str) -> None:
    driver = browser
    driver.set_window_size(1280, 1800)
    driver.get(gateway_url + "/")
    wait(driver, lambda d: by_id(d, "login-view").is_displayed())
    assert driver.title.startswith("V5")

    # Sign up through the form; the token is kept for this browser session only.
    user = f"demo_{uuid.uuid4().hex[:10]}"
    by_id(driver, "user-id").send_keys(user)
    by_id(driver, "password").send_keys("demo-password-1")
    by_id(driver, "register-button").click()
    wait(driver, lambda d: by_id(d, "app-view").is_displayed())
    assert driver.execute_script("return sessionStorage.getItem('v5.user')") == user
    assert driver.execute_script("return localStorage.length") == 0

    # A conversation whose mood declines.
    messages = ["I feel great today", "getting a bit sad now", "I feel really sad and lonely"]
    for turn, message in enumerate(messages, start=1):
        box = by_id(driver, "chat-input")
        box.send_keys(message)
        by_id(driver, "chat-send").click()
        wait(
            driver, lambda d, n=turn: len(d.find_elements(By.CSS_SELECTOR, "#chat-log li")) == 2 * n
        )
        wait(driver, lambda d, n=turn: by_id(d, "trend").get_attribute("data-points") == str(n))
    replies = driver.find_elements(By.CSS_SELECTOR, "#chat-log li.bot")
    assert all(r.text.strip() for r in replies)
    assert by_id(driver, "chat-log").get_attribute("aria-live") == "polite"
    assert "sad" in by_id(driver, "u-moods").text.lower()
    assert 0.0 <= float(by_id(driver, "u-clarity").get_attribute("data-value")) <= 1.0
    wait(driver, lambda d: by_id(d, "trend").get_attribute("data-trend") == "declining")
    assert "declining" in by_id(driver, "trend").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#plane circle.pt")) == 3
    assert driver.find_elements(By.CSS_SELECTOR, "#plane polyline.path")

    # Recommendations: reasons, the arm and comfort.
    by_id(driver, "recommend").click()
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tracks li.track")) == 5)
    meta = by_id(driver, "rec-meta")
    assert meta.get_attribute("data-comfort") == "true"
    assert "Comfort applied" in by_id(driver, "rec-comfort").text
    strategy = meta.get_attribute("data-strategy")
    assert strategy and strategy in by_id(driver, "rec-arm").text
    for track in driver.find_elements(By.CSS_SELECTOR, "#tracks li.track"):
        assert track.find_elements(By.CSS_SELECTOR, "ul.reasons li")
    wait(driver, lambda d: len(weight_values(d)) == 9)
    before = weight_values(driver)
    arms_before = float(by_id(driver, "arms").get_attribute("data-total"))
    assert driver.find_elements(By.CSS_SELECTOR, f"#arms tr[data-arm='{strategy}']")

    # Like a track: the reward and the weight feedback go out, a bar moves, the posterior grows.
    first = driver.find_element(By.CSS_SELECTOR, "#tracks li.track")
    first.find_element(By.CSS_SELECTOR, "button[data-feedback='like']").click()
    wait(driver, lambda d: first.get_attribute("data-feedback-sent") == "like")
    wait(driver, lambda d: weight_values(d) != before)
    after = weight_values(driver)
    assert any(after[name] > before[name] for name in before)
    wait(driver, lambda d: float(by_id(d, "arms").get_attribute("data-total")) > arms_before)
    assert float(by_id(driver, "arms").get_attribute("data-total")) == pytest.approx(
        arms_before + 1
    )
    assert driver.find_elements(By.CSS_SELECTOR, "#weights rect.bar.up")
    assert "1 event" in by_id(driver, "rewards").text

    # Refresh shows a new list.
    old_id = meta.get_attribute("data-recommendation-id")
    by_id(driver, "refresh").click()
    wait(driver, lambda d: by_id(d, "rec-meta").get_attribute("data-recommendation-id") != old_id)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#tracks li.track")) == 5
    driver.execute_script("window.scrollTo(0, 0)")
    shot = screenshot(driver, "demo.png")
    # The README's copy is redrawn on request only, so a test run leaves the checkout clean.
    if os.environ.get("V5_UPDATE_DOCS") == "1":
        shutil.copyfile(shot, README_SCREENSHOT)

    # Keyboard: the chat box is reachable and sends on Enter.
    box = by_id(driver, "chat-input")
    box.send_keys("maybe some jazz\n")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat-log li")) == 8)

    # A phone-sized screen: nothing wider than the screen.
    driver.set_window_size(390, 844)
    wait(driver, lambda d: d.execute_script("return window.innerWidth") <= 420)
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    screenshot(driver, "demo-phone.png")
    driver.set_window_size(1280, 1800)

    # 429 and 503 are said plainly (the fetch answers are stubbed in the page).
    for status, words in ((429, "wait"), (503, "unavailable")):
        driver.execute_script(
            """
            const status = arguments[0];
            window.__realFetch = window.__realFetch || window.fetch;
            window.fetch = () => Promise.resolve(new Response(
                JSON.stringify({detail: "stubbed"}),
                {status: status,
                 headers: {"Content-Type": "application/json", "Retry-After": "1"}}));
            """,
            status,
        )
        by_id(driver, "refresh").click()
        wait(
            driver,
            lambda d, w=words: w in by_id(d, "notice").text and by_id(d, "notice").is_displayed(),
        )
        assert by_id(driver, "app-view").is_displayed()
    driver.execute_script("window.fetch = window.__realFetch")
    screenshot(driver, "demo-503.png")

    # A refused token sends the listener to log in, with a message.
    driver.execute_script("sessionStorage.setItem('v5.token', 'not.a.token')")
    driver.refresh()
    wait(driver, lambda d: by_id(d, "login-view").is_displayed())
    assert "log in" in by_id(driver, "login-message").text.lower()
    assert driver.execute_script("return sessionStorage.getItem('v5.token')") is None
    assert not by_id(driver, "app-view").is_displayed()
    screenshot(driver, "demo-401.png")

    # Logging in again (not signing up) works.
    by_id(driver, "user-id").clear()
    by_id(driver, "user-id").send_keys(user)
    by_id(driver, "password").send_keys("demo-password-1\n")
    wait(driver, lambda d: by_id(d, "app-view").is_displayed())
    wait(driver, lambda d: by_id(d, "trend").get_attribute("data-trend") != "unknown")
    errors = [
        entry
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "401" not in entry["message"]
    ]
    assert not errors, errors
