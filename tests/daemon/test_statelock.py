"""One door program per state folder (issue 16 item 16): the service, ``--once --actuate``
and ``--check --test-latch`` hold an flock in the state folder; a second is refused with
one line before it claims any pin, and the kernel frees the lock when its holder dies."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from happyhouse.daemon import statelock
from happyhouse.daemon.cli import EXIT_ERROR, main
from happyhouse.daemon.errors import BusyError, ConfigError


@pytest.mark.parametrize("mode", [["--once", "--actuate"], ["--check", "--test-latch"], []],
                         ids=["once-actuate", "check-test-latch", "service"])
def test_a_second_latch_program_is_refused_while_the_service_runs(tmp_path, capsys, kept_pins,
                                                                 mode):
    state = tmp_path / "state"
    service = statelock.acquire(str(state), "the door service")  # as a running service holds it
    try:
        # --max-frames belongs to the service alone (the tools refuse it as out of mode)
        bound = [] if mode else ["--max-frames", "3"]
        rc = main([*mode, "--gpio", "mock", "--state-dir", str(state), "--source", str(tmp_path),
                   *bound])
    finally:
        service.release()
    err = capsys.readouterr().err
    assert rc == EXIT_ERROR and "Traceback" not in err
    line, = err.strip().splitlines()
    assert line.startswith("happyhouse-daemon: error: ") and "refused" in line
    assert f"the door service (pid {os.getpid()})" in line and str(state) in line
    assert kept_pins.used == {} and kept_pins.pins == {}  # refused before claiming any pin


def test_two_holders_exclude_each_other_and_release_frees_it(tmp_path):
    first = statelock.acquire(str(tmp_path / "s"), "--collect")
    with pytest.raises(BusyError, match=r"refused to start --once --actuate: --collect \(pid \d+\)"):
        statelock.acquire(str(tmp_path / "s"), "--once --actuate")
    first.release()
    statelock.acquire(str(tmp_path / "s"), "--once --actuate").release()
    assert oct((tmp_path / "s").stat().st_mode & 0o777) == "0o700"


def test_a_refusal_gives_advice_that_fits_the_holder(tmp_path):
    """A race probe: every refusal said "stop it first (sudo systemctl stop happyhouse)",
    also when --collect held the folder; and a lock held for a moment by a plain --check
    probe named the last holder of the file, a service long ended."""
    import fcntl

    collecting = statelock.acquire(str(tmp_path / "s"), "--collect (it reads the door camera)")
    with pytest.raises(BusyError) as refused:
        statelock.acquire(str(tmp_path / "s"), statelock.SERVICE_PURPOSE)
    collecting.release()
    said = str(refused.value)
    assert "--collect (it reads the door camera) (pid" in said and "systemctl" not in said
    assert "let it finish, or stop it" in said
    service = statelock.acquire(str(tmp_path / "s"), statelock.SERVICE_PURPOSE)
    with pytest.raises(BusyError, match=r"stop it first \(sudo systemctl stop happyhouse\)"):
        statelock.acquire(str(tmp_path / "s"), "--collect")
    service.release()
    lock = tmp_path / "s" / statelock.LOCK_NAME
    lock.write_text("999999999 the door service\n")  # a pid no process has
    with open(lock) as probe:
        fcntl.flock(probe, fcntl.LOCK_SH)  # --check's brief look
        with pytest.raises(BusyError, match=r"pid 999999999, has ended\).*try again in a moment"):
            statelock.acquire(str(tmp_path / "s"), statelock.SERVICE_PURPOSE)
        # a line no process could have written is no pid (it ended in a traceback, exit 70)
        for junk in ("99999999999999999999 the door service", "\u00b2 the door service"):
            lock.write_text(junk + "\n")
            with pytest.raises(BusyError, match="another door program holds"):
                statelock.acquire(str(tmp_path / "s"), statelock.SERVICE_PURPOSE)


def test_the_kernel_frees_the_lock_of_a_killed_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from happyhouse.daemon import statelock
        statelock.acquire({str(tmp_path)!r}, "the door service")
        print("held", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match=rf"pid {holder.pid}"):
            statelock.acquire(str(tmp_path), "the door service")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        statelock.acquire(str(tmp_path), "the door service").release()  # a stale file is no lock
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_modes_that_do_not_drive_the_latch_need_no_lock(tmp_path, capsys, kept_pins):
    state = tmp_path / "state"
    service = statelock.acquire(str(state), "the door service")
    try:
        assert main(["--print-config", "--state-dir", str(state)]) == 0
        assert main(["--force-lock", "--gpio", "mock", "--state-dir", str(state)]) == 0
    finally:
        service.release()


def test_a_state_folder_that_cannot_be_made_is_refused_for_a_real_latch(tmp_path, capsys,
                                                                       monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cfg = type("C", (), {"service_state_dir": str(blocker / "state"), "latch_gpio": "lgpio"})()
    with pytest.raises(Exception, match="state_dir"):
        with statelock.holding_state_lock(cfg, "the door service"):
            pass
    cfg.latch_gpio = "mock"  # no real latch to fight over: a desktop demo goes on
    with statelock.holding_state_lock(cfg, "the door service") as held:
        assert held is None


def test_check_without_test_latch_leaves_the_running_services_pin_alone(tmp_path):
    """Plain --check claimed the latch pin even while the service drove it (on a Pi:
    'GPIO busy', a false NO-GO; on some pin factories, a relocked or released line)."""
    from gpiozero.pins.mock import MockFactory

    from happyhouse.daemon import check
    from happyhouse.daemon.config import load_config

    cfg = load_config(None, {"service.state_dir": str(tmp_path), "latch.gpio": "mock"})
    factory = MockFactory()
    service = statelock.acquire(str(tmp_path), "the door service")
    try:
        item = check.check_gpio(cfg, False, factory)
    finally:
        service.release()
    assert item.status == "warn" and "not claimed" in item.detail
    assert f"the door service (pid {os.getpid()})" in item.detail
    assert factory.pins == {}
    assert check.check_gpio(cfg, False, factory).status == "warn"  # mock GPIO: claimed now
    assert factory.pin("GPIO17").function == "input"


def _open_failing(first, then=None):
    real = os.open

    def fake(path, flags, *args):
        if str(path).endswith(statelock.LOCK_NAME):
            if flags & os.O_CREAT:
                raise first
            if then is not None:
                raise then
        return real(path, flags, *args)
    return fake


def test_a_state_folder_without_write_permission_is_said_so_not_no_such_file(tmp_path, monkeypatch):
    """A folder the user cannot write, with no lock file yet, read "(No such file or directory)"."""
    import errno as e
    from happyhouse.daemon.errors import ConfigError

    monkeypatch.setattr(statelock.os, "open", _open_failing(
        PermissionError(e.EACCES, "Permission denied"), FileNotFoundError(e.ENOENT, "No such file or directory")))
    with pytest.raises(ConfigError, match=r"\(Permission denied\)") as info:
        statelock.acquire(str(tmp_path), "the door service")
    assert "No such file" not in str(info.value)


def test_a_full_disk_under_the_state_folder_is_said_so(tmp_path, monkeypatch):
    """A full disk was told "run as the service's user (sudo -u happyhouse)"."""
    import errno as e
    from happyhouse.daemon.errors import ConfigError

    monkeypatch.setattr(statelock.os, "open", _open_failing(OSError(e.ENOSPC, "No space left on device")))
    with pytest.raises(ConfigError, match="the disk is full") as info:
        statelock.acquire(str(tmp_path), "the door service")
    assert "sudo" not in str(info.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_a_lock_file_made_by_root_in_the_service_s_folder_is_the_folder_owner_s(tmp_path):
    """A first `sudo happyhouse-daemon --check --test-latch` after install made a root-owned
    0600 lock file in the service's folder: the service, as its own user, could not open it
    and refused to start, every time, telling itself to run as the service's user."""
    folder = tmp_path / "state"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    lock = statelock.acquire(str(folder), "--check --test-latch")
    lock.release()
    made = os.stat(folder / statelock.LOCK_NAME)
    assert (made.st_uid, made.st_gid) == (65534, 65534)
    assert made.st_mode & 0o044  # a read-only descriptor of another user can still lock it


def test_a_lock_file_another_user_owns_is_named_with_its_owner(tmp_path, monkeypatch):
    (tmp_path / statelock.LOCK_NAME).write_text("")
    monkeypatch.setattr(statelock.os, "geteuid", lambda: 12345)
    said = statelock._owned_by(tmp_path / statelock.LOCK_NAME)
    assert said.startswith(", owned by ") and "sudo chown" in said


def test_a_hard_link_in_the_lock_file_s_place_is_neither_written_nor_handed_over(tmp_path):
    """The lock file is written, and as root handed to the folder's owner: a hard link the
    folder's owner planted there (to a file of root's) would have been overwritten and
    given away. O_NOFOLLOW stops symbolic links only."""
    folder = tmp_path / "state"
    folder.mkdir()
    precious = tmp_path / "precious"
    precious.write_text("root's secret\n")
    os.link(precious, folder / statelock.LOCK_NAME)
    with pytest.raises(ConfigError, match="a file with 2 names"):
        statelock.acquire(str(folder), "--check --test-latch")
    assert precious.read_text() == "root's secret\n"
