"""happyhouse-daemon: modes, exit codes, one-line errors, and the real service in a subprocess."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from happyhouse.daemon.cli import EXIT_ERROR, EXIT_OK, main


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


@pytest.mark.slow
def test_daemon_process_sigterm_while_unlocked_locks_and_exits_0(tmp_path, door_folder):
    proc, listener = start_daemon(tmp_path, door_folder)
    try:
        assert listener.wait_for("READY=1", 60), proc.stderr.read() if proc.poll() is not None else ""
        # smiling frames loop: the vote passes, the door opens for 30 s
        assert listener.wait_for("WATCHDOG=1", 30)
        end = time.monotonic() + 30
        while time.monotonic() < end and not any("STATUS=unlocked;" in m for m in listener.messages):
            listener.wait_for("never", 0.2)
        assert any("STATUS=unlocked;" in m for m in listener.messages)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.wait_for("never", 0.3)
        listener.close()
    assert proc.returncode == 0, err
    assert "unlock #1 (smile)" in err
    assert "unlocked -> stopping: SIGTERM" in err  # the stop came during the opening
    assert "stopped (SIGTERM); latch locked" in err
    assert "Traceback" not in err
    assert listener.messages[-1].startswith("STOPPING=1")


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
])
def test_flags_outside_their_mode_are_refused_with_one_line(argv, flag, mode, capsys):
    """Issue 16 item 24: `--snapshot` without `--once` (and the like) was silently ignored."""
    assert main([*argv, "--gpio", "mock"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err and mode in err, err
