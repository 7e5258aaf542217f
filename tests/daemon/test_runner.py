"""Running the door as a process: ``run_door``, ``Signals``, ``run_service`` with
sd_notify over a real socket, SIGHUP reloads (``_Parts`` rebuilding the latch),
and end to end with the shipped pipeline. Scripted parts from tests/fakes.py, the
``rig`` fixture from conftest.py.
"""

import os
import signal
import socket

import numpy as np
import pytest

from happyhouse.daemon.cli import build_parser, service_options
from fakes import (FPS, FakeClock, ScriptedPipeline, ScriptedSource, clocked_factory, fake_latch_timers,
                   make_cfg, open_times)
from happyhouse.daemon.config import load_config
from happyhouse.daemon.runner import Signals, run_door, run_service


def test_exception_in_the_loop_locks(rig):
    def boom():
        raise RuntimeError("bug")

    door, clock, factory, rec = rig(["H"] * 10, hooks={5: boom})
    signals = Signals()
    with pytest.raises(RuntimeError):
        run_door(door, signals)
    assert door.latch.pin.states[-2].state is True
    assert door.latch.pin.states[-1].state is False


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
    return clock, clocked_factory(clock), source, ScriptedPipeline(clock)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_during_an_unlock_locks_and_notifies(tmp_path, notify_socket, signum):
    kill = {10: lambda: os.kill(os.getpid(), signum)}  # frame 10: the door is open
    clock, factory, source, pipeline = service_parts(["H"] * 50, kill)
    cfg = make_cfg(tmp_path)
    previous = signal.getsignal(signum)
    rc = run_service(cfg, pin_factory=factory, source=source, pipeline=pipeline, clock=clock)
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


class SignalWhileScoring(ScriptedPipeline):
    """Sends ``signum`` to this process while scoring call ``at``: the signal lands in
    the middle of a step, after the loop looked at its flags."""

    def __init__(self, clock, signum, at):
        super().__init__(clock)
        self.signum, self.at = signum, at

    def observe(self, frame):
        if len(self.observed) + 1 == self.at:
            os.kill(os.getpid(), self.signum)
        return super().observe(frame)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_received_while_the_deciding_frame_is_scored_opens_nothing(tmp_path, caplog,
                                                                            signum):
    """The third smile's scoring took the SIGTERM (or SIGHUP); its vote passed and the door
    opened for ~10 ms before the loop saw the flag and locked (a field probe's pin log)."""
    clock = FakeClock()
    factory, source = clocked_factory(clock), ScriptedSource(clock, ["H"] * 8)
    pipeline = SignalWhileScoring(clock, signum, at=3)  # the frame that completes 3 of 5
    cfg = make_cfg(tmp_path)
    assert cfg.decision_votes_needed == 3
    rc = run_service(cfg, pin_factory=factory, source=source, pipeline=pipeline, clock=clock,
                     max_frames=4)
    assert rc == 0
    states = [s.state for s in factory.pin("GPIO17").states]
    name = signal.Signals(signum).name
    assert f"smile: not opened, {name} was received" in caplog.text
    if signum == signal.SIGTERM:
        assert states == [False] * len(states) and len(pipeline.observed) == 3
    else:  # the reload's door starts a new vote: no frame before it opened the door
        assert True not in states


def test_max_frames_stops_cleanly(tmp_path, notify_socket):
    clock, factory, source, pipeline = service_parts(["n"] * 50)
    args = build_parser().parse_args(["--gpio", "mock", "--max-frames", "7"])
    rc = run_service(make_cfg(tmp_path), **service_options(args), pin_factory=factory, source=source,
                     pipeline=pipeline, clock=clock)
    assert rc == 0 and source.index == 7
    assert source.opened == 1 and source.closed == 1


def test_exception_in_service_locks_and_says_stopping(tmp_path, notify_socket):
    def boom():
        raise RuntimeError("bug")

    clock, factory, source, pipeline = service_parts(["H"] * 50, {8: boom})
    with pytest.raises(RuntimeError):
        run_service(make_cfg(tmp_path), pin_factory=factory, source=source,
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

    # 5 happy frames (open), reload during the opening, later a bad reload, then stop; the
    # reload relocks the opening, so its 3 s cooldown passes before the second smile
    script = ["H"] * 5 + ["n"] * 35 + ["H"] * 3 + ["n"] * 30 + ["n"] * 10
    clock, factory, source, pipeline = service_parts(script, {5: edit_and_hup, 75: bad_edit_and_hup,
                                                              82: stop})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock"])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    import happyhouse.daemon.service as service_mod

    real_door = service_mod.Door

    class SpyDoor(real_door):
        def __init__(self, cfg, *a, **k):
            super().__init__(cfg, *a, **k)
            doors.append(self)

    service_mod.Door = SpyDoor
    try:
        assert run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=pipeline,
                           clock=clock) == 0
    finally:
        service_mod.Door = real_door
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


@pytest.mark.parametrize("flag", ["stop", "reload"])
def test_a_signal_arriving_inside_another_handler_does_not_hang(flag):
    """A burst of SIGHUPs hung the daemon for good (it then ignored SIGTERM): a handler
    runs between two bytecodes of the main thread, also inside the first handler's
    Event.set(), which held the event's lock the second one then waited on. Here the
    first handler is frozen where it would hold that lock, and the second must finish."""
    import contextlib
    import signal
    import threading

    signals = Signals()
    held = getattr(getattr(signals, flag), "_cond", None)  # an Event's lock, if it has one
    handler = signals._on_stop if flag == "stop" else signals._on_reload
    done = threading.Event()
    with held if held is not None else contextlib.nullcontext():
        t = threading.Thread(target=lambda: (handler(signal.SIGHUP, None), done.set()),
                             daemon=True)
        t.start()
        assert done.wait(2.0), "the second handler waited on the first one's lock"
    assert signals.pending() is not None


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
    from happyhouse.daemon.fakes import FakeSource

    happy, _ = door_frames
    empty = [np.full_like(happy[0], 128)] * 60  # an empty, evenly lit hall: no face
    clock = FakeClock()
    source = FakeSource(happy + empty, fps=10, clock=clock, sleep=clock.advance)
    factory = clocked_factory(clock)
    cfg = make_cfg(tmp_path, **{"service.snapshot_on_unlock": True})
    args = build_parser().parse_args(["--max-frames", str(len(happy) + len(empty))])
    t0 = clock()
    # the latch's own relock timer on fake time too: on wall time it would fire first
    # whenever the real pipeline takes longer than the 5 s opening (a loaded machine)
    with fake_latch_timers(clock):
        assert run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=real_pipeline,
                           clock=clock) == 0
    (opened, closed), = open_times(factory.pin("GPIO17"), t0)
    assert opened < len(happy) / 10  # during the smile
    assert 5.0 - 1e-6 <= closed - opened <= 5.0 + 0.11
    snapshots = sorted((tmp_path / "state").glob("unlock-*.jpg"))
    assert len(snapshots) == 1
    messages = notify_socket()
    assert messages[0].startswith("STATUS=starting")
    assert any(m.startswith("READY=1") for m in messages) and messages[-1].startswith("STOPPING=1")


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
    assert run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=pipeline,
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

    # the reload relocks the first opening: the second smile comes after its 3 s cooldown
    clock, factory, source, pipeline = service_parts(["H"] * 4 + ["n"] * 35 + ["H"] * 4 + ["n"] * 5,
                                                     {4: move_and_hup})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock", "--max-frames", "48"])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    assert run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=pipeline,
                       clock=clock) == 0
    old, new = factory.pin("GPIO17"), factory.pin("GPIO5")
    assert [s.state for s in old.states] == [False, True, False] and old.function == "input"
    assert [s.state for s in new.states] == [False, True, False] and new.function == "input"


# -- a reload keeps the door's safety state (issue 16 item 5) ---------------------------------
@pytest.mark.parametrize("hup_at, what", [(38, "2.4 s into the cooldown"), (5, "during the opening")])
def test_a_reload_does_not_shorten_the_cooldown(tmp_path, hup_at, what):
    """cooldown_seconds = 600: one opening, then nothing for ten minutes, reload or not.
    A SIGHUP 2.4 s after the relock let the door reopen for the same smile."""
    conf = tmp_path / "hh.conf"
    values = {"decision.unlock_seconds": 1.0, "decision.cooldown_seconds": 600,
              "latch.gpio": "mock", "service.state_dir": str(tmp_path / "s")}
    write_conf(conf, **values)

    def hup():
        os.kill(os.getpid(), signal.SIGHUP)

    # frames at 10 fps: the vote passes at frame 3, the latch relocks 1 s later (frame ~13)
    script = ["H"] * 60
    clock, factory, source, pipeline = service_parts(script, {hup_at: hup})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock",
                                      "--max-frames", str(len(script))])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    with fake_latch_timers(clock):
        assert run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=pipeline,
                           clock=clock) == 0
    openings = open_times(factory.pin("GPIO17"), 1000.0)
    assert len(openings) == 1, f"reload {what}: the door reopened: {openings}"
    assert source.index == len(script)  # the smile went on to the end: only the cooldown held it


def test_a_reload_extends_the_cooldown_to_a_longer_new_one(tmp_path):
    conf = tmp_path / "hh.conf"
    base = {"decision.unlock_seconds": 1.0, "latch.gpio": "mock",
            "service.state_dir": str(tmp_path / "s")}
    write_conf(conf, **base, **{"decision.cooldown_seconds": 1.0})

    def longer_and_hup():
        write_conf(conf, **base, **{"decision.cooldown_seconds": 600})
        os.kill(os.getpid(), signal.SIGHUP)

    script = ["H"] * 60  # relock ~frame 13; the old 1 s cooldown would end ~frame 23
    clock, factory, source, pipeline = service_parts(script, {15: longer_and_hup})
    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock",
                                      "--max-frames", str(len(script))])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    with fake_latch_timers(clock):
        run_service(cfg, **service_options(args), pin_factory=factory, source=source, pipeline=pipeline, clock=clock)
    assert len(open_times(factory.pin("GPIO17"), 1000.0)) == 1


def test_a_camera_fault_does_not_shorten_the_cooldown(rig):
    """The same hole inside one door: COOLDOWN -> FAULT (camera lost) -> fresh frames went
    straight to ARMED, so a camera glitch ended a 600 s cooldown."""
    script = ["H"] * 3 + ["n"] * 15 + ["."] * 20 + ["H"] * 30
    door, clock, factory, rec = rig(script, **{"decision.cooldown_seconds": 600,
                                               "decision.unlock_seconds": 1.0})
    door.start()
    seen = []
    for _ in range(len(script)):
        door.step()
        seen.append(door.state.value)
    assert "fault" in seen
    assert len(open_times(door.latch.pin, 1000.0)) == 1
    assert door.state.value == "cooldown"


@pytest.mark.parametrize("signum", [signal.SIGQUIT, signal.SIGUSR1, signal.SIGALRM])
def test_every_ending_signal_stops_the_service_locked(tmp_path, signum):
    """Issue 16 item 1: like SIGTERM, any signal whose default would end the process (and
    leave the line driven) is a stop request: lock, release, exit 0."""
    kill = {10: lambda: os.kill(os.getpid(), signum)}  # frame 10: the door is open
    clock, factory, source, pipeline = service_parts(["H"] * 50, kill)
    previous = signal.getsignal(signum)
    assert run_service(make_cfg(tmp_path), pin_factory=factory, source=source,
                       pipeline=pipeline, clock=clock) == 0
    pin = factory.pin("GPIO17")
    assert [s.state for s in pin.states] == [False, True, False] and pin.function == "input"
    assert signal.getsignal(signum) is previous
    assert source.index == 11  # it stopped at the frame in flight


def test_watchdog_pings_stop_while_the_loop_does_not_run(tmp_path):
    """Issue 16 item 3: what bounds an opening when the loop does not run is systemd's
    watchdog (docs/operations.md, "What bounds an opening"). No other thread may keep it
    fed: while the main loop hangs in a camera read the pings stop, and meanwhile the
    latch's own timer still relocks at max_unlock_seconds."""
    import threading
    import time

    from happyhouse.daemon.notify import Notifier
    from happyhouse.daemon.pipeline import Observation
    from happyhouse.daemon.sources import Frame

    hang_s, pings, lock = 1.2, [], threading.Lock()

    def sender(message):
        if "WATCHDOG=1" in message.splitlines():
            with lock:
                pings.append(time.monotonic())
        return True

    class HangingCamera:
        description = "hangs at frame 8"

        def __init__(self):
            self.seq, self.hung = 0, None

        def open(self):
            pass

        def close(self):
            pass

        def latest(self, timeout):
            time.sleep(0.03)
            self.seq += 1
            if self.seq == 8:  # the door is open now; the read hangs (a USB camera stuck)
                self.hung = time.monotonic()
                time.sleep(hang_s)
            if self.seq > 12:
                os.kill(os.getpid(), signal.SIGTERM)
            return Frame(np.zeros((48, 64, 3), np.uint8), time.monotonic(), self.seq)

    class Smiles:
        model_sha256 = "0" * 64

        def observe(self, frame):
            return Observation(frame.timestamp, frame.seq, (1, 1, 30, 30), 0.9, True, 1.0)

    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    camera = HangingCamera()
    cfg = make_cfg(tmp_path, **{"decision.unlock_seconds": 0.5, "decision.max_unlock_seconds": 0.5,
                                "decision.votes_needed": 1, "decision.window": 1,
                                "camera.stall_timeout": 5.0})
    notifier = Notifier({"NOTIFY_SOCKET": "/unused", "WATCHDOG_USEC": "100000"}, sender=sender)
    assert run_service(cfg, pin_factory=factory, source=camera, pipeline=Smiles(),
                       notifier=notifier) == 0
    during = [t for t in pings if camera.hung < t < camera.hung + hang_s]
    assert len([t for t in pings if t < camera.hung]) >= 2  # fed while frames came
    assert during == []  # nobody fed it while the loop hung
    assert any(t > camera.hung + hang_s for t in pings)  # fed again once it ran
    states = factory.pin("GPIO17").states
    assert [s.state for s in states] == [False, True, False]
    assert 0.45 < states[2].timestamp < 0.8  # relocked by the latch's timer, inside the hang


def test_the_service_object_runs_without_the_runner_and_closes_locked(tmp_path, notify_socket):
    """Service is what run_service loops over and what tools drive directly: start, step,
    reload (locked, cooldown inherited), stop and close (idempotent) all without signals."""
    from happyhouse.daemon.door import State
    from happyhouse.daemon.service import Service

    clock, factory, source, pipeline = service_parts(["H"] * 5 + ["n"] * 20)
    service = Service.from_config(make_cfg(tmp_path), pin_factory=factory, source=source,
                                  pipeline=pipeline, clock=clock)
    first = service.start()
    while service.door.state is not State.UNLOCKED:
        service.step()
    pin = factory.pin("GPIO17")
    assert pin.state
    second = service.reload()
    assert second is not first and service.door is second and not pin.state
    service.step()
    assert second.state is State.COOLDOWN  # the reload did not end the opening's cooldown
    assert service.frames == first.frames + second.frames
    service.stop("done")
    service.close()
    service.close()
    assert not pin.state and pin.function == "input"
    messages = notify_socket()
    assert sum(m.startswith("STOPPING=1") for m in messages) == 1 and "done" in messages[-1]


def test_the_service_refuses_a_recording_on_a_real_latch(tmp_path):
    """A field probe: a demo folder left in [camera] source on a Pi's real latch opened the
    door for its pictures' smiles, again after every cooldown."""
    from gpiozero.pins.mock import MockFactory

    from happyhouse.daemon.errors import ConfigError

    class RealLooking:  # not gpiozero's MockFactory (as lgpio is), mock pins underneath
        def __init__(self):
            self.__dict__["_mock"] = MockFactory()

        def __getattr__(self, name):
            return getattr(self._mock, name)

    clock, _, source, pipeline = service_parts(["H"] * 50)
    source.kind = "video"
    factory = RealLooking()
    with pytest.raises(ConfigError, match="is a recording, not a live camera"):
        run_service(make_cfg(tmp_path), pin_factory=factory, source=source, pipeline=pipeline,
                    clock=clock, max_frames=60)
    assert source.index == 0 and source.opened == 0
    assert all(s.state is False for s in factory._mock.pin("GPIO17").states)


@pytest.mark.parametrize("taken_by_another", [False, True])
def test_a_state_lock_file_removed_under_the_service_is_taken_again_or_ends_it(
        tmp_path, taken_by_another):
    """A technician deleting happyhouse.lock as "stale" let a second service start beside the
    running one (both logged unlocks, both owned the pin): the service looks at its lock
    file every few seconds, takes it again, or, if another program got it first, stops
    (locked) on that program's refusal."""
    from happyhouse.daemon import statelock
    from happyhouse.daemon.errors import BusyError

    state = tmp_path / "state"
    held = statelock.acquire(str(state), statelock.SERVICE_PURPOSE)
    intruder = []

    def clear_the_lock():
        (state / statelock.LOCK_NAME).unlink()
        if taken_by_another:
            intruder.append(statelock.acquire(str(state), "--once --actuate"))

    refused = []

    def a_second_program_tries():
        try:
            intruder.append(statelock.acquire(str(state), "a second service"))
        except BusyError as exc:
            refused.append(str(exc))

    clock, factory, source, pipeline = service_parts(
        ["N"] * 400, {20: clear_the_lock, 250: a_second_program_tries})
    try:
        if taken_by_another:
            with pytest.raises(BusyError, match="--once --actuate"):
                run_service(make_cfg(tmp_path), pin_factory=factory, source=source,
                            pipeline=pipeline, clock=clock, state_lock=held)
            assert [s.state for s in factory.pin("GPIO17").states][-1] is False
        else:
            assert run_service(make_cfg(tmp_path), pin_factory=factory, source=source,
                               pipeline=pipeline, clock=clock, state_lock=held,
                               max_frames=300) == 0
            assert source.index >= 300  # ran on after taking it again
            assert refused and "the door service" in refused[0] and not intruder
    finally:
        held.release()
        for lock in intruder:
            lock.release()
