"""Fixtures shared by the daemon tests: ``rig``, a Door over scripted parts (the Door
state machine in test_service.py, ``run_door`` in test_runner.py). The parts
themselves are in ``tests/fakes.py``.
"""

import pytest
from fakes import FakeClock, Recorder, ScriptedPipeline, ScriptedSource, clocked_factory, make_cfg

from happyhouse.daemon.latch import Latch
from happyhouse.daemon.notify import Notifier
from happyhouse.daemon.door import Door


@pytest.fixture
def rig(tmp_path):
    """Build a Door over scripted parts; returns a function(script, **cfg values)."""
    made = []

    def build(script, hooks=None, watchdog_usec=None, **values):
        clock = FakeClock()
        cfg = make_cfg(tmp_path, **values)
        factory = clocked_factory(clock)
        latch = Latch(cfg.latch_pin, pin_factory=factory, max_open_s=cfg.decision_max_unlock_seconds,
                      clock=clock)
        source = ScriptedSource(clock, script, hooks)
        pipeline = ScriptedPipeline(clock)
        recorder = Recorder(clock)
        env = {"NOTIFY_SOCKET": "/unused"}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        notifier = Notifier(env, sender=recorder)
        door = Door(cfg, source, pipeline, latch, notifier, clock=clock)
        made.append(latch)
        return door, clock, factory, recorder

    yield build
    for latch in made:
        latch.close()


@pytest.fixture
def kept_pins(monkeypatch):
    """The one MockFactory every pin factory the daemon makes is; ``.used`` keeps the pins
    it held when the run closed it (closing forgets them), so a test can tell which pins
    a run claimed, or that it claimed none."""
    from gpiozero.pins.mock import MockFactory

    import happyhouse.daemon.latch as latch_mod

    class Kept(MockFactory):
        def __init__(self):
            super().__init__()
            self.used = {}

        def close(self):
            self.used.update(self.pins)
            super().close()

    factory = Kept()
    monkeypatch.setattr(latch_mod, "make_pin_factory", lambda name: factory)
    return factory


@pytest.fixture(scope="module")
def faces(genki_root):
    """Six real 64x64 GENKI-4K faces per class (RGB): the geometry and levelling tests'."""
    from happyhouse.daemon.datasets import load_dataset

    return load_dataset(genki_root, size=64, limit=6)


@pytest.fixture(scope="module")
def mesh():
    """MediaPipe's face mesh as the package ships it."""
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh

    return FaceMesh(ASSET_DIR / MESH_FILE)
