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
import re
import shutil
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: the 12-byte IEND chunk that ends every whole PNG (a listing checks for it)
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


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
    # a page behind a token can be logged out of
    until(lambda: browser.find_element(By.ID, "logout-form").is_displayed(), what="the Log out button")

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


# -- the page says when what it shows is not the present ----------------------------------------
def fact_of(browser, name):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, f'[data-fact="{name}"]').text


def live_state(browser):
    """(data-live of the picture, the banner's text or None when it is hidden)."""
    from selenium.webdriver.common.by import By

    banner = browser.find_element(By.ID, "live-banner")
    return (browser.find_element(By.ID, "live").get_attribute("data-live"),
            banner.text if banner.is_displayed() else None)


MEAN_GREY = """const c = document.createElement("canvas"); c.width = 64; c.height = 48;
const g = c.getContext("2d"); g.drawImage(arguments[0], 0, 0, 64, 48);
const d = g.getImageData(0, 0, 64, 48).data; let s = 0;
for (let i = 0; i < d.length; i += 4) s += d[i + 1];
return s / (d.length / 4);"""


def test_the_page_shows_a_lost_camera_and_a_stopped_service_as_not_live(browser, start_door):
    """The probe's finding: after the service stopped, the last frame (a green HAPPY box)
    and "armed, 15 fps" stayed up looking live; a lost camera showed the last face."""
    from selenium.webdriver.common.by import By

    door, client = start_door("smiles")  # no token: this machine only
    browser.get(f"http://127.0.0.1:{client.port}/")
    live = until(lambda: browser.find_element(By.ID, "live"), what="the door page")
    until(lambda: live_state(browser) == ("yes", None), what="the live view")
    until(lambda: re.fullmatch(r"\d+ ms", fact_of(browser, "frame_age_s")), what="the frame age in ms")
    assert not browser.find_element(By.ID, "logout-form").is_displayed(), \
        "no token: there is nothing to log out of"
    time.sleep(0.5)
    seeing = browser.execute_script(MEAN_GREY, live)
    browser.save_screenshot(str(artifact_dir() / "door-page-live.png"))

    # the camera is lost: the picture says so (still live: it is the present), and the
    # figures are the present's: no frame rate, the frame age in seconds
    source = door.source
    source.stalls = [(source.clock() - source._t0, 1e9)]
    until(lambda: fact_of(browser, "fps") == "0.0 fps", timeout=20, what="the rate falling to 0")
    assert browser.find_element(By.ID, "state").text.lower() == "fault"
    assert re.fullmatch(r"\d+\.\d s", fact_of(browser, "frame_age_s")), fact_of(browser, "frame_age_s")
    assert "camera lost" in fact_of(browser, "last_error")
    assert live_state(browser) == ("yes", None)
    lost = until(lambda: browser.execute_script(MEAN_GREY, live) < seeing - 20 and
                 browser.execute_script(MEAN_GREY, live), what="the camera-lost placeholder")
    assert lost < 60, "the last face is still shown"
    browser.save_screenshot(str(artifact_dir() / "door-page-camera-lost.png"))

    # the service stops: within a few seconds the picture is greyed and marked not live,
    # and the status says it is not the present
    door.stop()
    until(lambda: live_state(browser)[0] == "no", timeout=5, what="the picture marked not live")
    until(lambda: live_state(browser)[1].startswith("Not live: the door does not answer"),
          timeout=5, what="the banner saying why")
    assert browser.find_element(By.ID, "state").text.lower() == "no answer"
    assert browser.find_element(By.ID, "status-silent").is_displayed()
    assert [fact_of(browser, name) for name in ("fps", "frame_age_s", "votes")] == ["–"] * 3
    assert fact_of(browser, "status").startswith("no answer since")
    browser.save_screenshot(str(artifact_dir() / "door-page-stopped.png"))


def test_the_page_asks_for_a_new_stream_when_the_server_ends_one(browser, start_door):
    """Chromium fires no event when a multipart image stream just ends (a reload rebuilds
    the page's live view): the picture froze while the status kept answering."""
    from selenium.webdriver.common.by import By

    from happyhouse.daemon.web.live import LiveView

    door, client = start_door("others")
    browser.get(f"http://127.0.0.1:{client.port}/")
    live = until(lambda: browser.find_element(By.ID, "live"), what="the door page")
    until(lambda: live_state(browser) == ("yes", None), what="the live view")
    assert live.get_attribute("data-streams") == "1"

    cfg, old = door.page.cfg, door.page.live
    door.page.live = LiveView(door.service, cfg.web_stream_fps, cfg.web_stream_width,
                              cfg.web_max_streams).start()
    old.stop()  # every stream of the old live view ends
    until(lambda: int(live.get_attribute("data-streams")) >= 2, timeout=10, what="a new stream")
    until(lambda: live_state(browser) == ("yes", None), what="live again")
    first = hashlib.sha256(live.screenshot_as_png).hexdigest()
    until(lambda: hashlib.sha256(live.screenshot_as_png).hexdigest() != first,
          what="the picture changing again")


def test_a_stream_that_goes_quiet_is_marked_not_live_and_replaced(browser, start_door):
    """The stream stays open but sends nothing (the status still answers)."""
    from selenium.webdriver.common.by import By

    door, client = start_door("others")
    browser.get(f"http://127.0.0.1:{client.port}/")
    live = until(lambda: browser.find_element(By.ID, "live"), what="the door page")
    until(lambda: live_state(browser) == ("yes", None), what="the live view")

    view = door.page.live
    view.next_jpeg = lambda after, timeout: time.sleep(min(timeout, 0.2))  # never a frame
    state = until(lambda: live_state(browser)[0] == "no" and live_state(browser), timeout=10,
                  what="the quiet picture marked not live")
    assert state[1].startswith("Not live: no new picture for"), state
    assert browser.find_element(By.ID, "state").text.lower() != "no answer"
    del view.next_jpeg  # frames again
    until(lambda: live_state(browser) == ("yes", None), timeout=30, what="live again")
    assert int(live.get_attribute("data-streams")) >= 2


def test_the_frames_grid_says_when_it_shows_only_the_newest_and_dates_old_frames(
        browser, start_door, tmp_path, monkeypatch):
    """A clock probe: a folder over the listing's limit showed part of it with no word of
    the rest, and a frame stamped on another day (a Pi's clock before NTP) showed only a
    time of day, as if it were today's."""
    import json

    from selenium.webdriver.common.by import By

    from happyhouse.daemon.web import labels

    monkeypatch.setattr(labels, "LISTED", 2)
    root = tmp_path / "collect" / "unsorted"
    root.mkdir(parents=True)
    for serial, when in ((1, "2025-01-02T03:04:05.000+00:00"), (2, "2025-01-02T03:04:06.000+00:00"),
                         (3, "2025-01-02T03:04:07.000+00:00")):
        name = f"{serial:06d}-20250102T03040{4 + serial}-000"
        (root / f"{name}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + IEND)  # the caption is what is read
        (root / f"{name}.json").write_text(json.dumps({"label": "unsorted", "time": when,
                                                       "score": 0.5, "face": [1, 2, 3, 4]}))
    door, client = start_door("others")
    browser.get(f"http://127.0.0.1:{client.port}/")
    more = until(lambda: browser.find_element(By.CSS_SELECTOR, "#frames p.more"),
                 what="the note that more frames wait")
    assert more.text == "Showing the newest 2 of 3 frames: label or discard these to see the rest."
    cards = browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame")
    assert [c.get_attribute("data-name") for c in cards] == ["000003-20250102T030407-000.png",
                                                             "000002-20250102T030406-000.png"]
    caption = cards[0].find_element(By.TAG_NAME, "figcaption").text
    assert "2025" in caption, caption
    browser.save_screenshot(str(artifact_dir() / "door-page-more-frames.png"))


def test_a_damaged_frame_is_shown_as_damaged_with_only_discard(browser, start_door, tmp_path):
    """A storage probe: a frame a power cut left empty was shown and labelled like any other."""
    import json

    from selenium.webdriver.common.by import By

    root = tmp_path / "collect" / "unsorted"
    root.mkdir(parents=True)
    for serial, data in ((1, b""), (2, b"\x89PNG\r\n\x1a\n" + IEND)):
        name = f"{serial:06d}-20250102T03040{serial}-000"
        (root / f"{name}.png").write_bytes(data)
        (root / f"{name}.json").write_text(json.dumps({"label": "unsorted", "score": 0.5}))
    door, client = start_door("others")
    browser.get(f"http://127.0.0.1:{client.port}/")
    until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame")) == 2,
          what="both frames listed")
    damaged = browser.find_element(By.CSS_SELECTOR, "#frames figure.frame.damaged")
    assert damaged.get_attribute("data-name") == "000001-20250102T030401-000.png"
    assert "damaged file" in damaged.find_element(By.TAG_NAME, "figcaption").text
    assert [b.text for b in damaged.find_elements(By.TAG_NAME, "button")] == ["Discard"]
    whole = browser.find_element(By.CSS_SELECTOR, '#frames figure.frame[data-name^="000002"]')
    assert [b.text for b in whole.find_elements(By.TAG_NAME, "button")] == ["Happy", "Not happy", "Discard"]
    browser.save_screenshot(str(artifact_dir() / "door-page-damaged-frame.png"))
    damaged.find_element(By.TAG_NAME, "button").click()
    until(lambda: len(browser.find_elements(By.CSS_SELECTOR, "#frames figure.frame")) == 1,
          what="the damaged frame discarded")
    assert not (root / "000001-20250102T030401-000.png").exists()


def test_the_page_fits_a_phone_without_sideways_scrolling(browser, start_door):
    """Looked at on a 390 px phone: every card ran 13 px past the screen (the single
    column's 1fr took the content's minimum width), so the page scrolled sideways."""
    from selenium.webdriver.common.by import By

    door, client = start_door("smiles", **{"service.snapshot_on_unlock": True})
    browser.set_window_size(390, 844)
    browser.get(f"http://127.0.0.1:{client.port}/")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "#decisions tr.verdict-unlocked img.thumb"),
          what="an opening with its snapshot")
    width, scroll = browser.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
    assert scroll <= width, f"the page is {scroll} px wide on a {width} px screen"
    browser.save_screenshot(str(artifact_dir() / "door-page-phone.png"))
