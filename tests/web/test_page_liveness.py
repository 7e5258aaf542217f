"""What the page shows is the door's present: a lost camera is drawn as lost (not as the
last face it saw), and the page's own log lines cannot push the door's real error off it."""

import logging
import time
import types

import cv2
import numpy as np
import pytest

from happyhouse.daemon.door import State
from happyhouse.daemon.sources import Frame
from happyhouse.daemon.web import live as live_mod
from happyhouse.daemon.web.facts import LastError
from happyhouse.daemon.web.live import LiveView

FACE_GREY = 200  # the fake camera's picture; the placeholder is dark (40)


class StillDoor:
    """The few door attributes the live view reads, with a frame ``age`` seconds old."""

    def __init__(self, state: State, age: float, stale_after: float = 0.5) -> None:
        now = time.monotonic()
        self.clock = lambda: now
        self.state = state
        self.stale_after = stale_after
        self.vote_text = "1 of the last 1 face frames happy (3 needed)"
        self.latest = (Frame(np.full((480, 640, 3), FACE_GREY, np.uint8), now - age, 7), None)
        self.pipeline = None  # the pipeline that scored its frames (none here)


def drawn(door, monkeypatch):
    """(mean grey of the live view's JPEG, the lines written on it) for ``door``."""
    written = []
    real = live_mod._bottom_text
    monkeypatch.setattr(live_mod, "_bottom_text",
                        lambda image, lines: written.extend(t for t, _ in lines) or real(image, lines))
    service = types.SimpleNamespace(door=door, parts=types.SimpleNamespace(pipeline=None))
    view = LiveView(service)
    view._make()
    image = cv2.imdecode(np.frombuffer(view._jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(np.median(image)), written


@pytest.mark.parametrize("state, age", [(State.FAULT, 10.4), (State.ARMED, 2.0), (State.COOLDOWN, 2.0)])
def test_a_lost_camera_is_drawn_as_lost_not_as_its_last_face(state, age, monkeypatch):
    grey, lines = drawn(StillDoor(state, age), monkeypatch)
    assert grey < 80, "the last face is still drawn"
    assert f"camera lost, last frame {age:.0f} s ago" in lines


def test_a_fresh_frame_is_drawn(monkeypatch):
    grey, lines = drawn(StillDoor(State.ARMED, 0.1), monkeypatch)
    assert abs(grey - FACE_GREY) < 10
    assert not any("camera lost" in line for line in lines)


def test_the_page_own_lines_do_not_hide_the_door_error():
    handler = LastError().attach()
    try:
        logging.getLogger("happyhouse.daemon.door").error("cooldown -> fault: camera lost")
        logging.getLogger("happyhouse.daemon.web.server").warning("door page: wrong token from 10.0.0.9")
        logging.getLogger("happyhouse.daemon.web").warning("door page: something of its own")
        assert handler.last["message"] == "cooldown -> fault: camera lost"
        logging.getLogger("happyhouse.daemon.webcam").warning("a logger that only starts alike")
        assert handler.last["message"] == "a logger that only starts alike"
    finally:
        handler.detach()
