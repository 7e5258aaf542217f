"""Test fakes shared across test folders (``tests/`` is put on ``sys.path`` by
``tests/conftest.py`` because pytest runs with importlib mode).

* :func:`clocked_factory`: gpiozero mock pins that time-stamp their changes with a given clock
* :class:`FixedGate`: a face gate that always answers the same box
* :func:`flat_image`, :func:`replay_cfg`: one-colour frames and a config that replays
  pictures fast (the frame-source and device tests)
* :class:`FakeClock` (fake time whose ``advance`` fires due :class:`FakeTimer` s) and
  :func:`fake_latch_timers` (the latch's relock timer on that clock, not on wall time)
* :class:`ScriptedSource`, :class:`ScriptedPipeline`, :class:`Recorder`,
  :func:`make_cfg`, :func:`open_times`: a door loop driven frame by frame on fake time (the
  Door state machine tests and the ``run_service`` tests)
"""

import heapq
import itertools
import threading
import types
from contextlib import contextmanager
from typing import Callable, List, Optional, Tuple

import numpy as np
from gpiozero.pins.mock import MockFactory, MockPin, PinState

from happyhouse.daemon.config import load_config
from happyhouse.daemon.pipeline import Observation
from happyhouse.daemon.sources import Frame

#: the scripted camera's frame rate
FPS = 10.0
#: the face every scripted frame but a faceless one has
BOX = (100, 80, 120, 120)


def clocked_factory(clock: Callable[[], float]) -> MockFactory:
    """A MockFactory whose pins time-stamp their changes with ``clock``."""

    class ClockedPin(MockPin):
        def _change_state(self, value):
            if self._state != value:
                t = clock()
                self._state = value
                self.states.append(PinState(t - self._last_change, value))
                self._last_change = t
                return True
            return False

        def clear_states(self):
            self._last_change = clock()
            self.states = [PinState(0.0, self._state)]

    return MockFactory(pin_class=ClockedPin)


class FixedGate:
    """A face gate that always answers ``box`` (None = no face); counts its calls."""

    description = "fixed"

    def __init__(self, box):
        self.box, self.calls = box, 0

    def find(self, frame):
        self.calls += 1
        return self.box

    def why_no_face(self, frame):
        return "the fixed gate answers no face"


# -- frames and devices ---------------------------------------------------------------------
def flat_image(value, h=48, w=64):
    """An ``h`` x ``w`` BGR uint8 image of one value: frames told apart by one pixel."""
    return np.full((h, w, 3), value, np.uint8)


def replay_cfg():
    """The default config with pictures replayed at 50 fps, so source tests wait little."""
    return load_config(None, {"camera.fps": 50.0})


# -- the door loop on fake time --------------------------------------------------------------
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


@contextmanager
def fake_latch_timers(clock: FakeClock):
    """The latch module's ``threading.Timer`` runs on ``clock`` inside this block."""
    import happyhouse.daemon.latch as latch_mod

    shim = types.SimpleNamespace(RLock=threading.RLock, Timer=FakeTimer)
    saved, saved_clock = latch_mod.threading, FakeClock.active
    latch_mod.threading, FakeClock.active = shim, clock
    try:
        yield clock
    finally:
        latch_mod.threading, FakeClock.active = saved, saved_clock


def open_times(pin, t0):
    """[(opened_at, closed_at)] relative to t0 from a pin's state history."""
    t, out, opened = t0, [], None
    for delta, state in pin.states[1:]:
        t += delta
        if state:
            opened = t
        else:
            out.append((round(opened - t0, 3), round(t - t0, 3)))
    return out


class ScriptedSource:
    """Script items: 'H' happy face, 'n' unhappy face, '-' no face, '.' no frame
    (the camera stalls for one timeout); a tuple (kind, age) delivers an old frame.
    ``hooks[i]`` runs just before item i is delivered."""

    description = "scripted"

    def __init__(self, clock, script, hooks=None, fps=FPS):
        self.clock = clock
        self.items = list(script)
        self.hooks = dict(hooks or {})
        self.dt = 1.0 / fps
        self.kinds = {}
        self.index = 0
        self.opened = 0
        self.closed = 0
        self.image = np.zeros((48, 64, 3), np.uint8)

    def open(self):
        self.opened += 1

    def close(self):
        self.closed += 1

    def latest(self, timeout):
        if self.index in self.hooks:
            self.hooks.pop(self.index)()
        if self.index >= len(self.items):
            self.clock.advance(timeout)
            return None
        item = self.items[self.index]
        self.index += 1
        kind, age = item if isinstance(item, tuple) else (item, 0.0)
        if kind == ".":
            self.clock.advance(timeout)
            return None
        self.clock.advance(self.dt)
        frame = Frame(self.image, self.clock() - age, self.index)
        self.kinds[frame.seq] = kind
        return frame

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


class ScriptedPipeline:
    model_sha256 = "f" * 64

    def __init__(self, source, clock, latency=0.02):
        self.source = source
        self.clock = clock
        self.latency = latency
        self.observed = []

    def observe(self, frame):
        self.clock.advance(self.latency)
        kind = self.source.kinds[frame.seq]
        self.observed.append(frame.seq)
        face = None if kind == "-" else BOX
        score = None if kind == "-" else (0.93 if kind == "H" else 0.08)
        return Observation(frame.timestamp, frame.seq, face, score, kind == "H", self.latency * 1000)


class Recorder:
    """A notify sender that records messages (the real socket is tested separately)."""

    def __init__(self, clock):
        self.clock = clock
        self.messages = []

    def __call__(self, message):
        self.messages.append((self.clock(), message))
        return True

    def times(self, line):
        return [t for t, m in self.messages if line in m.splitlines()]


def make_cfg(tmp_path, **values):
    """A mock-latch config: open 5 s, 3 s cooldown, 3 happy votes of 5; ``values`` override."""
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state"),
            "decision.unlock_seconds": 5.0, "decision.cooldown_seconds": 3.0,
            "decision.votes_needed": 3, "decision.window": 5}
    base.update(values)
    return load_config(None, base)


def classifier_only_bundle(folder):
    """The shipped classifier as a format-1 bundle: no geometry stage, no light normalisation.

    For tests of the pipeline's mechanics with a fake classifier, where the
    shipped bundle's geometry stage would need its real mesh and head.
    """
    from pathlib import Path

    from happyhouse.daemon.bundle import load_bundle, write_bundle

    shipped = load_bundle(None)
    meta = {k: v for k, v in shipped.meta.items()
            if k not in ("format", "format_version", "model_file", "sha256", "golden", "geometry")}
    meta["preprocess"] = {k: v for k, v in meta["preprocess"].items() if k != "normalize"}
    inputs, outputs = shipped.golden()
    return write_bundle(Path(folder) / "classifier-only", shipped.model_path.read_bytes(), meta,
                        inputs, outputs)


_PLAIN = []


def plain_bundle():
    """:func:`classifier_only_bundle`, written once per test process (a temporary folder)."""
    import tempfile

    if not _PLAIN:
        _PLAIN.append(classifier_only_bundle(tempfile.mkdtemp(prefix="happyhouse-plain-")))
    return _PLAIN[0]
