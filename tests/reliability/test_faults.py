"""Fault injection through the frame source and the runtime.

Part 1 runs the real ThreadedSource (reader thread, stall detection, reopen
with backoff) over a fake device, and the real Door and Latch on the real
clock, with a pipeline that scores by pixel value (200: a smiling face, 100:
a face, 0: nobody) after the real frame check. Each fault is injected for a
while after healthy frames: reads that fail, raise or block, the camera
vanishing (open fails too) and returning, black, frozen and corrupt frames.
Each time: the latch stays locked during the fault, the watchdog stops where
frames are not fresh, and after the source returns a smile opens the door.

Part 2 uses the fake clock (DoorRig): duplicated frames, a frozen source
handing out the same Frame object, the classifier raising.
"""

import threading
import time

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory
from reliability_rig import (BOX, DoorRig, Observation, ScriptedFrame, fake_latch_timers, frame_cmd,
                             none_cmd)

from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import ModelError, SourceError
from happyhouse.daemon.latch import Latch
from happyhouse.daemon.notify import Notifier
from happyhouse.daemon.preprocess import check_frame
from happyhouse.daemon.door import Door, State
from happyhouse.daemon.devices import Device
from happyhouse.daemon.sources import ThreadedSource

HAPPY, FACE, NOBODY = 200, 100, 0
SHAPE = (48, 64, 3)
STALL, STALE = 0.5, 0.3


class Camera:
    """What the fake device does, switchable from the test thread."""

    def __init__(self):
        self.mode = "face"
        self.value = FACE
        self.released = threading.Event()
        self.opens = 0
        self.frozen = np.full(SHAPE, FACE, np.uint8)


class FaultyDevice(Device):
    description = "faulty camera"

    def __init__(self, camera: Camera):
        self.camera = camera

    def open(self):
        self.camera.opens += 1
        if self.camera.mode == "vanish":
            raise SourceError("cannot open /dev/video0: no such device")

    def read(self):
        cam = self.camera
        time.sleep(0.02)
        mode = cam.mode
        if mode == "none":
            return None
        if mode in ("raise", "vanish"):
            raise OSError("VIDIOC_DQBUF: No such device")
        if mode == "block":
            cam.released.wait(30)
            return np.full(SHAPE, FACE, np.uint8)
        if mode == "black":
            return np.zeros(SHAPE, np.uint8)
        if mode == "frozen":
            return cam.frozen  # the very same buffer every time, new timestamps
        if mode == "corrupt-shape":
            return np.full((48, 64), HAPPY, np.uint8)
        if mode == "corrupt-dtype":
            return np.full(SHAPE, HAPPY, np.float32)
        if mode == "corrupt-tiny":
            return np.full((4, 4, 3), HAPPY, np.uint8)
        return np.full(SHAPE, cam.value, np.uint8)


class PixelPipeline:
    model_sha256 = "0" * 64

    def __init__(self):
        self.observed = 0

    def observe(self, frame):
        image = check_frame(frame.image)  # the real pipeline's first step
        self.observed += 1
        value = int(image[0, 0, 0])
        face = None if value == NOBODY else BOX
        return Observation(frame.timestamp, frame.seq, face, None if face is None else value / 255,
                           value == HAPPY, 1.0)


class Pings:
    def __init__(self):
        self.times = []

    def __call__(self, message):
        if "WATCHDOG=1" in message.splitlines():
            self.times.append(time.monotonic())
        return True


FAULTS = ["none", "raise", "block", "vanish", "black", "frozen", "corrupt-shape", "corrupt-dtype",
          "corrupt-tiny"]
# frames keep arriving fresh (a dark or frozen scene is still a live camera): pings go on
FRESH_FAULTS = ("black", "frozen")


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_keeps_the_latch_locked_and_the_door_recovers(tmp_path, fault):
    cfg = load_config(None, {"latch.gpio": "mock", "service.state_dir": str(tmp_path),
                             "camera.stall_timeout": STALL, "camera.stale_after": STALE,
                             "camera.reopen_backoff_max": 1.0, "decision.unlock_seconds": 0.5,
                             "decision.cooldown_seconds": 0.5, "decision.votes_needed": 2,
                             "decision.window": 3})
    camera = Camera()
    source = ThreadedSource(lambda: FaultyDevice(camera), "faulty camera", stall_timeout=STALL,
                            backoff_max=1.0, open_timeout=2.0)
    latch = Latch("GPIO17", pin_factory=MockFactory(), max_open_s=cfg.decision_max_unlock_seconds)
    pings = Pings()
    notifier = Notifier({"NOTIFY_SOCKET": "/unused", "WATCHDOG_USEC": "100000"}, sender=pings)
    door = Door(cfg, source, PixelPipeline(), latch, notifier)
    on_during_fault = []

    def run_until(done, seconds, watch=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            door.step()
            if watch is not None:
                watch.append(latch.is_unlocked)
            if done():
                return True
        return False

    source.open()
    try:
        door.start()
        assert run_until(lambda: door.state is State.ARMED and len(pings.times) >= 3, 10)
        camera.mode = fault
        fault_at = time.monotonic()
        # the fault lasts over two stall timeouts (for every fault, a happy scene behind it)
        camera.value = HAPPY
        run_until(lambda: time.monotonic() - fault_at > 4 * STALL, 10, on_during_fault)
        fault_end = time.monotonic()
        state_in_fault = door.state
        camera.mode = "face"
        camera.released.set()
        recovered = run_until(lambda: latch.is_unlocked, 15)
    finally:
        source.close()
        latch.close()
    assert not any(on_during_fault), f"latch driven during {fault}"
    assert door.unlocks == int(recovered) == 1, f"no recovery after {fault}"
    quiet = [t for t in pings.times if fault_at + STALL + STALE < t < fault_end]
    if fault in FRESH_FAULTS:
        assert quiet and state_in_fault is State.ARMED  # a live camera: watched, armed, locked
    else:
        assert quiet == [], f"watchdog pinged during {fault}"
        assert state_in_fault is State.FAULT
        assert pings.times[-1] > fault_end  # pings resume with fresh frames
    if fault.startswith("corrupt"):
        assert door.bad_frames > 0
    if fault in ("none", "raise", "block", "vanish"):
        assert source.reopens >= 1


# -- part 2: the fake clock ----------------------------------------------------------------
@pytest.fixture
def rig(tmp_path):
    made = []

    def build(**values):
        base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "s"),
                "decision.votes_needed": 3, "decision.window": 5, "service.log_level": "WARNING"}
        base.update(values)
        r = DoorRig(tmp_path / "door.conf", base)
        timers = fake_latch_timers(r.clock)
        timers.__enter__()
        made.append((r, timers))
        return r.start()

    yield build
    for r, timers in made:
        if not r.finished:
            r.sigterm()
        timers.__exit__(None, None, None)


def pings_in(r, steps):
    return sum("WATCHDOG=1" in m.splitlines() for s in steps for m in r.recorder.in_step(s))


def test_duplicated_frames_go_stale_never_unlock_and_stop_the_watchdog(rig):
    r = rig()
    r.step(frame_cmd("n"))
    first = r.steps

    def same_frame(src, timeout):
        src.clock.advance(0.1)
        return src.deliver(src.last)

    r.step(frame_cmd("H"))
    for _ in range(60):  # the same happy Frame (same seq, same timestamp) for 6 s
        r.step(same_frame)
    assert r.door.unlocks == 0 and not r.latch_on()
    assert r.door.state is State.FAULT
    # pings only while the duplicate was still younger than stale_after (0.5 s)
    assert pings_in(r, range(first + 7, r.steps + 1)) == 0


def test_frozen_source_same_frame_object_forever(rig):
    r = rig(**{"decision.votes_needed": 1, "decision.window": 1})
    image = np.zeros(SHAPE, np.uint8)

    def frozen(src, timeout):  # a driver handing out its last buffer with its old timestamp
        src.clock.advance(timeout)
        return src.deliver(ScriptedFrame(image, 1000.0, 1, kind="n"))

    for _ in range(40):
        r.step(frozen)
    assert r.door.state is State.FAULT and r.door.unlocks == 0
    # fresh for its first 0.5 s (steps 1-2: 0.2 s and 0.4 s old), then never a ping again
    assert pings_in(r, range(3, r.steps + 1)) == 0
    r.step(frame_cmd("H"))  # the camera is back: one fresh happy frame opens (votes_needed 1)
    assert r.latch_on() and r.door.state is State.UNLOCKED


@pytest.mark.parametrize("error", [ModelError("invoke failed"), RuntimeError("XNNPACK crashed"),
                                   MemoryError()])
def test_classifier_raising_ends_the_service_locked(rig, error):
    r = rig()
    r.step(frame_cmd("H"))
    r.step(frame_cmd("H"))
    r.pipeline.fail_next = error
    r.step(frame_cmd("H"))
    assert r.finished and r.outcome is error
    assert not r.latch_on() and r.latch_pin.function == "input"
    assert r.latch_pin.states[-1].state is False and r.door.unlocks == 0
    assert r.recorder.messages[-1].text.startswith("STOPPING=1")


def test_classifier_raising_while_unlocked_relocks(rig):
    r = rig(**{"decision.votes_needed": 1, "decision.window": 1, "decision.cooldown_seconds": 0.0,
               "decision.unlock_seconds": 0.5})
    r.step(frame_cmd("H"))
    assert r.latch_on()
    r.pipeline.fail_next = RuntimeError("boom")
    for _ in range(20):  # time runs out, cooldown 0, the next observation raises
        if r.finished:
            break
        r.step(frame_cmd("H"))
    assert r.finished and not r.latch_on()
    assert [s.state for s in r.latch_pin.states] == [False, True, False]


def test_read_error_storm_is_one_warning_and_a_fault(rig, caplog):
    r = rig()

    def broken(src, timeout):
        src.clock.advance(timeout)
        raise SourceError("VIDIOC_DQBUF: No such device")

    for _ in range(50):
        r.step(broken)
    assert r.door.state is State.FAULT and not r.finished
    assert caplog.text.count("No such device") == 1
    r.step(none_cmd())
    assert not r.latch_on()


def test_the_door_history_is_bounded_over_a_long_run(rig, monkeypatch):
    """Found by the soak: Door.transitions grew by three entries per opening, forever."""
    import happyhouse.daemon.door as door_mod

    monkeypatch.setattr(door_mod, "TRANSITIONS_KEPT", 12)
    r = rig(**{"decision.votes_needed": 1, "decision.window": 1, "decision.unlock_seconds": 0.5,
               "decision.cooldown_seconds": 0.0})
    for _ in range(300):
        r.step(frame_cmd("H"))
    assert r.door.unlocks >= 40
    assert len(r.door.transitions) == 12
    assert r.door.transitions[-1][0] >= r.clock() - 1.0  # the newest are kept
