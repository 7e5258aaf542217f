"""The door loop, in process: scripted camera, scripted pipeline, MockFactory pins, fake clock.

Pin timestamps come from the same fake clock as the loop (a MockPin subclass),
so "open for 5 s" is checked exactly, in milliseconds of real time.
"""

import os
import signal
import socket

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon.cli import build_parser
from fakes import clocked_factory
from happyhouse.daemon.config import load_config
from happyhouse.daemon.latch import Latch
from happyhouse.daemon.notify import Notifier
from happyhouse.daemon.pipeline import Observation
from happyhouse.daemon.sources import Frame
from happyhouse.daemon.runner import Signals, run_door, run_service
from happyhouse.daemon.service import Door, State

FPS = 10.0
BOX = (100, 80, 120, 120)


class FakeClock:
    def __init__(self, start=1000.0):
        self.t = start

    def __call__(self):
        return self.t

    def advance(self, dt):
        self.t += dt


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
    base = {"latch.gpio": "mock", "service.state_dir": str(tmp_path / "state"),
            "decision.unlock_seconds": 5.0, "decision.cooldown_seconds": 3.0,
            "decision.votes_needed": 3, "decision.window": 5}
    base.update(values)
    return load_config(None, base)


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
        pipeline = ScriptedPipeline(source, clock)
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


def run_script(door, n=None):
    door.start()
    steps = n if n is not None else len(door.source.items) + 1
    try:
        for _ in range(steps):
            door.step()
    finally:
        door.latch.lock()


def test_happy_frames_unlock_once_for_the_configured_time(rig):
    door, clock, factory, rec = rig(["H", "H", "H"] + ["n"] * 120)
    t0 = clock()
    run_script(door)
    pin = door.latch.pin
    assert [s.state for s in pin.states] == [False, True, False]
    (opened, closed), = open_times(pin, t0)
    # the third happy frame (t=0.3 s + inference) opens; open exactly 5 s by the loop clock,
    # give or take one frame interval for when the loop notices
    assert opened == pytest.approx(0.36, abs=0.01)
    assert 5.0 - 1e-6 <= closed - opened <= 5.0 + 1 / FPS + 0.03
    assert door.unlocks == 1
    states = [s for _, s, _ in door.transitions]
    assert states == [State.STARTING, State.ARMED, State.UNLOCKED, State.COOLDOWN, State.ARMED]
    cooldown_at = door.transitions[3][0]
    armed_at = door.transitions[4][0]
    assert 3.0 - 1e-6 <= armed_at - cooldown_at <= 3.0 + 1 / FPS + 0.03


def test_continuous_smile_reopens_only_after_the_cooldown(rig):
    door, clock, factory, rec = rig(["H"] * 120)  # 12 s of smiling
    t0 = clock()
    run_script(door)
    openings = open_times(door.latch.pin, t0)
    assert len(openings) == 2
    (_, closed1), (opened2, _) = openings
    # 3 s cooldown, then a whole new vote of 3 fresh frames
    assert opened2 - closed1 >= 3.0 + 2 / FPS


def test_unlock_seconds_are_capped_by_max(rig):
    door, clock, factory, rec = rig(["H"] * 3 + ["n"] * 50, **{
        "decision.unlock_seconds": 2.0, "decision.max_unlock_seconds": 2.0})
    t0 = clock()
    run_script(door)
    (opened, closed), = open_times(door.latch.pin, t0)
    assert closed - opened <= 2.0 + 1 / FPS + 0.03


@pytest.mark.parametrize("script", [["n"] * 100, ["-"] * 100, ["H", "H", "-"] * 40,
                                    ["H", "n", "n", "n", "n"] * 20])
def test_unhappy_or_faceless_frames_never_unlock(rig, script):
    door, clock, factory, rec = rig(script)
    run_script(door)
    assert [s.state for s in door.latch.pin.states] == [False]
    assert door.unlocks == 0 and door.state is State.ARMED


def test_stale_frames_never_unlock_and_are_not_scored(rig):
    door, clock, factory, rec = rig([("H", 0.8)] * 100)
    run_script(door)
    assert [s.state for s in door.latch.pin.states] == [False]
    assert door.pipeline.observed == []
    assert door.stale_frames == 100 and door.fresh_frames == 0
    # stale frames are no sign of life: no READY, no watchdog, and the camera is declared lost
    assert rec.times("READY=1") == [] and rec.times("WATCHDOG=1") == []
    assert door.state is State.FAULT


def test_a_stale_frame_in_the_middle_resets_the_vote(rig):
    door, clock, factory, rec = rig(["H", "H", ("H", 0.8), "H", "n", "n"] + ["n"] * 10)
    run_script(door)
    assert door.unlocks == 0


def test_frame_gone_stale_during_slow_inference_does_not_count(rig):
    door, clock, factory, rec = rig(["H"] * 30)
    door.pipeline.latency = 0.6  # inference slower than stale_after (0.5 s)
    run_script(door)
    assert door.unlocks == 0 and len(door.pipeline.observed) == 30


def test_ready_only_after_first_fresh_frame_then_watchdog_while_fresh(rig):
    door, clock, factory, rec = rig([("n", 0.9)] * 3 + ["n"] * 30, watchdog_usec=1_000_000)
    t0 = clock()
    run_script(door)
    ready = rec.times("READY=1")
    assert len(ready) == 1 and ready[0] - t0 == pytest.approx(0.4, abs=1e-6)  # 4th frame
    pings = rec.times("WATCHDOG=1")
    assert pings[0] == ready[0]
    gaps = np.diff(pings)
    assert len(pings) >= 5 and gaps.min() >= 0.5 - 1e-9  # half of WATCHDOG_USEC
    assert any(m.startswith("STATUS=armed;") and "fps" in m for _, m in rec.messages)


def test_camera_stall_relocks_and_stops_watchdog_pings(rig):
    script = ["H", "H", "H"] + ["n"] * 5 + ["."] * 60 + ["n"] * 10
    door, clock, factory, rec = rig(script, watchdog_usec=400_000)
    t0 = clock()
    run_script(door)
    (opened, closed), = open_times(door.latch.pin, t0)
    stall_start = 0.8 + 3 * 0.02  # the last frame before the stall, plus inference
    assert closed - opened < 5.0  # relocked by the stall, before the unlock time was up
    fault = [t for t, s, _ in door.transitions if s is State.FAULT]
    assert len(fault) == 1 and fault[0] - t0 == pytest.approx(closed, abs=1e-6)
    assert fault[0] - t0 - stall_start == pytest.approx(3.0, abs=0.25)
    pings = [t - t0 for t in rec.times("WATCHDOG=1")]
    during = [p for p in pings if stall_start < p < stall_start + 60 * 0.2]
    assert during == []
    assert pings[-1] > stall_start + 60 * 0.2  # pings resume with fresh frames
    assert door.source.opened == 0  # the loop never blocks on reopening (the source's job)
    assert door.transitions[-1][1] is State.ARMED


def test_source_errors_are_a_stall_not_a_crash(rig, caplog):
    from happyhouse.daemon.errors import SourceError

    door, clock, factory, rec = rig(["n"] * 3)
    real = door.source.latest

    def broken(timeout):
        if door.source.index >= 3:
            clock.advance(timeout)
            raise SourceError("camera unplugged")
        return real(timeout)

    door.source.latest = broken
    door.start()
    for _ in range(40):
        door.step()
    assert door.state is State.FAULT
    assert caplog.text.count("camera unplugged") == 1


def test_exception_in_the_loop_locks(rig):
    def boom():
        raise RuntimeError("bug")

    door, clock, factory, rec = rig(["H"] * 10, hooks={5: boom})
    signals = Signals()
    with pytest.raises(RuntimeError):
        run_door(door, signals)
    assert door.latch.pin.states[-2].state is True
    assert door.latch.pin.states[-1].state is False


def test_exit_button_opens_without_a_vote(rig):
    cfg_values = {"latch.exit_button_pin": "GPIO27"}
    door, clock, factory, rec = rig(["-"] * 20, **cfg_values)
    from happyhouse.daemon.latch import ExitButton

    button = ExitButton("GPIO27", pull_up=True, pin_factory=factory, on_press=door.request_exit)
    pin = factory.pin("GPIO27")
    door.start()
    for _ in range(5):
        door.step()
    pin.drive_low()
    pin.drive_high()
    door.step()
    assert door.state is State.UNLOCKED and door.latch.is_unlocked
    assert "exit button" in door.transitions[-1][2]
    button.close()


def test_door_contact_relocks_as_soon_as_the_door_closes(rig):
    door, clock, factory, rec = rig(["H"] * 3 + ["n"] * 20)
    from happyhouse.daemon.latch import DoorContact

    contact = DoorContact("GPIO22", pull_up=True, pin_factory=factory,
                          on_close=door.door_closed, on_open=door.door_opened)
    pin = factory.pin("GPIO22")
    pin.drive_low()  # door closed
    door.start()
    for _ in range(4):
        door.step()
    assert door.latch.is_unlocked
    pin.drive_high()  # door opened...
    assert door.latch.is_unlocked
    pin.drive_low()  # ...and closed: relock at once, from the callback
    assert not door.latch.is_unlocked
    door.step()
    assert door.state is State.COOLDOWN and door.transitions[-1][2] == "door closed"
    contact.close()


def test_latch_timer_relocks_when_the_loop_hangs(tmp_path):
    import time as _time

    clock = FakeClock()
    cfg = make_cfg(tmp_path, **{"decision.unlock_seconds": 0.5, "decision.max_unlock_seconds": 0.5})
    latch = Latch(cfg.latch_pin, pin_factory=MockFactory(), max_open_s=0.5, clock=clock)
    source = ScriptedSource(clock, ["H"] * 3)
    door = Door(cfg, source, ScriptedPipeline(source, clock), latch, clock=clock)
    door.start()
    for _ in range(3):
        door.step()
    assert latch.is_unlocked
    # the loop hangs (fake time frozen); real time passes, the latch's own timer relocks
    deadline = _time.monotonic() + 5
    while latch.is_unlocked and _time.monotonic() < deadline:
        _time.sleep(0.01)
    assert not latch.is_unlocked and latch.expired == 1
    door.step()
    assert door.state is State.COOLDOWN and door.transitions[-1][2] == "unlock time over (latch timer)"
    latch.close()


# -- run_service: signals, sd_notify over a real socket, reload ---------------------------


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A real AF_UNIX datagram socket, read by a thread like systemd would."""
    import threading

    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    received = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                received.append(sock.recv(4096).decode())
            except socket.timeout:
                pass

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()

    def drain():
        done.set()
        thread.join()
        while True:  # whatever is still queued
            try:
                received.append(sock.recv(4096).decode())
            except socket.timeout:
                return list(received)

    yield drain
    done.set()
    thread.join()
    sock.close()


def service_parts(script, hooks=None):
    clock = FakeClock()
    source = ScriptedSource(clock, script, hooks)
    return clock, clocked_factory(clock), source, ScriptedPipeline(source, clock)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_during_an_unlock_locks_and_notifies(tmp_path, notify_socket, signum):
    kill = {10: lambda: os.kill(os.getpid(), signum)}  # frame 10: the door is open
    clock, factory, source, pipeline = service_parts(["H"] * 50, kill)
    cfg = make_cfg(tmp_path)
    previous = signal.getsignal(signum)
    rc = run_service(cfg, None, pin_factory=factory, source=source, pipeline=pipeline, clock=clock)
    assert rc == 0
    assert source.index == 11  # the frame in flight is the last one: it stopped right there
    pin = factory.pin("GPIO17")
    assert [s.state for s in pin.states] == [False, True, False]
    assert pin.function == "input"  # released after locking
    assert signal.getsignal(signum) is previous  # handlers restored
    messages = notify_socket()
    lines = [line for m in messages for line in m.splitlines()]
    assert "READY=1" in lines and "WATCHDOG=1" in lines
    assert messages[-1].startswith("STOPPING=1")
    assert signal.Signals(signum).name in messages[-1]
    assert any(line.startswith("STATUS=unlocked;") for line in lines)


def test_max_frames_stops_cleanly(tmp_path, notify_socket):
    clock, factory, source, pipeline = service_parts(["n"] * 50)
    args = build_parser().parse_args(["--gpio", "mock", "--max-frames", "7"])
    rc = run_service(make_cfg(tmp_path), args, pin_factory=factory, source=source,
                     pipeline=pipeline, clock=clock)
    assert rc == 0 and source.index == 7
    assert source.opened == 1 and source.closed == 1


def test_exception_in_service_locks_and_says_stopping(tmp_path, notify_socket):
    def boom():
        raise RuntimeError("bug")

    clock, factory, source, pipeline = service_parts(["H"] * 50, {8: boom})
    with pytest.raises(RuntimeError):
        run_service(make_cfg(tmp_path), None, pin_factory=factory, source=source,
                    pipeline=pipeline, clock=clock)
    pin = factory.pin("GPIO17")
    assert [s.state for s in pin.states] == [False, True, False]
    assert notify_socket()[-1].startswith("STOPPING=1")


def write_conf(path, **values):
    sections = {}
    for key, value in values.items():
        section, name = key.split(".")
        sections.setdefault(section, []).append(f"{name} = {value}")
    path.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n" for s, lines in sections.items()))


def test_sighup_reloads_the_config_while_locked(tmp_path, notify_socket):
    conf = tmp_path / "hh.conf"
    write_conf(conf, **{"decision.unlock_seconds": 5.0, "latch.gpio": "mock",
                        "service.state_dir": str(tmp_path / "s")})
    doors = []

    def edit_and_hup():
        write_conf(conf, **{"decision.unlock_seconds": 2.0, "latch.gpio": "mock",
                            "service.state_dir": str(tmp_path / "s")})
        os.kill(os.getpid(), signal.SIGHUP)

    def bad_edit_and_hup():
        conf.write_text("[decision]\nunlock_seconds = forever\n")
        os.kill(os.getpid(), signal.SIGHUP)

    def stop():
        os.kill(os.getpid(), signal.SIGTERM)

    # 5 happy frames (open), reload during the opening, later a bad reload, then stop
    script = ["H"] * 5 + ["n"] * 10 + ["H"] * 3 + ["n"] * 30 + ["n"] * 10
    clock, factory, source, pipeline = service_parts(script, {5: edit_and_hup, 50: bad_edit_and_hup,
                                                              57: stop})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock"])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    import happyhouse.daemon.runner as runner_mod

    real_door = runner_mod.Door

    class SpyDoor(real_door):
        def __init__(self, cfg, *a, **k):
            super().__init__(cfg, *a, **k)
            doors.append(self)

    runner_mod.Door = SpyDoor
    try:
        assert run_service(cfg, args, pin_factory=factory, source=source, pipeline=pipeline,
                           clock=clock) == 0
    finally:
        runner_mod.Door = real_door
    assert [d.unlock_seconds for d in doors] == [5.0, 2.0, 2.0]
    pin = factory.pin("GPIO17")
    t0 = 1000.0
    openings = open_times(pin, t0)
    assert len(openings) == 2
    first, second = openings
    assert first[1] - first[0] < 1.0  # the reload locked the door at once
    assert 2.0 - 1e-6 <= second[1] - second[0] <= 2.0 + 1 / FPS + 0.03  # new unlock time applies
    messages = notify_socket()
    assert sum(m.startswith("RELOADING=1") for m in messages) == 2
    assert sum(m.startswith("READY=1") for m in messages) == 3  # READY again after each reload
    assert source.opened == 1  # the injected camera is kept across reloads


def test_signals_install_only_in_main_thread():
    import threading

    result = []
    t = threading.Thread(target=lambda: result.append(Signals().install()))
    t.start()
    t.join()
    assert result == [False]


# -- end to end: the real bundle, face gate and LiteRT pipeline on real frames ----------


@pytest.fixture(scope="module")
def door_frames(smiling_door_frames):
    """Door-camera frames: (smiles the shipped pipeline opens for, faces it does not)."""
    return smiling_door_frames


@pytest.fixture(scope="module")
def real_pipeline():
    from happyhouse.daemon.pipeline import Pipeline

    cfg = load_config(None, {"latch.gpio": "mock"})
    return Pipeline.from_config(cfg)  # the shipped bundle, golden self-test included


def test_end_to_end_real_pipeline_smile_opens_once_then_empty_hall_stays_locked(
        tmp_path, notify_socket, door_frames, real_pipeline):
    from happyhouse.daemon.fakesource import FakeSource, fake_clock

    happy, _ = door_frames
    empty = [np.full_like(happy[0], 128)] * 60  # an empty, evenly lit hall: no face
    clock, sleep = fake_clock()
    source = FakeSource(happy + empty, fps=10, clock=clock, sleep=sleep)
    factory = clocked_factory(clock)
    cfg = make_cfg(tmp_path, **{"service.snapshot_on_unlock": True})
    args = build_parser().parse_args(["--max-frames", str(len(happy) + len(empty))])
    t0 = clock()
    assert run_service(cfg, args, pin_factory=factory, source=source, pipeline=real_pipeline,
                       clock=clock) == 0
    (opened, closed), = open_times(factory.pin("GPIO17"), t0)
    assert opened < len(happy) / 10  # during the smile
    assert 5.0 - 1e-6 <= closed - opened <= 5.0 + 0.11
    snapshots = sorted((tmp_path / "state").glob("unlock-*.jpg"))
    assert len(snapshots) == 1
    messages = notify_socket()
    assert messages[0].startswith("STATUS=starting")
    assert any(m.startswith("READY=1") for m in messages) and messages[-1].startswith("STOPPING=1")


def test_decisions_carry_journal_fields(rig, caplog):
    import logging

    door, clock, factory, rec = rig(["-", "n", "n", "H", "H", "H", "n"])
    with caplog.at_level(logging.DEBUG, logger="happyhouse.daemon"):
        run_script(door)
    decisions = [r for r in caplog.records if r.getMessage().startswith("frame ")]
    assert len(decisions) == 6  # every scored frame (none scored while unlocked)
    happy = [r.journal for r in decisions if r.journal["verdict"] == "happy"][0]
    assert happy["score"] == "0.930" and happy["face"] == "100,80,120,120"
    assert happy["frame_age_ms"] == "20"  # 20 ms of (fake) inference
    assert decisions[0].journal["verdict"] == "no face" and "face" not in decisions[0].journal
    # INFO only when the verdict changes: no face -> not happy -> happy
    assert [r.levelname for r in decisions] == ["INFO", "INFO", "DEBUG", "INFO", "DEBUG", "DEBUG"]
    unlock = [r for r in caplog.records if getattr(r, "journal", {}).get("event") == "unlock"]
    assert len(unlock) == 1 and unlock[0].journal["scores"].endswith("0.930,0.930,0.930")


def test_service_wires_exit_button_and_door_contact_from_config(tmp_path, notify_socket):
    holder = {}

    def press():
        pin = holder["factory"].pin("GPIO27")
        pin.drive_low()
        pin.drive_high()

    def open_and_close_door():
        pin = holder["factory"].pin("GPIO22")
        pin.drive_high()
        pin.drive_low()

    def door_shut():  # contact to ground with the pull-up: a closed door pulls it low
        holder["factory"].pin("GPIO22").drive_low()

    clock, factory, source, pipeline = service_parts(
        ["-"] * 40, {0: door_shut, 5: press, 15: open_and_close_door})
    holder["factory"] = factory
    cfg = make_cfg(tmp_path, **{"latch.exit_button_pin": "GPIO27",
                                "latch.door_contact_pin": "GPIO22"})
    args = build_parser().parse_args(["--max-frames", "40"])
    t0 = clock()
    assert run_service(cfg, args, pin_factory=factory, source=source, pipeline=pipeline,
                       clock=clock) == 0
    (opened, closed), = open_times(factory.pin("GPIO17"), t0)
    assert 0.5 <= opened <= 0.5 + 3 / FPS  # the press (before frame 6), within a step; no face
    # the door opened and closed before frame 16 (~1.6 s): relocked there, not after 5 s
    assert 1.5 <= closed <= 1.5 + 2 / FPS
    assert factory.pin("GPIO27").function == "input"  # inputs released on exit


def test_reload_moves_the_latch_to_a_new_pin_locked(tmp_path, notify_socket):
    conf = tmp_path / "hh.conf"
    write_conf(conf, **{"latch.pin": "GPIO17", "service.state_dir": str(tmp_path / "s")})

    def move_and_hup():
        write_conf(conf, **{"latch.pin": "GPIO5", "service.state_dir": str(tmp_path / "s")})
        os.kill(os.getpid(), signal.SIGHUP)

    clock, factory, source, pipeline = service_parts(["H"] * 4 + ["n"] * 5 + ["H"] * 4 + ["n"] * 5,
                                                     {4: move_and_hup})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock", "--max-frames", "18"])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    assert run_service(cfg, args, pin_factory=factory, source=source, pipeline=pipeline,
                       clock=clock) == 0
    old, new = factory.pin("GPIO17"), factory.pin("GPIO5")
    assert [s.state for s in old.states] == [False, True, False] and old.function == "input"
    assert [s.state for s in new.states] == [False, True, False] and new.function == "input"
