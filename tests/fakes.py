"""Test fakes shared across test folders (``tests/`` is put on ``sys.path`` by
``tests/conftest.py`` because pytest runs with importlib mode).

* :func:`clocked_factory`: gpiozero mock pins that time-stamp their changes with a given clock
* :class:`FixedGate`: a face gate that always answers the same box
"""

from typing import Callable

from gpiozero.pins.mock import MockFactory, MockPin, PinState


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
