"""Fakes for the reliability tests: fake time with timers, clocked mock pins, and the
real :class:`~happyhouse.daemon.service.Service` driven one camera read at a time (lockstep).

* :class:`FakeClock` (from ``tests/fakes.py``) is the service's monotonic clock. The latch's relock timer
  (a ``threading.Timer`` in production) is replaced by :class:`FakeTimer`,
  which fires when fake time passes its deadline: a hung loop is then
  modelled exactly, and "never open longer than the cap" is checked to the
  microsecond instead of with real sleeps.
* :func:`clocked_factory` gives ``MockFactory`` pins that time-stamp
  ``pin.states`` with the fake clock (as in tests/daemon/test_service.py).
* :class:`DoorRig` drives the real ``Service`` that :func:`run_service` loops over
  (its parts, the real Door, Vote and Latch, its reload and stop path) one loop
  pass at a time in the test thread; each camera read runs one command (a frame,
  a stall, an error) chosen by the test. No threads: a step is deterministic.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import numpy as np
from fakes import (BOX, FakeClock, Recorder, ScriptedFrame, ScriptedPipeline,  # noqa: F401  (re-exported)
                   clocked_factory, fake_latch_timers, on_intervals)
from happyhouse.daemon.pipeline import Observation  # noqa: F401  (re-exported to the tests)

IMAGE = np.zeros((48, 64, 3), np.uint8)
LATCH_PIN, EXIT_PIN, CONTACT_PIN = "GPIO17", "GPIO27", "GPIO22"


# -- scripted parts ------------------------------------------------------------------------
class CommandSource:
    """A camera whose next ``latest()`` runs the command the test set (None: a stall)."""

    description = "scripted camera"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.pending: Optional[Callable] = None
        self.opened = self.closed = 0
        self.seq = 0
        self.last: Optional[ScriptedFrame] = None
        self.received: Optional[Tuple[ScriptedFrame, float]] = None  # (frame, clock at hand-over)

    def open(self) -> None:
        self.opened += 1

    def close(self) -> None:
        self.closed += 1

    def latest(self, timeout: float):
        command, self.pending = (self.pending or none_cmd()), None
        self.received = None
        return command(self, timeout)

    def deliver(self, frame: Optional[ScriptedFrame]) -> Optional[ScriptedFrame]:
        self.received = None if frame is None else (frame, self.clock())
        return frame


# commands: callables (source, timeout) -> Frame | None, or raising
def frame_cmd(kind: str, age: float = 0.0, latency: float = 0.02, dt: float = 0.1):
    def command(src: CommandSource, timeout: float):
        src.clock.advance(min(dt, timeout))  # latest() honours its timeout
        src.seq += 1
        frame = ScriptedFrame(IMAGE, src.clock() - age, src.seq, kind=kind, latency=latency)
        src.last = frame
        return src.deliver(frame)
    return command


def duplicate_cmd(dt: float = 0.1):
    """The previous frame again: same seq, same timestamp (a source bug)."""
    def command(src: CommandSource, timeout: float):
        src.clock.advance(min(dt, timeout))
        return src.deliver(src.last)
    return command


def none_cmd():
    def command(src: CommandSource, timeout: float):
        src.clock.advance(timeout)
        return src.deliver(None)
    return command


def raise_cmd(exc: BaseException, dt: Optional[float] = None):
    def command(src: CommandSource, timeout: float):
        src.clock.advance(timeout if dt is None else dt)
        src.received = None
        raise exc
    return command


# -- the service loop, one step at a time -------------------------------------------------
def write_conf(path, values) -> None:
    sections = {}
    for key, value in values.items():
        section, name = key.split(".")
        sections.setdefault(section, []).append(f"{name} = {value}")
    path.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))


def spy_door_class(rig: "DoorRig"):
    """The real Door; every state change is checked against the latch pin."""
    from happyhouse.daemon.door import Door, State

    class SpyDoor(Door):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            rig.doors.append(self)

        def _enter(self, state, now, reason):
            on = rig.latch_on()
            if state is State.UNLOCKED and not on:
                rig.violations.append(f"entered UNLOCKED ({reason}) with the latch locked")
            if state is not State.UNLOCKED and on:
                rig.violations.append(f"entered {state.value} ({reason}) with the latch driven")
            super()._enter(state, now, reason)

    return SpyDoor


class DoorRig:
    """The real ``Service`` that ``run_service`` loops over, step by step in the test
    thread: its parts (latch, door contact), its doors, its reload and stop path; only
    the camera, the pipeline, the pins and the clock are fakes.

    ``step(command)`` is one pass of ``run_service``'s loop; ``sighup()`` and
    ``sigterm()`` are what the loop does when it finds the flag set.
    """

    def __init__(self, conf_path, values: dict, watchdog_usec: Optional[int] = 400_000) -> None:
        from happyhouse.daemon.cli import build_parser, service_options
        from happyhouse.daemon.config import load_config
        from happyhouse.daemon.notify import Notifier
        from happyhouse.daemon.service import Service

        self.conf_path = conf_path
        write_conf(conf_path, values)
        self.args = build_parser().parse_args(["--config", str(conf_path), "--gpio", "mock"])
        self.cfg = load_config(str(conf_path), {"latch.gpio": "mock"}, required=True)
        self.reload = service_options(self.args)["reload"]  # what the CLI gives run_service
        self.clock = FakeClock()
        self.t0 = self.clock()
        self.factory = clocked_factory(self.clock)
        self.source = CommandSource(self.clock)
        self.pipeline = ScriptedPipeline(self.clock)
        self.violations: List[str] = []
        self.steps = 0
        self.recorder = Recorder(self.clock, step=lambda: self.steps, check=self._check_locked)
        env = {"NOTIFY_SOCKET": "/unused"}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.notifier = Notifier(env, sender=self.recorder)
        self.doors: List[Any] = []  # every door the service built, in order
        self.service = Service.from_config(self.cfg, self.reload, pin_factory=self.factory,
                                           source=self.source, pipeline=self.pipeline,
                                           notifier=self.notifier, clock=self.clock,
                                           door_class=spy_door_class(self))
        self.finished = False
        self.outcome: Any = None
        self._latch_pin = None

    def start(self) -> "DoorRig":
        self.service.start()
        return self

    @property
    def door(self):
        return self.doors[-1] if self.doors else None

    def step(self, command=None) -> None:
        assert not self.finished
        self.steps += 1
        self.source.pending = command
        try:
            self.service.step()
        except Exception as exc:  # what run_service does with an error: close, then raise
            self.service.close(exc)
            self.finished, self.outcome = True, exc

    def sigterm(self) -> None:
        self.steps += 1
        self.service.stop("SIGTERM")
        self.service.close()
        self.finished, self.outcome = True, 0

    def sighup(self) -> None:
        self.steps += 1
        self.service.reload()

    def _check_locked(self, message: str) -> None:
        """RELOADING/STOPPING must be sent with the latch locked at that very instant."""
        first = message.splitlines()[0]
        if first in ("RELOADING=1", "STOPPING=1") and self.latch_on():
            self.violations.append(f"{first} sent with the latch driven")

    # -- views
    @property
    def latch_pin(self):
        if self._latch_pin is None:
            self._latch_pin = self.factory.pin(LATCH_PIN)  # the same object the latch claims
        return self._latch_pin

    def latch_on(self) -> bool:
        pin = self.latch_pin  # the same pin object the latch claims (created on first use)
        return pin.function == "output" and bool(pin.state)
