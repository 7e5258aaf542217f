"""The door's page in a real browser: headless Chromium through Selenium.

A door service runs over a fake camera playing real smiling faces (so it opens,
with unlock snapshots) and a mock pin, with the page behind a token. The browser
logs in, sees the live image change and the status update, collects frames from
the page and labels one, and the label lands in the class folder
``happyhouse-adapt`` reads. The screenshot is kept as a test artifact
(``$HAPPYHOUSE_ARTIFACTS`` or ``build/test-artifacts/door-page.png``).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
skipped where they are missing, except in CI (``CI=true``), where that fails.
"""

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def find(*names):
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture
def browser():
    chromium = find("chromium", "chromium-browser", "google-chrome")
    driver_path = find("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        chromium = None
    if not chromium or not driver_path:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser test: install chromium, chromium-driver and "
                        "selenium (.ci/run does)")
        pytest.skip("headless Chromium, chromedriver or selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1400", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def until(predicate, timeout=20.0, step=0.1, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = predicate()
        except Exception:  # an element between two redraws
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"{what}: not met within {timeout} s")


def artifact_dir() -> Path:
    path = Path(os.environ.get("HAPPYHOUSE_ARTIFACTS", REPO / "build" / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_page_in_chromium(browser, start_door, token_path, token, tmp_path):
    from selenium.webdriver.common.by import By

    door, client = start_door("smiles", **{"web.token_file": str(token_path),
                                           "service.snapshot_on_unlock": True})
    url = f"http://127.0.0.1:{client.port}/"
    browser.get(url)
    # the login page: a wrong token first, then the right one
    browser.find_element(By.ID, "token").send_keys("not-the-token-at-all")
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    until(lambda: browser.find_element(By.ID, "wrong").is_displayed(), what="wrong-token notice")
    assert not browser.find_elements(By.ID, "live")
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form button").click()
    live = until(lambda: browser.find_element(By.ID, "live"), what="the door page")

    # the live image draws and changes
    until(lambda: browser.execute_script("return arguments[0].naturalWidth", live) > 0,
          what="the live image")
    first = hashlib.sha256(live.screenshot_as_png).hexdigest()
    until(lambda: hashlib.sha256(live.screenshot_as_png).hexdigest() != first,
          what="the live image changing")

    # the status updates
    def fact(name):
        return browser.find_element(By.CSS_SELECTOR, f'[data-fact="{name}"]').text

    up = until(lambda: fact("uptime_s") not in ("", "–") and fact("uptime_s"), what="status")
    until(lambda: fact("uptime_s") != up, what="the status updating")
    assert fact("model_sha256") == door.service.parts.pipeline.model_sha256[:12]
    assert browser.find_element(By.ID, "state").text.lower() in (
        "armed", "unlocked", "cooldown", "starting")

    # the door opened for the smiles: the decision is listed with its snapshot
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#decisions tr.verdict-unlocked img.thumb"),
          what="an opening with its snapshot")

    # collect two frames from the page, then label one happy and discard the other
    count = browser.find_element(By.ID, "collect-count")
    count.clear()
    count.send_keys("2")
    browser.find_element(By.CSS_SELECTOR, "#collect-form button").click()
    cards = until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame")) >= 2
                  and browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame"),
                  what="two collected frames on the page")
    until(lambda: all(browser.execute_script("return arguments[0].complete && "
                                             "arguments[0].naturalWidth", c.find_element(By.TAG_NAME, "img"))
                      for c in cards), what="the frames' images")
    time.sleep(0.5)  # let the live view and decisions redraw for the screenshot
    shot = artifact_dir() / "door-page.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000

    name = cards[0].get_attribute("data-name")
    cards[0].find_element(By.CSS_SELECTOR, "button.act-happy").click()
    root = tmp_path / "collect"
    until(lambda: (root / "happy" / name).is_file(), what="the label written to happy/")
    assert not (root / "unsorted" / name).exists()
    left = until(lambda: [c.get_attribute("data-name")
                          for c in browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame")
                          if c.get_attribute("data-name") != name], what="the second frame")
    other_name = left[0]

    def discard():  # the grid redraws after each label: find the card afresh
        card = browser.find_element(By.CSS_SELECTOR, f'#frames figure.frame[data-name="{other_name}"]')
        card.find_element(By.CSS_SELECTOR, "button.act-discard").click()
        return True

    until(discard, what="the discard button")
    until(lambda: not (root / "unsorted" / other_name).exists(), what="the discard")
    # what happyhouse-adapt reads: happy/ has the frame, with its sidecar saying so
    assert (root / "happy" / name.replace(".png", ".json")).is_file()
    assert [s.state for s in door.pin.states].count(True) >= 1  # the door's own openings only
    assert door.error is None
