"""happyhouse-daemon: modes, exit codes, one-line errors, and the real service in a subprocess."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from happyhouse.daemon.cli import EXIT_ERROR, EXIT_OK, build_parser, main


def test_print_config_shows_flags_over_file(tmp_path, capsys):
    conf = tmp_path / "c.conf"
    conf.write_text("[latch]\npin = GPIO27\n[decision]\nunlock_seconds = 4\n")
    assert main(["--print-config", "--config", str(conf), "--pin", "GPIO5"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "pin = GPIO5\n" in out and "unlock_seconds = 4.0\n" in out
    assert out.startswith(f"# effective config; file: {conf}")


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    conf = tmp_path / "c.conf"
    conf.write_text("[decision]\nwindow = many\n")
    assert main(["--print-config", "--config", str(conf)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "[decision] window" in err and "Traceback" not in err


def test_missing_config_file_given_explicitly(tmp_path, capsys):
    assert main(["--print-config", "--config", str(tmp_path / "none.conf")]) == EXIT_ERROR
    assert "does not exist" in capsys.readouterr().err


def test_force_lock_with_mock_gpio_exits_0():
    assert main(["--force-lock", "--gpio", "mock"]) == EXIT_OK


def test_force_lock_without_gpio_hardware_is_a_clear_error(monkeypatch, capsys):
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    def none_loads():
        raise BadPinFactory("Unable to load any default pin factory!")

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(none_loads))
    assert main(["--force-lock", "--gpio", "auto", "--log-level", "ERROR"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "gpio = mock" in err and "Traceback" not in err


# -- the real daemon process -------------------------------------------------------------


@pytest.fixture
def door_folder(tmp_path, smiling_door_frames):
    """A folder of door-camera frames of smiling people that the shipped pipeline opens for."""
    import cv2

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(smiling_door_frames[0][:6]):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    return folder


class NotifyListener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages = []

    def wait_for(self, line, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(line in m.splitlines() for m in self.messages):
                return True
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        return any(line in m.splitlines() for m in self.messages)

    def close(self):
        self.sock.close()


def start_daemon(tmp_path, source, extra=(), unlock=30.0):
    conf = tmp_path / "door.conf"
    conf.write_text(f"[decision]\nunlock_seconds = {unlock}\nmax_unlock_seconds = {unlock}\n"
                    f"[camera]\nfps = 10\n[service]\nstate_dir = {tmp_path / 'state'}\n")
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="2000000",
               PYTHONUNBUFFERED="1")
    env.pop("WATCHDOG_PID", None)
    env.pop("INVOCATION_ID", None)
    env.pop("JOURNAL_STREAM", None)
    listener = NotifyListener(tmp_path / "notify.sock")
    cmd = [sys.executable, "-m", "happyhouse.daemon.cli", "--config", str(conf), "--gpio", "mock",
           "--source", str(source), *extra]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, listener


def wait_until_unlocked(proc, listener) -> None:
    """Until the daemon says it is ready and then unlocked (smiling frames loop: the vote
    passes, the door opens for its unlock_seconds)."""
    assert listener.wait_for("READY=1", 60), proc.stderr.read() if proc.poll() is not None else ""
    assert listener.wait_for("WATCHDOG=1", 30)
    end = time.monotonic() + 30
    while time.monotonic() < end and not any("STATUS=unlocked;" in m for m in listener.messages):
        listener.wait_for("never", 0.2)
    assert any("STATUS=unlocked;" in m for m in listener.messages)


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGTSTP"])
def test_daemon_process_stop_signal_while_unlocked_locks_and_exits_0(tmp_path, door_folder,
                                                                     signame):
    """SIGTERM, and Ctrl-Z (SIGTSTP), which suspended a service started by hand mid-opening:
    neither its loop nor the latch's timer ran, and the line stayed driven until SIGCONT."""
    proc, listener = start_daemon(tmp_path, door_folder)
    try:
        wait_until_unlocked(proc, listener)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        listener.wait_for("never", 0.3)
        listener.close()
    assert proc.returncode == 0, err
    assert "unlock #1 (smile)" in err
    assert f"unlocked -> stopping: {signame}" in err  # the stop came during the opening
    assert f"stopped ({signame}); latch locked" in err
    assert "Traceback" not in err
    assert listener.messages[-1].startswith("STOPPING=1")


@pytest.mark.slow
def test_ctrl_z_during_an_actuated_opening_ends_the_tool_at_once(tmp_path, door_folder):
    """Ctrl-Z during --check --test-latch held a 1 s pulse open for as long as the tool was
    stopped (20 s), then reported GO, exit 0; --once --actuate the same (5 s became 12.6)."""
    import threading

    conf = tmp_path / "door.conf"
    conf.write_text(f"[decision]\nunlock_seconds = 20\nmax_unlock_seconds = 20\n"
                    f"[service]\nstate_dir = {tmp_path / 'state'}\n")
    cmd = [sys.executable, "-m", "happyhouse.daemon.cli", "--once", "--actuate", "--config",
           str(conf), "--gpio", "mock", "--source", str(door_folder), "--log-level", "DEBUG"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, opened = [], threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "unlocked for" in line:
                opened.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert opened.wait(60), "".join(lines)
        proc.send_signal(signal.SIGTSTP)  # within its 20 s opening, however loaded the machine
        signalled = time.monotonic()
        proc.wait(timeout=15)
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        reader.join(5)
    err = "".join(lines)
    # ended as SIGTERM ends it (its finally blocks lock the latch), not suspended, and not
    # after the opening ran its course
    assert proc.returncode == 128 + signal.SIGTSTP, err
    assert "interrupted by SIGTSTP" in err and "Traceback" not in err and took < 15


SIGNAL_WHILE_STARTING = """
import os, signal, sys

from happyhouse.daemon import cli

signum = getattr(signal, sys.argv.pop(1))
real = cli.config_from_args


def config_from_args(args):  # the signal comes while the service reads its config
    os.kill(os.getpid(), signum)
    return real(args)


cli.config_from_args = config_from_args
sys.exit(cli.main())
"""


@pytest.mark.slow
@pytest.mark.parametrize("signame, code, said", [
    ("SIGHUP", 0, "stopped (max-frames)"),  # a reload asked for while starting: it starts
    ("SIGTERM", 128 + signal.SIGTERM, "interrupted by SIGTERM"),  # the unit: a clean end
])
def test_a_signal_while_the_service_starts_is_never_silent(tmp_path, door_folder, signame,
                                                          code, said):
    """A SIGHUP or SIGTERM before the service's handlers were installed (its config and
    state lock being read) killed it silently: exit 129/143, no line."""
    proc = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_STARTING, signame, "--gpio", "mock", "--source",
         str(door_folder), "--state-dir", str(tmp_path / "state"), "--max-frames", "3"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert said in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_daemon_process_with_missing_camera_exits_2_with_one_line(tmp_path):
    proc, listener = start_daemon(tmp_path, tmp_path / "no-such-video.mp4")
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == EXIT_ERROR
    lines = [line for line in err.splitlines() if "ERROR" in line or "error" in line]
    assert lines and "Traceback" not in err
    assert not any(m.startswith("READY=1") for m in listener.messages)


@pytest.mark.parametrize("argv, flag, mode", [
    (["--snapshot", "/tmp/x.jpg"], "--snapshot", "--once"),
    (["--check", "--snapshot", "/tmp/x.jpg"], "--snapshot", "--once"),
    (["--actuate"], "--actuate", "--once"),
    (["--check", "--actuate"], "--actuate", "--once"),
    (["--once", "--test-latch"], "--test-latch", "--check"),
    (["--print-config", "--json"], "--json", "--once or --check"),
    (["--once", "--max-frames", "3"], "--max-frames", "the service"),
    # a zero is a value given, not a flag left out (0 == False let these through)
    (["--once", "--every", "0"], "--every", "--collect"),
    (["--check", "--count", "0"], "--count", "--collect"),
    (["--once", "--max-frames", "0"], "--max-frames", "the service"),
])
def test_flags_outside_their_mode_are_refused_with_one_line(argv, flag, mode, capsys):
    """Issue 16 item 24: `--snapshot` without `--once` (and the like) was silently ignored."""
    assert main([*argv, "--gpio", "mock"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err and mode in err, err


@pytest.mark.parametrize("frames", ["0", "-1", "2592001"])
def test_a_service_run_of_no_frames_is_refused_not_a_clean_stop(frames, grey_jpg, capsys):
    """--max-frames 0 (or -1) ran no frame and exited 0, as if the demo had passed."""
    assert main(["--max-frames", frames, "--gpio", "mock", "--source", str(grey_jpg)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-frames must be 1 to" in err, err


# -- --force-lock finds the configured pin or drives nothing ----------------------------------
ACTIVE_LOW_GPIO5 = "# door latch\n[latch]\npin = GPIO5\nactive_high = false\n[decision]\nwindow = 0\n"


def _force_lock_in_thread(argv, timeout=20.0):
    """main(argv) in a thread: a config that blocks the reader (a FIFO) fails, never hangs."""
    import threading

    result = []
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"--force-lock {argv} still running after {timeout} s"
    return result[0]


@pytest.mark.parametrize("encode", [
    pytest.param(lambda t: b"\xef\xbb\xbf" + t.encode(), id="utf8-bom"),
    pytest.param(lambda t: t.replace("\n", "\r\n").encode(), id="crlf"),
    pytest.param(lambda t: ("# T\xfcrkontakt im Flur\n" + t).encode("latin-1"), id="latin1-comment"),
    pytest.param(lambda t: t.encode("utf-16"), id="utf16-with-bom"),
    pytest.param(lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode(), id="bom-and-crlf"),
])
def test_force_lock_finds_the_configured_pin_in_an_oddly_saved_config(tmp_path, capsys,
                                                                      kept_pins, encode):
    conf = tmp_path / "c.conf"
    conf.write_bytes(encode(ACTIVE_LOW_GPIO5))
    assert _force_lock_in_thread(["--force-lock", "--config", str(conf)]) == EXIT_OK
    pin, = kept_pins.used.values()  # no other pin touched
    assert pin.info.name == "GPIO5"
    assert pin.state is True and pin.function == "input"  # active low: driven high, released
    assert "Traceback" not in capsys.readouterr().err


def _fifo(tmp_path):
    path = tmp_path / "c.fifo"
    os.mkfifo(path)
    return path


def _write(name, data):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return make


@pytest.mark.parametrize("make, why", [
    pytest.param(lambda tmp: tmp, "a folder", id="directory"),
    pytest.param(_fifo, "a FIFO", id="fifo"),
    pytest.param(lambda tmp: "/dev/zero", "character device", id="dev-zero"),
    pytest.param(_write("u16.conf", ACTIVE_LOW_GPIO5.encode("utf-16-le")), "NUL",
                 id="utf16-without-bom"),
    pytest.param(_write("g.conf", b"garbage without a section\n[latch]\npin = GPIO5\n"),
                 "not valid INI", id="no-section-header"),
    pytest.param(_write("p.conf", b"[latch]\npin = GPIO99x\n"), "pin", id="invalid-pin"),
    pytest.param(_write("a.conf", b"[latch]\npin = GPIO5\nactive_high = sometimes\n"),
                 "active_high", id="invalid-polarity"),
    pytest.param(_write("d.conf", b"[latch]\npin = GPIO5\npin = GPIO6\n"), "not valid INI",
                 id="pin-given-twice"),
    pytest.param(_write("big.conf", b"[latch]\npin = GPIO5\n" + b"#" * (2 << 20)), "larger",
                 id="too-big"),
    # a mistyped --config locked the default GPIO17 and said "forced locked" (exit 0)
    pytest.param(lambda tmp: tmp / "happyhouse.cnf",
                 "does not exist, so the latch pin and its polarity", id="missing-file"),
    # the pin and polarity were read past a section the service refuses: GPIO17 was
    # driven "locked" (high) while the configured active-low GPIO5 was never touched
    pytest.param(_write("cap.conf", b"[Latch]\npin = GPIO5\nactive_high = false\n"),
                 "under [Latch], not [latch]", id="wrong-case-section"),
    pytest.param(_write("def.conf", b"[DEFAULT]\nactive_high = false\n[latch]\npin = GPIO5\n"),
                 "active_high under [DEFAULT]", id="default-section"),
    # a power cut left the file empty: "every default" drove GPIO17's locked level, the
    # open one for an active-low latch (exit 0, "forced locked")
    pytest.param(_write("empty.conf", b""), "is empty", id="empty-file"),
    pytest.param(_write("blank.conf", b"\n  \r\n\t\n"), "is empty", id="blank-file"),
])
def test_force_lock_without_a_readable_latch_pin_fails_loudly_and_drives_nothing(
        tmp_path, capsys, kept_pins, make, why):
    path = make(tmp_path)
    assert _force_lock_in_thread(["--force-lock", "--config", str(path)]) == EXIT_ERROR
    assert kept_pins.used == {} and kept_pins.pins == {}  # no pin at all, not even claimed
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("happyhouse-daemon: error: --force-lock"), err
    assert why in lines[0] and "no pin was driven" in lines[0]


def test_force_lock_with_a_missing_config_and_a_pin_still_drives_nothing(tmp_path, capsys, kept_pins):
    """--pin named the pin, but the polarity was guessed (active high): on an active-low
    latch "forced locked (driven low)" was the door held open, with exit 0."""
    argv = ["--force-lock", "--config", str(tmp_path / "gone.conf"), "--pin", "GPIO5"]
    assert _force_lock_in_thread(argv) == EXIT_ERROR
    assert kept_pins.used == {} and kept_pins.pins == {}
    assert "polarity" in capsys.readouterr().err


def test_force_lock_without_a_config_file_uses_the_defaults_as_the_service_does(
        tmp_path, kept_pins, monkeypatch):
    from happyhouse.daemon import config

    monkeypatch.setattr(config, "DEFAULT_PATH", str(tmp_path / "none.conf"))
    assert _force_lock_in_thread(["--force-lock", "--pin", "GPIO5"]) == EXIT_OK
    pin, = kept_pins.used.values()
    assert pin.info.name == "GPIO5" and pin.state is False


@pytest.mark.parametrize("make", [pytest.param(lambda tmp: tmp, id="directory"),
                                  pytest.param(_fifo, id="fifo"),
                                  pytest.param(lambda tmp: "/dev/zero", id="dev-zero")])
def test_the_service_refuses_a_config_that_is_not_a_file_at_once(tmp_path, capsys, make):
    path = make(tmp_path)
    assert _force_lock_in_thread(["--print-config", "--config", str(path)]) == EXIT_ERROR
    assert "not a regular file" in capsys.readouterr().err


# -- Ctrl-C: never a traceback, never success ----------------------------------------------
CTRL_C_AT_IMPORT = '''
import importlib.abc, os, signal, sys

TARGET = sys.argv.pop(1)
if TARGET in sys.modules:
    sys.exit(99)  # the test's premise is wrong: that module is already loaded at start


class CtrlC(importlib.abc.MetaPathFinder):
    """Ctrl-C arrives just as TARGET is first imported, as if pressed at that moment."""

    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlC())
from happyhouse.daemon.cli import main  # what the console script does

sys.exit(main())
'''


@pytest.fixture(scope="module")
def grey_jpg(tmp_path_factory):
    import cv2
    import numpy as np

    path = tmp_path_factory.mktemp("img") / "grey.jpg"
    cv2.imwrite(str(path), np.full((480, 640, 3), 128, np.uint8))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode, target", [
    (["--once"], "happyhouse.daemon.config"),  # importing the CLI module itself
    (["--once"], "argparse"),  # parsing the arguments
    (["--once"], "happyhouse.daemon.journal"),  # setting up logging
    (["--once"], "cv2"),  # opening the camera
    (["--once"], "happyhouse.daemon.runtime"),  # loading the model
    (["--check"], "happyhouse.daemon.check"),
    (["--check"], "happyhouse.daemon.runtime"),
    ([], "happyhouse.daemon.runner"),  # the service, before its own handlers
])
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, grey_jpg, mode, target):
    """Issue 16 items 9 and 15: Ctrl-C in the first moments printed a KeyboardInterrupt
    traceback, and later in --once/--check exited 0 (happy / go) without a word."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_AT_IMPORT)
    env = dict(os.environ)
    for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "INVOCATION_ID", "JOURNAL_STREAM"):
        env.pop(key, None)
    proc = subprocess.run(
        [sys.executable, str(script), target, *mode, "--gpio", "mock", "--source", str(grey_jpg),
         "--state-dir", str(tmp_path / "state")],
        env=env, capture_output=True, text=True, timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "happyhouse-daemon: interrupted by SIGINT (Ctrl-C)", proc.stderr
    assert sum("interrupted" in line or "error" in line.lower() for line in lines) == 1


def test_interrupted_tools_never_exit_0(monkeypatch, capsys):
    """KeyboardInterrupt from inside a mode (a slow camera, a long pulse) -> 130, one line."""
    import happyhouse.daemon.check as check_mod

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(check_mod, "run_check", interrupted)
    assert main(["--check", "--gpio", "mock"]) == 130
    assert capsys.readouterr().err == "happyhouse-daemon: interrupted by SIGINT (Ctrl-C)\n"


@pytest.mark.parametrize("argv, flag", [
    (["--verify-model", "--model", ""], "--model"),  # passed on the shipped bundle, exit 0
    (["--print-config", "--config", ""], "--config"),  # "config file  does not exist"
    (["--print-config", "--state-dir", " "], "--state-dir"),
])
def test_an_empty_path_flag_is_refused_not_read_as_not_given(capsys, argv, flag):
    """``--model "$BUNDLE"`` with BUNDLE unset made a verify step pass against the wrong
    bundle; the service would have served the shipped one."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and f"argument {flag}: an empty path" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--threshold", "--every", "--budget-mb"])
def test_a_number_flag_takes_plain_digits_only(flag, capsys):
    """float() read --threshold 0.8_5 as 0.85: plain digits only, as in the config file."""
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([flag, "0.8_5"])
    assert info.value.code == 2 and "invalid number value: '0.8_5'" in capsys.readouterr().err


def test_config_warnings_are_said_after_logging_is_set_up_and_obey_the_level(tmp_path, caplog):
    """A config warning (a [face] key the detector does not read) came out before logging was
    set up: a bare stderr line that --log-level ERROR (the installer's) did not silence."""
    import logging

    conf = tmp_path / "h.conf"
    conf.write_text("[face]\ncascade = /x/cascade.xml\n")
    logging.getLogger().setLevel(logging.WARNING)  # as a new process starts
    assert main(["--print-config", "--config", str(conf)]) == EXIT_OK
    said = [r for r in caplog.records if "does not read it" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING" and said[0].name == "happyhouse.daemon.config"
    caplog.clear()
    logging.getLogger().setLevel(logging.WARNING)
    assert main(["--print-config", "--config", str(conf), "--log-level", "ERROR"]) == EXIT_OK
    assert not [r for r in caplog.records if "does not read it" in r.getMessage()]
