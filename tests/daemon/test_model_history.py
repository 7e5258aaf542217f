"""Deploy and roll back (issue 18): the previous bundle is kept, SIGHUP serves a new bundle
at the same path, a bundle that fails its self-test is refused while the old one keeps
serving (latch locked throughout), and --rollback-model restores the previous one."""

import json
import os
import shutil
import signal

import numpy as np
import pytest

from fakes import FakeClock, ScriptedSource, clocked_factory, open_times
from happyhouse.daemon import model_history
from happyhouse.daemon.bundle import GOLDEN_FILE, META_FILE, default_bundle_path, load_bundle
from happyhouse.daemon.cli import build_parser, service_options, main
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import ModelError
from fakes import reseal_bundle


def variant(tmp_path, name, broken=False):
    """A copy of the shipped bundle with another name (a valid, different bundle), or one
    whose golden outputs no runtime reproduces (loads, fails its self-test)."""
    out = tmp_path / name
    shutil.copytree(default_bundle_path(), out)
    meta = json.loads((out / META_FILE).read_text())
    meta["name"] = name
    (out / META_FILE).write_text(json.dumps(meta))
    if broken:
        with np.load(out / GOLDEN_FILE) as data:
            arrays = {k: data[k] for k in data.files}
        arrays["outputs"] = (arrays["outputs"].astype(np.int64) + 60).clip(-128, 127).astype(
            arrays["outputs"].dtype)
        np.savez(out / GOLDEN_FILE, **arrays)
    # sealed again as a converter would have written it: a different, whole bundle
    # (the broken one then fails its self-test, not its seal)
    reseal_bundle(out)
    return out


def test_install_keeps_the_previous_bundle_and_rollback_restores_it(tmp_path, capsys):
    dest = tmp_path / "etc" / "bundle"
    first, second = variant(tmp_path, "first"), variant(tmp_path, "second")
    model_history.install(first, dest)
    assert not (tmp_path / "etc" / "bundle.previous").exists()
    model_history.install(second, dest)
    assert load_bundle(dest).meta["name"] == "second"
    assert load_bundle(tmp_path / "etc" / "bundle.previous").meta["name"] == "first"
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n")
    assert main(["--config", str(conf), "--rollback-model"]) == 0
    out = capsys.readouterr().out
    assert "rolled back" in out and "systemctl reload happyhouse" in out
    assert load_bundle(dest).meta["name"] == "first"
    assert load_bundle(tmp_path / "etc" / "bundle.rolled-back").meta["name"] == "second"
    # nothing left to roll back to: one clear line, nothing changed
    assert main(["--config", str(conf), "--rollback-model"]) == 2
    err = capsys.readouterr().err
    assert "no previous bundle to roll back to" in err and "Traceback" not in err
    assert load_bundle(dest).meta["name"] == "first"


@pytest.fixture
def term_at_first_rename(monkeypatch):
    """SIGTERM arrives at the first rename of a swap (as a `kill` or a dropped SSH session
    can); the test's own handler records it should nothing else be installed."""
    got = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    real = os.replace
    armed = []

    def replace(src, dst):
        if armed == [True]:
            armed.append("fired")
            os.kill(os.getpid(), signal.SIGTERM)
        return real(src, dst)

    monkeypatch.setattr(model_history.os, "replace", replace)
    yield lambda: armed.append(True), got
    signal.signal(signal.SIGTERM, previous)


def test_a_signal_during_a_rollback_lets_it_finish_then_ends_it(tmp_path, capsys,
                                                                term_at_first_rename):
    """--rollback-model took no ending signal: a SIGTERM between its two renames killed it
    silently with no bundle left at the configured path."""
    arm, got = term_at_first_rename
    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)
    model_history.install(variant(tmp_path, "second"), dest)
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n")
    arm()
    rc = main(["--config", str(conf), "--rollback-model"])
    err = capsys.readouterr().err
    assert rc == 128 + signal.SIGTERM and "interrupted by SIGTERM" in err, err
    assert load_bundle(dest).meta["name"] == "first"  # the swap finished, whole
    assert not got  # the tool's own handler took it


def at_first_rename(monkeypatch, module, before=lambda: None, after=lambda: None):
    """``module``'s os.replace, with ``before()`` and ``after()`` run around its first call;
    returns the list of the destinations renamed to."""
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        first = len(calls) == 1
        if first:
            before()
        real(src, dst)
        if first:
            after()

    monkeypatch.setattr(module.os, "replace", replace)
    return calls


def test_a_signal_while_a_bundle_is_swapped_in_waits_for_the_swap(tmp_path, monkeypatch):
    """A bundle written over an earlier one: a signal between the two renames left no
    bundle at the folder asked for."""
    from happyhouse.daemon import bundle as bundle_module
    from happyhouse.daemon.endsignals import raising
    from happyhouse.daemon.errors import Interrupted

    out = tmp_path / "out"
    shutil.copytree(variant(tmp_path, "old"), out)
    new = variant(tmp_path, "new")
    calls = at_first_rename(monkeypatch, bundle_module,
                            before=lambda: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(Interrupted):
        with raising():
            bundle_module._swap_in(new, out)
    assert load_bundle(out).meta["name"] == "new" and len(calls) == 2


def test_a_bundle_written_over_by_another_program_meanwhile_is_one_line(tmp_path, monkeypatch):
    """Two conversions into one --out: the one that renamed second ended in an OSError
    traceback (exit 1, read as "int8 refused")."""
    from happyhouse.daemon import bundle as bundle_module
    from happyhouse.daemon.errors import DataError

    out = tmp_path / "out"
    shutil.copytree(variant(tmp_path, "old"), out)
    other = variant(tmp_path, "other")
    # the other conversion renames its bundle in between this one's renames
    at_first_rename(monkeypatch, bundle_module, after=lambda: shutil.copytree(other, out))
    with pytest.raises(DataError, match="written by another program while this one wrote it"):
        bundle_module._swap_in(variant(tmp_path, "mine"), out)
    assert load_bundle(out).meta["name"] == "other"


def test_a_rollback_waits_for_an_install_under_way_and_then_says_so(tmp_path, capsys,
                                                                    monkeypatch):
    """A race probe: a rollback between an install's two moves lost bundle.previous and
    nested the new bundle. Both take one swap lock; the one that waits too long changes
    nothing and says why."""
    import fcntl

    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)
    model_history.install(variant(tmp_path, "second"), dest)
    monkeypatch.setattr(model_history, "SWAP_WAIT", 0.3)
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n")
    with open(model_history.swap_lock_path(dest), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # an install between its two moves
        assert main(["--config", str(conf), "--rollback-model"]) == 2
        with pytest.raises(ModelError, match="another install or rollback"):
            model_history.install(variant(tmp_path, "third"), dest)
        assert not (tmp_path / "etc" / "bundle.new").exists()  # nothing staged meanwhile
    err = capsys.readouterr().err
    assert "another install or rollback" in err and "nothing was changed" in err
    assert load_bundle(dest).meta["name"] == "second"
    assert load_bundle(tmp_path / "etc" / "bundle.previous").meta["name"] == "first"
    assert main(["--config", str(conf), "--rollback-model"]) == 0  # once it is free
    assert load_bundle(dest).meta["name"] == "first"


def test_two_installs_at_once_leave_one_whole_bundle_and_the_previous(tmp_path):
    """A review: the staging folder's fixed name was made outside the lock, so a second
    install deleted the first one's staging and the door was left with no bundle."""
    import threading

    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)
    real_load, started = model_history.load_bundle, threading.Event()

    def slow_load(path):
        if str(path).endswith(".new"):
            started.set()
            threading.Event().wait(0.5)  # the first install is verifying its staging
        return real_load(path)

    model_history.load_bundle = slow_load
    try:
        errors = []
        def run(name):
            try:
                model_history.install(variant(tmp_path, name), dest)
            except Exception as exc:  # noqa: BLE001 -- the test reports what escaped
                errors.append(exc)
        a = threading.Thread(target=run, args=("second",))
        a.start()
        started.wait(5)
        b = threading.Thread(target=run, args=("third",))
        b.start()
        a.join(20)
        b.join(20)
    finally:
        model_history.load_bundle = real_load
    assert errors == []
    assert load_bundle(dest).meta["name"] == "third"
    assert load_bundle(tmp_path / "etc" / "bundle.previous").meta["name"] == "second"
    assert not (tmp_path / "etc" / "bundle.new").exists()


def test_rollback_as_a_user_who_cannot_move_the_bundles_is_one_line(tmp_path, capsys, monkeypatch):
    """As the service user (the docs said sudo -u happyhouse) in root's /etc/happyhouse it
    ended in a PermissionError traceback, exit 70. (The kernel's answer is given: root,
    who runs the tests, may move anything.)"""
    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)
    model_history.install(variant(tmp_path, "second"), dest)
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n")
    monkeypatch.setattr(model_history.os, "access", lambda path, mode: False)
    assert main(["--config", str(conf), "--rollback-model"]) == 2
    err = capsys.readouterr().err
    assert "run it as root (sudo /opt/happyhouse/venv/bin/happyhouse-daemon --rollback-model" in err
    assert "Traceback" not in err and load_bundle(dest).meta["name"] == "second"
    monkeypatch.undo()

    def denied(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(model_history.os, "replace", denied)
    assert main(["--config", str(conf), "--rollback-model"]) == 2
    err = capsys.readouterr().err
    assert "rolling back in" in err and "Permission denied" in err and "Traceback" not in err


def test_rollback_of_a_bundle_named_dot_restores_it_and_slash_is_one_line(tmp_path, capsys,
                                                                         monkeypatch):
    """``--model .`` from inside the bundle's folder was a ValueError traceback (exit 70);
    ``--model /`` the same."""
    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)
    model_history.install(variant(tmp_path, "second"), dest)
    monkeypatch.chdir(dest)
    assert main(["--rollback-model", "--gpio", "mock", "--model", "."]) == 0
    assert load_bundle(dest).meta["name"] == "first"
    capsys.readouterr()
    assert main(["--rollback-model", "--gpio", "mock", "--model", "/"]) == 2
    err = capsys.readouterr().err
    assert "cannot be a model bundle" in err and "Traceback" not in err


def test_rollback_with_no_bundle_to_replace_does_not_claim_it_kept_one(tmp_path, capsys):
    dest = tmp_path / "etc" / "bundle"
    shutil.copytree(variant(tmp_path, "first"), tmp_path / "etc" / "bundle.previous")
    (tmp_path / "etc" / "bundle.rolled-back").mkdir()  # a stale one from long ago
    assert main(["--rollback-model", "--gpio", "mock", "--model", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "there was no bundle at" in out and "kept in" not in out
    assert load_bundle(dest).meta["name"] == "first"


def test_verify_model_says_whether_a_bundle_can_serve_here(tmp_path, capsys, kept_pins):
    """What install.sh runs on the Pi before a bundle replaces the one the door serves."""
    good = variant(tmp_path, "house")
    assert main(["--verify-model", "--model", str(good)]) == 0
    assert "can serve: self-test passed" in capsys.readouterr().out
    broken = variant(tmp_path, "broken", broken=True)  # loads, fails its self-test
    assert main(["--verify-model", "--model", str(broken)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert kept_pins.used == {} and kept_pins.pins == {}  # no GPIO at all


def test_a_bad_bundle_is_not_installed(tmp_path):
    dest = tmp_path / "bundle"
    model_history.install(variant(tmp_path, "good"), dest)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.tflite").write_bytes(b"not a model")
    with pytest.raises(ModelError):
        model_history.install(bad, dest)
    assert load_bundle(dest).meta["name"] == "good"
    assert not (tmp_path / "bundle.previous").exists()


def test_sighup_serves_a_new_bundle_refuses_a_broken_one_and_rolls_back_locked(tmp_path, caplog):
    from happyhouse.daemon import runner, service

    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "shipped-copy"), dest)
    good, broken = variant(tmp_path, "house"), variant(tmp_path, "broken", broken=True)
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n"
                    f"[service]\nstate_dir = {tmp_path / 'state'}\n")

    def hup(action):
        def hook():
            action()
            os.kill(os.getpid(), signal.SIGHUP)
        return hook

    hooks = {3: hup(lambda: model_history.install(good, dest)),
             8: hup(lambda: model_history.install(broken, dest)),
             13: hup(lambda: model_history.restore_previous(dest)),
             18: lambda: os.kill(os.getpid(), signal.SIGTERM)}
    clock = FakeClock()
    source = ScriptedSource(clock, ["-"] * 30, hooks)
    factory = clocked_factory(clock)
    args = build_parser().parse_args(["--config", str(conf)])
    cfg = load_config(str(conf), None, required=True)
    doors = []
    real_door = service.Door

    class SpyDoor(real_door):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            doors.append(self)

    service.Door = SpyDoor
    try:
        assert runner.run_service(cfg, **service_options(args), pin_factory=factory, source=source, clock=clock) == 0
    finally:
        service.Door = real_door
    names = [d.pipeline.bundle.meta["name"] for d in doors]
    assert names == ["shipped-copy", "house", "house", "house"]
    assert doors[2].pipeline is doors[1].pipeline  # the broken bundle never served
    assert doors[3].pipeline is not doors[1].pipeline  # rolled back: loaded again, self-tested
    assert "model bundle now at" in caplog.text and "refused" in caplog.text
    assert "still serving the previous model" in caplog.text
    pin = factory.pin("GPIO17")
    assert open_times(pin, 0.0) == [] and not pin.state  # locked throughout


def test_a_bundle_named_by_its_model_json_has_the_same_fingerprint(tmp_path):
    """A review: [model] bundle = .../model.json (load_bundle takes it) had no fingerprint,
    so every SIGHUP reloaded and self-tested the model though nothing had changed."""
    dest = variant(tmp_path, "first")
    assert model_history.fingerprint(dest / META_FILE) == model_history.fingerprint(dest)
    assert model_history.fingerprint(dest / "model.tflite") == model_history.fingerprint(dest)
    assert model_history.fingerprint(dest) is not None


def test_rollback_refuses_a_previous_bundle_the_door_would_not_arm(tmp_path, capsys):
    """An upgrade probe: bundle.previous made by an older release's adapt (a 16-face
    parity hold-out) was "rolled back ... reload the door to serve it", and the door then
    refused it: nothing changed is better than a way back that does not arm."""
    dest = tmp_path / "etc" / "bundle"
    poor = variant(tmp_path, "old-adaptation")
    meta = json.loads((poor / META_FILE).read_text())
    meta["metrics"]["parity"].update(n=16, holdout_summary={"n": 16, "happy": 8, "not_happy": 8})
    (poor / META_FILE).write_text(json.dumps(meta))
    reseal_bundle(poor)
    model_history.install(poor, dest)
    model_history.install(variant(tmp_path, "current"), dest)
    conf = tmp_path / "hh.conf"
    conf.write_text(f"[model]\nbundle = {dest}\n[latch]\ngpio = mock\n")
    assert main(["--config", str(conf), "--rollback-model"]) == 2
    err = capsys.readouterr().err
    assert "too poor to arm a door" in err and "nothing was changed" in err, err
    assert load_bundle(dest).meta["name"] == "current"
    assert load_bundle(tmp_path / "etc" / "bundle.previous").meta["name"] == "old-adaptation"


def test_a_reload_waits_for_an_install_under_way(tmp_path):
    """A SIGHUP between an install's two renames found no bundle, refused it and told the
    technician to roll back: the reload waits for the swap lock the install holds."""
    import threading
    import time

    dest = tmp_path / "etc" / "bundle"
    model_history.install(variant(tmp_path, "first"), dest)  # makes the swap lock file
    held, release = threading.Event(), threading.Event()

    def install_under_way():
        with model_history.swapping(dest):
            held.set()
            release.wait(5)

    worker = threading.Thread(target=install_under_way)
    worker.start()
    try:
        held.wait(5)
        assert model_history.wait_for_swap(dest, wait=0.3) is False
        threading.Timer(0.4, release.set).start()
        started = time.monotonic()
        assert model_history.wait_for_swap(dest, wait=5) is True
        assert time.monotonic() - started >= 0.3
    finally:
        release.set()
        worker.join(5)
    assert model_history.wait_for_swap(tmp_path / "nowhere" / "bundle") is True  # no lock file
