"""The fake frame source for tests and the soak script: deterministic, no threads.

:class:`FakeSource` plays back frames on an injected clock behind the same
``FrameSource`` interface as the real sources in :mod:`.sources`, so the door
loop, ``--once`` and ``--check`` are tested frame by frame without a camera;
:func:`fake_clock` makes its waits instant. It is kept apart from
:mod:`.sources` because nothing in the running daemon uses it.
"""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence, Tuple

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


def fake_clock(start: float = 1000.0) -> Tuple[Callable[[], float], Callable[[float], None]]:
    """A (clock, sleep) pair where sleeping advances the clock: instant, deterministic tests."""
    state = {"now": float(start)}

    def clock() -> float:
        return state["now"]

    def sleep(seconds: float) -> None:
        state["now"] += max(0.0, float(seconds))

    return clock, sleep
