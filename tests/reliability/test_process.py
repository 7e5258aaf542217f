"""The real daemon process: SIGTERM inside unlock windows, SIGKILL then --force-lock,
a SIGHUP reload, and the watchdog kept fed while a reload reopens the camera.

The daemon runs through a small wrapper that swaps gpiozero's MockFactory for
a recording one: every claim, level change and release of a pin is appended
(unbuffered) to a log file, and a pin starts at the level the log last saw
for it, as a Raspberry Pi keeps an output driven after its process died.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

SIGTERM_RUNS = int(os.environ.get("HAPPYHOUSE_SIGTERM_RUNS", "10"))
UNLOCK_S = 2.0

WRAPPER = textwrap.dedent('''
    """happyhouse-daemon with a recording mock pin factory (tests only)."""
    import os
    import sys
    import time

    import gpiozero.pins.mock as mock

    LOG = os.environ["HH_PIN_LOG"]
    FD = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


    def last_state(name):
        state = None
        if os.path.exists(LOG):
            for line in open(LOG):
                parts = line.split()
                if len(parts) == 5 and parts[1] == name:
                    state = parts[3] == "1"
        return state


    class RecordingPin(mock.MockPin):
        def __init__(self, factory, info):
            super().__init__(factory, info)
            self.hh_name = str(info.name)
            left = last_state(self.hh_name)
            if left is not None:
                self._state = left  # the line is where the last process left it
            self._record("claim")

        def _record(self, event):
            os.write(FD, f"{time.monotonic():.6f} {self.hh_name} {event} "
                         f"{int(bool(self._state))} {self._function}\\n".encode())

        def _change_state(self, value):
            changed = super()._change_state(value)
            if changed:
                self._record("level")
            return changed

        def _set_function(self, value):
            super()._set_function(value)
            self._record("function")


    class RecordingFactory(mock.MockFactory):
        def __init__(self, revision=None, pin_class=None):
            super().__init__(revision, pin_class=RecordingPin)


    mock.MockFactory = RecordingFactory
    from happyhouse.daemon.cli import main

    sys.exit(main())
''')


def pin_log(path, name="GPIO17"):
    """[(time, event, level, function)] for one pin."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            t, pin, event, level, function = line.split()
            if pin == name:
                out.append((float(t), event, level == "1", function))
    return out


@pytest.fixture
def daemon(tmp_path):
    """Start the wrapped daemon; returns a function(extra_args, config_text) -> Proc."""
    wrapper = tmp_path / "hh_recording_daemon.py"
    wrapper.write_text(WRAPPER)
    procs = []

    class Proc:
        def __init__(self, args, conf_text, env_extra=None):
            self.log = tmp_path / "pins.log"
            self.conf = tmp_path / "door.conf"
            self.conf.write_text(conf_text)
            env = dict(os.environ, HH_PIN_LOG=str(self.log), PYTHONUNBUFFERED="1")
            for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "INVOCATION_ID",
                        "JOURNAL_STREAM"):
                env.pop(key, None)
            env.update(env_extra or {})
            self.popen = subprocess.Popen(
                [sys.executable, str(wrapper), "--config", str(self.conf), "--gpio", "mock", *args],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(self.popen)

        def wait_pin(self, level, timeout=60.0, after=0):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                events = pin_log(self.log)[after:]
                hit = [e for e in events if e[1] == "level" and e[2] is level]
                if hit:
                    return hit[0][0]
                if self.popen.poll() is not None:
                    break
                time.sleep(0.02)
            raise AssertionError(f"pin never went {'on' if level else 'off'}; rc "
                                 f"{self.popen.poll()}; stderr: {self.finish()[1][-3000:]}")

        def finish(self, timeout=30):
            try:
                return self.popen.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                return self.popen.communicate()

    def start(args, conf_text, env_extra=None):
        return Proc([str(a) for a in args], conf_text, env_extra)

    start.wrapper = wrapper
    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def conf_text(tmp_path, unlock=UNLOCK_S, camera=""):
    return (f"[decision]\nunlock_seconds = {unlock}\nmax_unlock_seconds = {max(unlock, 15)}\n"
            f"[camera]\nfps = 10\n{camera}\n[service]\nstate_dir = {tmp_path / 'state'}\n")


@pytest.fixture(scope="module")
def happy_folder(tmp_path_factory, happy_house_h5):
    """Door-camera frames of smiling people (course test set, label 1)."""
    import cv2
    import h5py

    from happyhouse.daemon.preprocess import to_door_frame

    with h5py.File(happy_house_h5, "r") as f:
        x, y = f["test_set_x"][:], f["test_set_y"][:].ravel()
    folder = tmp_path_factory.mktemp("happy")
    for i, img in enumerate([img for img, label in zip(x, y) if label == 1][:6]):
        cv2.imwrite(str(folder / f"{i:02d}.png"), to_door_frame(img))
    return folder


# the shipped model's validated threshold is strict for these 64x64 course frames blown up
# to 640x480; a lower --threshold makes them open the door (what is tested is the process)
SMILE_ARGS = ("--threshold", "0.3")


@pytest.mark.slow
def test_sigterm_at_random_points_of_unlock_windows_leaves_the_pin_inactive(
        tmp_path, daemon, happy_folder):
    rng = random.Random(int(os.environ.get("HAPPYHOUSE_SIGTERM_SEED", "8")))
    delays, driven_after = [], 0
    for run in range(SIGTERM_RUNS):
        run_dir = tmp_path / f"run{run}"
        run_dir.mkdir()
        proc = daemon(["--source", happy_folder, *SMILE_ARGS], conf_text(run_dir))
        opened = proc.wait_pin(True)
        delay = rng.uniform(0, UNLOCK_S * 0.9)
        time.sleep(delay)
        proc.popen.send_signal(signal.SIGTERM)
        out, err = proc.finish()
        delays.append(round(delay, 2))
        events = pin_log(proc.log)
        assert proc.popen.returncode == 0, err[-2000:]
        assert "Traceback" not in err
        assert events[-1][2] is False and events[-1][3] == "input", events[-4:]
        driven_after += events[-1][2]
        assert opened <= events[-1][0]
        os.replace(proc.log, run_dir / "pins.log")  # the next run starts from a fresh line
    print(f"\nSIGTERM in unlock windows: {SIGTERM_RUNS} runs, delays after opening (s) {delays}; "
          f"pin left driven: {driven_after}")
    assert driven_after == 0


@pytest.mark.slow
def test_sigkill_leaves_the_line_driven_and_force_lock_restores_it(tmp_path, daemon, happy_folder):
    proc = daemon(["--source", happy_folder, *SMILE_ARGS], conf_text(tmp_path, unlock=30))
    proc.wait_pin(True)
    proc.popen.send_signal(signal.SIGKILL)
    proc.finish()
    events = pin_log(proc.log)
    assert events[-1][2] is True  # killed while driven: nothing could lock it
    lock = daemon(["--force-lock"], conf_text(tmp_path))
    out, err = lock.finish()
    assert lock.popen.returncode == 0, err
    after = pin_log(lock.log)[len(events):]
    assert after[0][1] == "claim" and after[0][2] is True  # found driven...
    assert any(e[1] == "level" and e[2] is False for e in after)  # ...driven inactive
    assert after[-1][2] is False and after[-1][3] == "input"  # and released locked


# -- the technician's tools that can drive the latch: every ending signal locks ----------------
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT])
@pytest.mark.parametrize("mode", [("--once", "--actuate"), ("--check", "--test-latch")])
def test_a_signal_while_a_tool_holds_the_latch_open_locks_it(tmp_path, daemon, happy_folder,
                                                             mode, signum):
    """An SSH session dropping (SIGHUP), a kill (SIGTERM), Ctrl-C or Ctrl-\\ while
    ``--once --actuate`` or ``--check --test-latch`` has the latch open: the line ends
    inactive and released, the exit is 128 + the signal with one line, no traceback."""
    proc = daemon([*mode, "--source", happy_folder, *SMILE_ARGS], conf_text(tmp_path, unlock=10))
    opened = proc.wait_pin(True)
    proc.popen.send_signal(signum)
    out, err = proc.finish()
    events = pin_log(proc.log)
    assert events[-1][2] is False and events[-1][3] == "input", events[-4:]
    assert events[-1][0] - opened < 1.0 - 0.05 or mode[0] == "--once"  # locked by the signal
    assert proc.popen.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and signal.Signals(signum).name in lines[0], err


@pytest.mark.parametrize("broken", [
    "[decision]\nwindow = many\n[latch]\npin = GPIO5\nactive_high = false\n",
    "[nosuch]\nx = 1\n[latch]\npin = GPIO5\nactive_high = false\n",
    "[latch]\npin = GPIO5\nactive_high = false\ndoor_contact_pin = GPIO5\n",
])
def test_force_lock_with_a_broken_config_still_locks_the_configured_pin(tmp_path, daemon, broken):
    log = tmp_path / "pins.log"
    log.write_text("0.0 GPIO5 level 0 output\n")  # active-low latch left driven (low)
    proc = daemon(["--force-lock"], broken)
    out, err = proc.finish()
    assert proc.popen.returncode == 0, err
    events = pin_log(log, "GPIO5")[1:]
    assert any(e[1] == "level" and e[2] is True for e in events)  # active low: high = locked
    assert events[-1][2] is True and events[-1][3] == "input"
    assert "fallback" in err and "GPIO5" in err and "Traceback" not in err


def test_force_lock_with_its_config_file_gone_drives_no_pin(tmp_path, daemon):
    """A --config that does not exist says nothing of the pin: the service cannot have run
    with it. This case used to lock the default GPIO17 and exit 0, so a mistyped path
    reported "forced locked" while a latch on another pin stayed as it was."""
    log = tmp_path / "pins.log"
    log.write_text("0.0 GPIO17 level 1 output\n")
    proc = daemon(["--force-lock"], "")
    proc.conf.unlink(missing_ok=True)
    out, err = proc.finish()
    assert proc.popen.returncode == 2, err
    assert log.read_text().splitlines() == ["0.0 GPIO17 level 1 output"]  # no pin claimed
    assert "does not exist, so the latch pin and its polarity" in err and "no pin was driven" in err


def test_force_lock_with_an_unparsable_config_drives_no_pin(tmp_path, daemon):
    """Issue 16 item 2: a file that cannot be read as INI does not say which pin the
    latch is on; the default GPIO17 may be another device's. Fail loudly, touch nothing.
    (This case used to assert the fallback to GPIO17.)"""
    log = tmp_path / "pins.log"
    log.write_text("0.0 GPIO17 level 1 output\n")
    proc = daemon(["--force-lock"], "garbage without a section\n")
    out, err = proc.finish()
    assert proc.popen.returncode == 2, err
    assert log.read_text().splitlines() == ["0.0 GPIO17 level 1 output"]  # no pin claimed
    assert "Traceback" not in err and err.count("\n") == 1
    assert "cannot find the latch pin" in err and "no pin was driven" in err


def test_force_lock_fallback_in_process_and_a_pin_that_cannot_be_driven(tmp_path, capsys,
                                                                        monkeypatch):
    from gpiozero.pins.mock import MockFactory

    import happyhouse.daemon.latch as latch_mod
    from happyhouse.daemon.cli import EXIT_ERROR, main
    from happyhouse.daemon.config import lenient_latch_config
    from happyhouse.daemon.errors import ConfigError

    conf = tmp_path / "c.conf"
    conf.write_text("[latch]\npin = GPIO99x\nactive_high = sometimes\ngpio = mock\n"
                    "[decision]\nwindow = 0\n")
    # issue 16 item 2: an invalid pin or polarity is not replaced by a default (GPIO17,
    # active high): that would drive another pin, or open an active-low latch
    with pytest.raises(ConfigError, match="pin"):
        lenient_latch_config(str(conf), {})
    factory = MockFactory()
    monkeypatch.setattr(latch_mod, "make_pin_factory", lambda name: factory)
    assert main(["--force-lock", "--config", str(conf)]) == EXIT_ERROR
    assert factory.pins == {}
    conf.write_text("[latch]\npin = GPIO5\nactive_high = false\ngpio = mock\n"
                    "[decision]\nwindow = 0\n")
    cfg, notes = lenient_latch_config(str(conf), {"latch.pin": None})
    assert (cfg.latch_pin, cfg.latch_active_high, cfg.latch_gpio) == ("GPIO5", False, "mock")
    assert main(["--force-lock", "--config", str(conf)]) == 0
    # a pin name that passes the syntax check but does not exist: nothing could be driven
    conf.write_text("[latch]\npin = GPIO99\ngpio = mock\n[decision]\nwindow = 0\n")
    assert main(["--force-lock", "--config", str(conf)]) == EXIT_ERROR
    assert "Traceback" not in capsys.readouterr().err


# -- reload ----------------------------------------------------------------------------------
class NotifyListener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages = []  # (monotonic time, text)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._done.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except socket.timeout:
                pass

    def wait_for(self, line, timeout, count=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(line) >= count:
                return True
            time.sleep(0.02)
        return False

    def count(self, line):
        return sum(line in m.splitlines() for _, m in list(self.messages))

    def close(self):
        self._done.set()
        self._thread.join()
        self.sock.close()


@pytest.mark.slow
def test_sighup_reload_in_a_real_process(tmp_path, daemon):
    import cv2
    import numpy as np

    frames = tmp_path / "hall"
    frames.mkdir()
    for i in range(3):  # an empty hall: no face, nothing opens
        cv2.imwrite(str(frames / f"{i}.png"), np.full((480, 640, 3), 90 + 20 * i, np.uint8))
    listener = NotifyListener(tmp_path / "notify.sock")
    try:
        proc = daemon(["--source", frames], conf_text(tmp_path, unlock=5),
                      {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"})
        assert listener.wait_for("READY=1", 60), proc.finish(1)[1]
        # a bad edit is refused and the old config kept; a good one is applied
        proc.conf.write_text("[decision]\nwindow = many\n")
        proc.popen.send_signal(signal.SIGHUP)
        assert listener.wait_for("READY=1", 30, count=2)
        proc.conf.write_text(conf_text(tmp_path, unlock=3, camera="width = 320"))
        proc.popen.send_signal(signal.SIGHUP)
        assert listener.wait_for("READY=1", 30, count=3)
        assert listener.wait_for("WATCHDOG=1", 10)
        proc.popen.send_signal(signal.SIGTERM)
        out, err = proc.finish()
    finally:
        listener.close()
    assert proc.popen.returncode == 0, err[-2000:]
    assert listener.count("RELOADING=1") == 2
    assert "reload: new config rejected, keeping the old one" in err
    assert "config reloaded" in err and "Traceback" not in err, err
    events = pin_log(proc.log)
    assert not any(e[2] for e in events)  # never driven: nobody in the hall
    assert events[-1][3] == "input"
    assert listener.messages[-1][1].startswith("STOPPING=1")


def test_watchdog_is_fed_while_a_reload_reopens_a_slow_camera(tmp_path, monkeypatch):
    """A reload that takes longer than WatchdogSec must not get the service killed."""
    import happyhouse.daemon.service as service_mod
    from happyhouse.daemon.cli import build_parser, service_options
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.fakes import FakeSource
    from happyhouse.daemon.runner import run_service

    reopen_s = 1.5
    listener = NotifyListener(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "300000")  # pings every 0.15 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    import numpy as np

    class SlowCamera(FakeSource):
        def open(self, require=True):
            if self.slow:
                time.sleep(reopen_s)  # e.g. a USB camera re-enumerating
            super().open(require)

    opened = []

    def open_source(spec, cfg, stall_timeout=None, remember=False):
        cam = SlowCamera([np.zeros((48, 64, 3), np.uint8)], fps=20, loop=True)
        cam.slow = bool(opened)
        opened.append(spec)
        return cam

    monkeypatch.setattr(service_mod, "open_source", open_source)  # where the service opens cameras
    conf = tmp_path / "c.conf"
    conf.write_text(conf_text(tmp_path, camera="source = 0"))

    class Pipe:
        model_sha256 = "0" * 64

        def observe(self, frame):
            from reliability_rig import Observation

            return Observation(frame.timestamp, frame.seq, None, None, False, 1.0)

    def hup_then_term():
        assert listener.wait_for("READY=1", 20)
        conf.write_text(conf_text(tmp_path, camera="source = 1"))  # the camera changes: reopen
        os.kill(os.getpid(), signal.SIGHUP)
        assert listener.wait_for("READY=1", 20, count=2)
        os.kill(os.getpid(), signal.SIGTERM)

    args = build_parser().parse_args(["--config", str(conf), "--gpio", "mock"])
    cfg = load_config(str(conf), {"latch.gpio": "mock"}, required=True)
    from gpiozero.pins.mock import MockFactory

    helper = threading.Thread(target=hup_then_term, daemon=True)
    helper.start()
    try:
        assert run_service(cfg, **service_options(args), pin_factory=MockFactory(), pipeline=Pipe()) == 0
    finally:
        helper.join(30)
        listener.close()
    assert opened == ["0", "1"]
    msgs = listener.messages
    start = next(t for t, m in msgs if m.startswith("RELOADING=1"))
    ready = [t for t, m in msgs if m.startswith("READY=1")][1]
    pings = [t for t, m in msgs if "WATCHDOG=1" in m.splitlines() and start <= t <= ready]
    assert ready - start >= reopen_s
    assert len(pings) >= 3  # ~10 expected at 0.15 s over 1.5 s; without the fix: none
    gaps = np.diff([start, *pings, ready])
    print(f"\nreload took {ready - start:.2f}s; {len(pings)} pings; largest gap {gaps.max():.2f}s")
