"""Latch: gpiozero output with MockFactory; locked on creation, expiry, close."""

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import LatchError
from happyhouse.daemon.latch import DoorContact, ExitButton, Latch, force_lock, make_pin_factory


def states(pin):
    return [s.state for s in pin.states]


def wait_until(predicate, timeout=5.0):
    """Poll (no timing assertion: only an upper bound far above the expected time)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def factory():
    return MockFactory()


def test_new_latch_is_locked_and_drives_the_inactive_level(factory):
    with Latch("GPIO17", pin_factory=factory) as latch:
        assert not latch.is_unlocked
        assert latch.pin.function == "output" and latch.pin.state is False
    with Latch("GPIO18", active_high=False, pin_factory=factory) as latch:
        assert not latch.is_unlocked
        assert latch.pin.state is True  # active-low relay: high = locked


def test_unlock_then_lock_drives_the_pin(factory):
    latch = Latch("GPIO17", pin_factory=factory)
    assert latch.unlock(5.0) == 5.0
    assert latch.is_unlocked and latch.pin.state is True
    assert 0 < latch.remaining <= 5.0
    latch.lock()
    assert not latch.is_unlocked and latch.remaining == 0.0
    assert states(latch.pin) == [False, True, False]
    latch.close()


def test_unlock_time_is_capped_by_max_open(factory):
    latch = Latch("GPIO17", pin_factory=factory, max_open_s=2.0)
    assert latch.unlock(30.0) == 2.0
    latch.close()


def test_timer_relocks_without_the_main_loop(factory):
    latch = Latch("GPIO17", pin_factory=factory, max_open_s=0.1)
    latch.unlock(60.0)  # a hung main loop never calls lock()
    assert latch.is_unlocked
    assert wait_until(lambda: not latch.is_unlocked)
    assert latch.expired == 1
    assert states(latch.pin) == [False, True, False]
    latch.close()


def test_a_cancelled_timer_does_not_cut_a_newer_opening_short(factory):
    latch = Latch("GPIO17", pin_factory=factory)
    latch.unlock(0.05)
    latch.lock()
    latch.unlock(10.0)
    time.sleep(0.2)  # well past the first timer
    assert latch.is_unlocked and latch.expired == 0
    latch.close()
    assert states(latch.pin) == [False, True, False, True, False]


def test_close_locks_first_then_releases_the_pin(factory):
    latch = Latch("GPIO17", pin_factory=factory)
    latch.unlock(5.0)
    latch.close()
    assert states(latch.pin) == [False, True, False]
    assert not latch.is_unlocked
    latch.lock()  # idempotent after close
    with pytest.raises(LatchError, match="closed"):
        latch.unlock(1.0)
    # released: the pin can be claimed again
    Latch("GPIO17", pin_factory=factory).close()


def test_context_manager_locks_on_exception(factory):
    with pytest.raises(RuntimeError):
        with Latch("GPIO17", pin_factory=factory) as latch:
            latch.unlock(5.0)
            raise RuntimeError("boom")
    assert states(latch.pin)[-1] is False


@pytest.mark.parametrize("seconds", [0, -1, float("nan")])
def test_unlock_rejects_nonpositive_time(factory, seconds):
    with Latch("GPIO17", pin_factory=factory) as latch:
        with pytest.raises(LatchError):
            latch.unlock(seconds)
        assert not latch.is_unlocked


def test_pin_in_use_or_invalid_is_a_latch_error(factory):
    with Latch("GPIO17", pin_factory=factory):
        with pytest.raises(LatchError, match="GPIO17"):
            Latch("GPIO17", pin_factory=factory)
    with pytest.raises(LatchError, match="GPIO99"):
        Latch("GPIO99", pin_factory=factory)


def test_concurrent_unlock_and_lock_end_locked(factory):
    latch = Latch("GPIO17", pin_factory=factory, max_open_s=0.01)

    def hammer():
        for _ in range(200):
            latch.unlock(0.005)
            latch.lock()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latch.lock()
    assert wait_until(lambda: not latch.is_unlocked)
    time.sleep(0.05)  # any straggling timer finds nothing to relock
    assert not latch.is_unlocked and latch.pin.state is False
    latch.close()


def test_make_pin_factory_names(monkeypatch):
    assert isinstance(make_pin_factory("mock"), MockFactory)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    assert isinstance(make_pin_factory("auto"), MockFactory)
    with pytest.raises(LatchError, match="unknown GPIO pin factory"):
        make_pin_factory("bogus")


def test_missing_factory_library_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_lgpio(name, *args, **kwargs):
        if name == "lgpio" or name.startswith("gpiozero.pins.lgpio"):
            raise ImportError("No module named 'lgpio'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lgpio)
    with pytest.raises(LatchError, match="python3-lgpio"):
        make_pin_factory("lgpio")


def test_auto_without_gpio_hardware_says_use_mock(monkeypatch):
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    def none_loads():
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(none_loads))
    with pytest.raises(LatchError, match="gpio = mock"):
        make_pin_factory("auto")


def test_force_lock_drives_a_stuck_line_inactive_and_releases_it(factory):
    cfg = load_config(None, {"latch.gpio": "mock", "latch.pin": "GPIO17"})
    pin = factory.pin("GPIO17")
    pin.function = "output"
    pin.state = True  # what a SIGKILLed daemon leaves behind
    assert force_lock(cfg, pin_factory=factory) == 0
    assert pin.states[-1].state is False
    assert pin.function == "input"  # released
    Latch("GPIO17", pin_factory=factory).close()  # and claimable again


def test_force_lock_active_low_drives_high(factory):
    cfg = load_config(None, {"latch.gpio": "mock", "latch.active_high": False})
    pin = factory.pin("GPIO17")
    pin.function = "output"
    pin.state = False  # active-low: low = unlocked
    assert force_lock(cfg, pin_factory=factory) == 0
    assert pin.states[-1].state is True


def test_door_contact_calls_back_when_the_door_closes(factory):
    closes = []
    contact = DoorContact("GPIO22", pull_up=True, pin_factory=factory,
                          on_close=lambda: closes.append(1))
    pin = factory.pin("GPIO22")
    pin.drive_low()  # closed door pulls the pin low
    assert contact.is_closed and closes == [1]
    pin.drive_high()  # opened
    assert not contact.is_closed and closes == [1]
    pin.drive_low()
    assert closes == [1, 1]
    contact.close()


def test_exit_button_calls_back_on_press(factory):
    presses = []
    button = ExitButton("GPIO27", pull_up=True, pin_factory=factory,
                        on_press=lambda: presses.append(1))
    pin = factory.pin("GPIO27")
    pin.drive_low()
    pin.drive_high()
    assert presses == [1]
    button.close()
