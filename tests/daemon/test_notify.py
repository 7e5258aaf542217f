"""sd_notify: messages arrive on a real AF_UNIX datagram socket."""

import os
import socket
import sys
import types
import uuid

import pytest

from happyhouse.daemon.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


def receive_all(sock):
    out = []
    sock.settimeout(0.05)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except (socket.timeout, BlockingIOError):
        pass
    return out


def test_fallback_sender_delivers_each_message_as_one_datagram(notify_socket):
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path}, use_systemd_python=False)
    assert notifier.enabled and notifier.backend == "socket"
    assert notifier.ready("armed, 15.0 fps")
    assert notifier.watchdog()
    assert notifier.status("unlocked\nSTOPPING=1")  # a newline cannot inject a field
    assert notifier.stopping()
    assert sock.recv(4096) == b"READY=1\nSTATUS=armed, 15.0 fps"
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sock.recv(4096) == b"STATUS=unlocked STOPPING=1"
    assert sock.recv(4096) == b"STOPPING=1"
    assert notifier.sent == 4
    notifier.close()


def test_reloading_carries_monotonic_usec(notify_socket):
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path}, use_systemd_python=False)
    notifier.reloading("reloading config")
    fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
    assert fields["RELOADING"] == "1" and int(fields["MONOTONIC_USEC"]) > 0
    assert fields["STATUS"] == "reloading config"


def test_abstract_socket_address():
    name = f"happyhouse-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name}, use_systemd_python=False)
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_outside_systemd_everything_is_a_no_op():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.watchdog_interval is None


def test_send_failure_is_swallowed_and_logged_once(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}, use_systemd_python=False)
    assert notifier.watchdog() is False
    assert notifier.watchdog() is False
    assert sum("sd_notify" in r.getMessage() for r in caplog.records) == 1


def test_relative_socket_path_disables_notify(caplog):
    notifier = Notifier({"NOTIFY_SOCKET": "relative.sock"}, use_systemd_python=False)
    assert not notifier.enabled
    assert "neither a path" in caplog.text


def test_systemd_python_is_preferred_when_present(monkeypatch, notify_socket):
    path, sock = notify_socket
    sent = []
    fake_systemd = types.ModuleType("systemd")
    fake_daemon = types.ModuleType("systemd.daemon")
    fake_daemon.notify = lambda status, *a, **k: sent.append(status) or True
    fake_systemd.daemon = fake_daemon
    monkeypatch.setitem(sys.modules, "systemd", fake_systemd)
    monkeypatch.setitem(sys.modules, "systemd.daemon", fake_daemon)
    assert Notifier({"NOTIFY_SOCKET": path}).backend == "socket"  # never the blocking one by default
    notifier = Notifier({"NOTIFY_SOCKET": path}, use_systemd_python=True)
    assert notifier.backend == "systemd-python"
    notifier.ready("ok")
    assert sent == ["READY=1\nSTATUS=ok"]
    assert receive_all(sock) == []


@pytest.mark.parametrize("env,expected", [
    ({"WATCHDOG_USEC": "10000000"}, 5.0),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
    ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
    ({}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec(env, expected):
    assert Notifier(env).watchdog_interval == expected


def test_a_full_receiver_queue_never_blocks_the_sender(notify_socket, caplog):
    path, sock = notify_socket  # nobody reads: the kernel queue fills up
    notifier = Notifier({"NOTIFY_SOCKET": path})  # the default, systemd-python installed or not
    results = [notifier.status(f"n={i}") for i in range(2000)]
    assert results[0] is True and results[-1] is False  # later ones dropped, not blocked
    assert sum("sd_notify" in r.getMessage() for r in caplog.records) == 1


def test_ready_and_stopping_wait_briefly_for_room_in_a_full_queue(notify_socket):
    """READY=1 and STOPPING=1 are sent once each and matter (a lost READY gets the
    service killed): they retry for up to a second; STATUS is dropped at once."""
    import threading
    import time

    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    while notifier.status("filler"):  # fill the kernel queue
        pass
    started = time.monotonic()
    assert notifier.status("dropped") is False
    assert time.monotonic() - started < 0.05  # never waits
    reader = threading.Timer(0.2, lambda: [sock.recv(4096) for _ in range(3)])
    reader.start()
    started = time.monotonic()
    assert notifier.stopping("stopping: test") is True
    assert time.monotonic() - started >= 0.15  # it waited for the reader
    reader.join()
    received = receive_all(sock)
    assert received[-1] == "STOPPING=1\nSTATUS=stopping: test"


def test_an_important_message_gives_up_after_its_retry_time(notify_socket):
    import time

    path, _ = notify_socket  # nobody ever reads
    notifier = Notifier({"NOTIFY_SOCKET": path})
    while notifier.status("filler"):
        pass
    started = time.monotonic()
    assert notifier.ready("armed") is False
    assert 0.9 <= time.monotonic() - started < 5.0  # about IMPORTANT_RETRY_S, then gave up
