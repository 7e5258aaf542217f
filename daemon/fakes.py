"""Fakes shipped with the daemon (as gpiozero ships ``MockFactory``): a camera and time.

The tests, the soak script and anyone building on the door loop use these one
set of doubles; nothing in the running daemon does.

* :class:`FakeSource` plays back frames on an injected clock behind the same
  ``FrameSource`` interface as the real sources in :mod:`.sources`, so the door
  loop, ``--once`` and ``--check`` are tested frame by frame without a camera;
* :class:`FakeClock` is monotonic fake time: sleeping (``advance``) moves it
  and fires the :class:`FakeTimer` s that fall due (``threading.Timer``'s
  interface, so the latch's relock timer runs on fake time);
  :func:`fake_clock` is the (clock, sleep) pair that makes waits instant.

For mock GPIO pins use gpiozero's own ``MockFactory``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .errors import SourceError
from .sources import Frame


class FakeSource:
    """Plays back ``frames`` at ``fps`` on an injectable clock.

    Frame ``i`` is "captured" at ``t0 + i / fps`` (``t0`` = clock at open).
    ``latest(timeout)`` returns the newest frame captured by now and not
    returned before, sleeping (with the injected ``sleep``) up to ``timeout``
    for the next one. ``stalls`` are ``(start, end)`` seconds after open during
    which the camera delivers nothing. ``loop`` replays forever; otherwise the
    source runs dry after the last frame. ``fail_open`` makes ``open()`` raise.
    """

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 15.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Optional[Callable[[float], None]] = None, loop: bool = False,
                 stalls: Sequence[Tuple[float, float]] = (), fail_open: bool = False,
                 description: str = "fake camera") -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.frames = list(frames)
        self.fps, self.clock, self.loop = float(fps), clock, loop
        self.sleep = sleep if sleep is not None else time.sleep
        self.stalls = [(float(a), float(b)) for a, b in stalls]
        self.fail_open, self.description = fail_open, description
        self.nominal_fps = self.fps
        self._t0: Optional[float] = None
        self._returned = -1
        self.opened = self.closed = False

    def open(self, require: bool = True) -> None:
        if self.fail_open:
            raise SourceError(f"cannot open {self.description}: simulated failure")
        self._t0 = self.clock()
        self.opened, self.closed = True, False

    def _newest_index(self, now: float) -> Optional[int]:
        index = int(np.floor((now - self._t0) * self.fps + 1e-9))
        if not self.loop:
            index = min(index, len(self.frames) - 1)
        while index > self._returned:
            at = index / self.fps
            if not any(a <= at < b for a, b in self.stalls):
                return index
            index -= 1  # captured during a stall: never delivered
        return None

    def _frame(self, index: int) -> Frame:
        image = self.frames[index % len(self.frames)]
        return Frame(image, self._t0 + index / self.fps, index + 1)

    @property
    def exhausted(self) -> bool:
        return not self.loop and self._returned >= len(self.frames) - 1

    def latest(self, timeout: float) -> Optional[Frame]:
        if not self.opened or self.closed or not self.frames:
            return None
        deadline = self.clock() + max(0.0, float(timeout))
        while True:
            now = self.clock()
            index = self._newest_index(now)
            if index is not None:
                self._returned = index
                return self._frame(index)
            if now >= deadline or self.exhausted:
                return None
            next_at = self._t0 + (int(np.floor((now - self._t0) * self.fps + 1e-9)) + 1) / self.fps
            self.sleep(max(1e-4, min(next_at, deadline) - now))

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> "FakeSource":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FakeClock:
    """Monotonic fake time; ``advance`` fires due :class:`FakeTimer` s at their due time."""

    active: Optional["FakeClock"] = None  # the clock new FakeTimers attach to

    def __init__(self, start: float = 1000.0) -> None:
        self.t = float(start)
        self._timers: List[Tuple[float, int, "FakeTimer"]] = []
        self._order = itertools.count()
        self._lock = threading.RLock()

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        with self._lock:
            target = self.t + max(0.0, float(dt))
            while self._timers and self._timers[0][0] <= target:
                due, _, timer = heapq.heappop(self._timers)
                self.t = max(self.t, due)
                timer.fire()
            self.t = max(self.t, target)

    def schedule(self, due: float, timer: "FakeTimer") -> None:
        with self._lock:
            heapq.heappush(self._timers, (due, next(self._order), timer))


class FakeTimer:
    """``threading.Timer`` on :attr:`FakeClock.active` (same constructor and methods)."""

    def __init__(self, interval, function, args=None, kwargs=None) -> None:
        self.interval, self.function = float(interval), function
        self.args, self.kwargs = tuple(args or ()), dict(kwargs or {})
        self.daemon, self.name = True, "fake-timer"
        self.cancelled = False
        self.clock = FakeClock.active

    def start(self) -> None:
        self.clock.schedule(self.clock() + self.interval, self)

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self.function(*self.args, **self.kwargs)


def fake_clock(start: float = 1000.0) -> Tuple[Callable[[], float], Callable[[float], None]]:
    """A (clock, sleep) pair where sleeping advances the clock: instant, deterministic tests."""
    clock = FakeClock(start)
    return clock, clock.advance
