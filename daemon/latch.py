"""The door latch: one gpiozero output, locked unless told otherwise.

The latch is a :class:`gpiozero.DigitalOutputDevice` created with
``initial_value=False`` (locked from the first instant it is claimed). An
opening is always bounded twice: the service relocks at its own deadline, and
a timer thread owned by the latch relocks at the granted time (at most
``max_open_s``) even when the main loop is hung in a camera read or in
inference.

Release and the resting level: gpiozero's ``close()`` (and the pin factory's
cleanup) turns the line back into an input *without* a pull (lgpio and
RPi.GPIO both do this). A released line therefore rests wherever the relay
driver's pull resistor puts it. Wire the driver so its resting level is
*locked* (a pull-down for ``active_high = true``, a pull-up otherwise); the
same holds at boot, before the daemon ever runs. :func:`force_lock` (for
``ExecStopPost=``) drives the line inactive, checks it, then releases it: it
cannot leave the pin claimed after its process exits, but it undoes a line a
killed daemon left driven active.

The optional door-controller inputs live here too: a door contact (relock
as soon as the door closes after being opened) and a request-to-exit button.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from .errors import LatchError

log = logging.getLogger("happyhouse.daemon.latch")

# name -> (module, class, what to install when the import fails)
_FACTORIES = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory",
              "install python3-lgpio (Raspberry Pi OS) or `pip install lgpio`"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory",
                "install python3-rpi.gpio or `pip install RPi.GPIO`"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory",
               "install python3-pigpio and start the pigpiod daemon"),
    "native": ("gpiozero.pins.native", "NativeFactory",
               "the native factory needs /dev/gpiomem on a Raspberry Pi"),
}
_NO_GPIO_FIX = ("on a Raspberry Pi install python3-lgpio; on any other machine use "
                "[latch] gpio = mock (or --gpio mock)")


def is_mock_factory(factory) -> bool:
    """Is ``factory`` gpiozero's mock pins (no real line is driven)?"""
    from gpiozero.pins.mock import MockFactory

    return isinstance(factory, MockFactory)


def mock_configured(cfg) -> bool:
    """Does ``cfg`` name gpiozero's mock pins, as :func:`make_pin_factory` builds them
    (``gpio = mock``, or ``auto`` with ``GPIOZERO_PIN_FACTORY=mock``)? For the tools
    that judge before any factory is made."""
    return cfg.latch_gpio == "mock" or (
        cfg.latch_gpio == "auto"
        and os.environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower() == "mock")


def make_pin_factory(name: str):
    """A gpiozero pin factory by config name; errors say what to install.

    ``auto`` honours ``GPIOZERO_PIN_FACTORY`` and otherwise tries gpiozero's
    own preference order (lgpio, RPi.GPIO, pigpio, native).
    """
    try:
        import gpiozero  # noqa: F401  (a clear error when gpiozero itself is missing)
    except ImportError:
        raise LatchError("gpiozero is not installed: `pip install gpiozero` "
                         "(or install python3-gpiozero)") from None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    if name == "auto":
        import warnings

        from gpiozero import Device

        env = os.environ.get("GPIOZERO_PIN_FACTORY")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # gpiozero warns on every fallback step
                return Device._default_pin_factory()
        except Exception as exc:
            where = f"GPIOZERO_PIN_FACTORY={env}" if env else "gpiozero's default pin factories"
            raise LatchError(f"cannot load {where}: {_one_line(exc)}; {_NO_GPIO_FIX}") from None
    if name not in _FACTORIES:
        raise LatchError(f"unknown GPIO pin factory {name!r}: use auto, mock, "
                         f"{', '.join(_FACTORIES)}")
    module_name, class_name, fix = _FACTORIES[name]
    try:
        module = __import__(module_name, fromlist=(class_name,))
        return getattr(module, class_name)()
    except Exception as exc:
        raise LatchError(f"cannot load the {name} GPIO pin factory: {_one_line(exc)}; {fix}, "
                         f"or use [latch] gpio = mock on a machine without GPIO") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Latch:
    """A door latch on one output pin; locked on creation, on close, on expiry.

    ``unlock(seconds)`` opens for at most ``max_open_s`` and arms a timer thread
    that relocks by itself; ``lock()`` relocks at once. Thread-safe: the timer,
    input callbacks and the main loop may all call it.
    """

    def __init__(self, pin: str, active_high: bool = True, pin_factory: Any = None,
                 max_open_s: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not max_open_s > 0:
            raise LatchError(f"max_open_s must be positive, got {max_open_s!r}")
        from gpiozero import DigitalOutputDevice

        try:
            self._device = DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                               pin_factory=pin_factory)
        except Exception as exc:
            raise LatchError(f"cannot claim latch pin {pin} as an output: {_one_line(exc)}; "
                             f"check [latch] pin and that no other program uses it") from None
        self.pin_name = str(pin)
        self._pin = self._device.pin  # kept after close() so tests can read .states
        self.max_open_s = float(max_open_s)
        self._clock = clock
        self._mutex = threading.RLock()
        self._timer: Optional[threading.Timer] = None
        self._generation = 0  # a stale timer must not relock a newer opening early
        self._deadline: Optional[float] = None
        self.opened = 0  # number of openings, for status and tests
        self.expired = 0  # openings ended by the latch's own timer

    # -- state -------------------------------------------------------------
    @property
    def factory(self):
        """The pin factory this latch was built on (the pin's own ``factory`` may be the
        one underneath it)."""
        return self._device.pin_factory

    @property
    def pin(self):
        """The gpiozero pin (a MockPin in tests: check ``.states``)."""
        return self._pin

    @property
    def is_unlocked(self) -> bool:
        with self._mutex:
            return not self._device.closed and bool(self._device.value)

    @property
    def remaining(self) -> float:
        """Seconds of the current opening left by the latch clock (0 when locked)."""
        with self._mutex:
            if self._deadline is None or not self.is_unlocked:
                return 0.0
            return max(0.0, self._deadline - self._clock())

    # -- actions -----------------------------------------------------------
    def unlock(self, seconds: float) -> float:
        """Open for ``seconds`` (capped at ``max_open_s``); returns the time granted."""
        granted = min(float(seconds), self.max_open_s)
        if not granted > 0:  # also rejects NaN
            raise LatchError(f"unlock time must be positive, got {seconds!r}")
        with self._mutex:
            if self._device.closed:
                raise LatchError(f"latch pin {self.pin_name} is closed")
            self._cancel_timer()
            self._generation += 1
            # arm the relock before driving the line: no instant without a bound
            timer = threading.Timer(granted, self._expire, args=(self._generation,))
            timer.daemon = True
            timer.name = f"latch-relock-{self.pin_name}"
            self._timer = timer
            timer.start()
            self._deadline = self._clock() + granted
            self._device.on()
            self.opened += 1
        log.debug("latch %s unlocked for %.2fs", self.pin_name, granted)
        return granted

    def lock(self) -> None:
        """Drive the line inactive now (idempotent, safe on a closed latch)."""
        with self._mutex:
            self._cancel_timer()
            self._deadline = None
            if not self._device.closed:
                self._device.off()

    def close(self) -> None:
        """Lock, then release the pin (see the module doc on resting levels)."""
        with self._mutex:
            try:
                self.lock()
            finally:
                self._device.close()

    def _expire(self, generation: int) -> None:
        with self._mutex:
            if generation != self._generation or self._device.closed:
                return
            was_open = bool(self._device.value)
            self._timer = None
            self._deadline = None
            self._device.off()
        if was_open:
            self.expired += 1
            log.debug("latch %s relocked by its timer", self.pin_name)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __enter__(self) -> "Latch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._device.closed else ("unlocked" if self.is_unlocked else "locked")
        return f"<Latch {self.pin_name} {state}>"


class DoorContact:
    """A door contact: ``on_close`` runs when the door closes after being opened.

    With ``pull_up=True`` the contact is wired to ground and a closed door
    pulls the pin low; either way gpiozero reports a closed door as active.
    """

    def __init__(self, pin: str, pull_up: bool = True, pin_factory: Any = None,
                 on_close: Optional[Callable[[], None]] = None,
                 on_open: Optional[Callable[[], None]] = None) -> None:
        from gpiozero import DigitalInputDevice

        try:
            self._device = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        except Exception as exc:
            raise LatchError(f"cannot claim door contact pin {pin}: {_one_line(exc)}; "
                             f"check [latch] door_contact_pin") from None
        self._on_close = on_close
        self._on_open = on_open
        self._device.when_activated = self._closed
        self._device.when_deactivated = self._opened

    @property
    def is_closed(self) -> bool:
        return bool(self._device.is_active)

    def _closed(self, *_: Any) -> None:
        if self._on_close is not None:
            self._on_close()

    def _opened(self, *_: Any) -> None:
        if self._on_open is not None:
            self._on_open()

    def close(self) -> None:
        self._device.close()


class ExitButton:
    """A request-to-exit button: ``on_press`` runs on each press (gpiozero thread)."""

    def __init__(self, pin: str, pull_up: bool = True, pin_factory: Any = None,
                 on_press: Optional[Callable[[], None]] = None) -> None:
        from gpiozero import Button

        try:
            self._device = Button(pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory)
        except Exception as exc:
            raise LatchError(f"cannot claim exit button pin {pin}: {_one_line(exc)}; "
                             f"check [latch] exit_button_pin") from None
        self._on_press = on_press
        self._device.when_pressed = self._pressed

    def _pressed(self, *_: Any) -> None:
        if self._on_press is not None:
            self._on_press()

    def close(self) -> None:
        self._device.close()


def latch_from_config(cfg, pin_factory: Any = None, clock: Callable[[], float] = time.monotonic) -> Latch:
    """The latch a config describes (factory from ``[latch] gpio`` unless injected)."""
    factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.latch_gpio)
    return Latch(cfg.latch_pin, active_high=cfg.latch_active_high, pin_factory=factory,
                 max_open_s=cfg.decision_max_unlock_seconds, clock=clock)


@contextmanager
def claimed_latch(cfg, pin_factory: Any = None) -> Iterator[Latch]:
    """The configured latch for one short job (a tool), closed and released afterwards.

    On the way out, however the block ends (an error, a signal raised as
    :class:`~.errors.Interrupted`), the latch is locked, its pin released and a
    pin factory made here closed; an injected ``pin_factory`` stays open.
    """
    factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.latch_gpio)
    try:
        with latch_from_config(cfg, pin_factory=factory) as latch:
            yield latch
    finally:
        if pin_factory is None:
            factory.close()


def force_lock(cfg, pin_factory: Any = None) -> int:
    """``--force-lock``: drive the latch line inactive, verify it, release it; exit 0.

    Used by systemd's ``ExecStopPost=`` so that a daemon killed with the line
    driven active (SIGKILL, a crash in native code) leaves a locked door. After
    release the line rests on the relay driver's pull resistor, which must hold
    the locked level (see the module doc).
    """
    with claimed_latch(cfg, pin_factory) as latch:
        latch.lock()
        if latch.is_unlocked:  # read back: a line that will not go inactive is a fault
            raise LatchError(f"latch pin {cfg.latch_pin} does not read back as locked")
        log.info("latch %s forced locked (driven %s, then released)", cfg.latch_pin,
                 "low" if cfg.latch_active_high else "high")
    return 0
