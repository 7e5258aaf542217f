"""The live view: the door's newest frame, downscaled and annotated, as JPEG.

One encoder thread serves every viewer: it wakes at most ``stream_fps`` times a
second, and only while someone watches, takes the frame the door last decided
on (:attr:`~..door.Door.latest`, one reference read: the loop never waits for
it), draws the face box, the score against the threshold, the vote and the door
state, and encodes one JPEG that all streams send. A slow or stalled viewer
only delays its own socket (:mod:`.server` drops it after a send timeout);
twenty viewers cost one encode per frame, not twenty.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Iterator, Optional, Tuple

import numpy as np

from ..errors import HappyHouseError

JPEG_QUALITY = 70
#: a still frame (the door saw nothing new) is re-sent this often so a stream stays alive
KEEPALIVE = 2.0
#: the live view calls the camera lost once the door's newest frame is older than
#: [camera] stale_after, but never sooner than this: a 1 fps camera's newest frame is
#: up to a second old between two frames, and the picture must not flicker
LOST_AFTER_AT_LEAST = 1.5


class TooManyViewers(HappyHouseError):
    """Every live-view slot is taken ([web] max_streams)."""


class LiveView:
    def __init__(self, service, fps: float = 4.0, width: int = 480, max_viewers: int = 24,
                 clock=time.monotonic) -> None:
        self.service = service
        self.period = 1.0 / float(fps)
        self.width = int(width)
        self.max_viewers = int(max_viewers)
        self.clock = clock
        self.viewers = 0
        self.encoded = 0  # JPEGs made (the bench reads it)
        self._jpeg: Optional[bytes] = None
        self._serial = 0
        self._made_at = 0.0
        self._last_key = None
        self._cond = threading.Condition()
        self._wanted = threading.Event()  # someone waits for a frame
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- lifetime --------------------------------------------------------------
    def start(self) -> "LiveView":
        self._thread = threading.Thread(target=self._run, name="happyhouse-live-view", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wanted.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- viewers ---------------------------------------------------------------
    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """One live-view slot for a stream; TooManyViewers when all are taken."""
        with self._cond:
            if self.viewers >= self.max_viewers:
                raise TooManyViewers(f"{self.viewers} live views are open ([web] max_streams)")
            self.viewers += 1
        self._wanted.set()
        try:
            yield
        finally:
            with self._cond:
                self.viewers -= 1

    def next_jpeg(self, after: int, timeout: float) -> Optional[Tuple[int, bytes]]:
        """The first JPEG newer than serial ``after`` (waits up to ``timeout``), or None."""
        end = time.monotonic() + timeout
        self._wanted.set()
        with self._cond:
            while not self._stop.is_set() and (self._jpeg is None or self._serial <= after):
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
                self._wanted.set()
            if self._stop.is_set() or self._jpeg is None:
                return None
            return self._serial, self._jpeg

    # -- the encoder -------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self.viewers == 0 and not self._wanted.is_set():
                self._wanted.wait(1.0)
                continue
            self._wanted.clear()
            started = time.monotonic()
            try:
                self._make()
            except Exception:  # the page must never take the door down
                import logging

                logging.getLogger(__name__).exception("live view: frame not drawn")
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))

    def _make(self) -> None:
        door = self.service.door
        latest = door.latest if door is not None else None
        state = door.state.value if door is not None else "reloading"
        lost_for = camera_lost_for(door, latest)
        # while the camera is lost the picture says for how long: a new one each second
        key = (id(latest[0]) if latest else None, state,
               None if lost_for is None else int(lost_for))
        now = time.monotonic()
        if key == self._last_key and now - self._made_at < KEEPALIVE:
            return
        image = self.render(latest, door, state, lost_for)
        import cv2

        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            return
        with self._cond:
            self._jpeg = data.tobytes()
            self._serial += 1
            self._made_at, self._last_key = now, key
            self.encoded += 1
            self._cond.notify_all()

    def render(self, latest, door, state: str, lost_for: Optional[float] = None) -> np.ndarray:
        """The annotated, downscaled frame; a dark placeholder while there is none, or
        while the camera is lost (``lost_for``: seconds since its last frame, or None)."""
        import cv2

        from ..annotate import AMBER, GREEN, RED, annotate

        # the threshold the frame's score was decided at (its door's), not a reload's newer one
        pipeline = door.pipeline if door is not None else self.service.parts.pipeline
        threshold = getattr(pipeline, "threshold", None)
        if latest is None or lost_for is not None:
            # never the last face: a stale picture at the door would pass for the present
            image = np.full((int(self.width * 3 / 4), self.width, 3), 40, np.uint8)
            lines = [(placeholder_text(state, lost_for), AMBER)]
        else:
            frame, obs = latest
            src = frame.image
            scale = self.width / float(src.shape[1])
            image = cv2.resize(src, (self.width, max(1, int(round(src.shape[0] * scale)))),
                               interpolation=cv2.INTER_AREA)
            lines = []
            if obs is not None:
                image = annotate(image, _Scaled(obs, scale), threshold)
            else:
                lines.append((f"{state}: not deciding (no face box)", AMBER))
        colour = {"unlocked": GREEN, "fault": RED, "armed": (255, 255, 255)}.get(state, AMBER)
        lines.append((f"door: {state.upper()}", colour))
        if door is not None and state == "armed":
            lines.append((door.vote_text, (255, 255, 255)))
        return _bottom_text(image, lines)


def camera_lost_for(door, latest) -> Optional[float]:
    """Seconds since the door's last frame when its camera counts as lost (the door is in
    fault, or that frame is older than ``[camera] stale_after``, see
    :data:`LOST_AFTER_AT_LEAST`); None while frames come."""
    if door is None or latest is None:
        return None
    age = door.clock() - latest[0].timestamp
    if door.state.value == "fault" or not age <= max(door.stale_after, LOST_AFTER_AT_LEAST):
        return max(0.0, age)
    return None


def placeholder_text(state: str, lost_for: Optional[float]) -> str:
    if lost_for is not None:
        return f"camera lost, last frame {lost_for:.0f} s ago"
    return "camera lost" if state == "fault" else "no frame yet"


class _Scaled:
    """An observation with its face box scaled to the live view's size."""

    def __init__(self, obs, scale: float) -> None:
        self.score, self.happy = obs.score, obs.happy
        self.face = None if obs.face is None else tuple(int(round(v * scale)) for v in obs.face)


def _bottom_text(image: np.ndarray, lines) -> np.ndarray:
    import cv2

    out = image if image.flags.writeable else image.copy()
    scale = max(0.4, out.shape[1] / 900.0)
    step = int(24 * scale / 0.55)
    for row, (text, colour) in enumerate(reversed(lines)):
        origin = (8, out.shape[0] - 10 - row * step)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out
