"""Every tool ends the same way (issue 16 item 25): a project error is ``prog: error: ...``
on one line with its exit code, Ctrl-C is 130 with one line, never a traceback, whatever
the tool and whether or not its logging was already set up."""

import errno
import importlib
import math
import shutil

import pytest

from happyhouse.daemon.cli_errors import run_main
from happyhouse.daemon.errors import (ConfigError, DataError, Interrupted, ModelError, SourceError,
                                      refuse_unless)

# prog -> (module, its argument parser's name, argv that is a project error, a word of it)
TOOLS = {
    "happyhouse-daemon": ("happyhouse.daemon.cli", "build_parser",
                          ["--print-config", "--config", "/nonexistent/door.conf"], "does not exist"),
    "happyhouse-eval": ("happyhouse.daemon.evaluate", "build_parser",
                        ["--model", "/nonexistent/bundle", "--data", "/nonexistent/data"],
                        "nonexistent"),
    "happyhouse-train": ("happyhouse.train.cli", "parser",
                         ["--data", "/nonexistent/faces", "--out", "/nonexistent/out"],
                         "does not exist"),
    "happyhouse-convert": ("happyhouse.convert.cli", "build_parser",
                           ["/nonexistent/m.keras", "--calibration", "/nonexistent/c",
                            "--out", "/nonexistent/b"], "nonexistent"),
    "happyhouse-bench": ("happyhouse.bench.cli", "build_parser", ["--cores", "9999"],
                         "--cores"),
}


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_a_project_error_is_one_plain_line(prog, capsys):
    module, _, argv, word = TOOLS[prog]
    rc = importlib.import_module(module).main(argv)
    out, err = capsys.readouterr()
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: ") and word in err, err


@pytest.mark.parametrize("prog", sorted(TOOLS))
def test_ctrl_c_is_130_and_one_line_in_every_tool(prog, capsys, monkeypatch):
    module_name, parser_name, argv, _ = TOOLS[prog]
    module = importlib.import_module(module_name)

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, parser_name, ctrl_c)
    assert module.main(argv) == 130
    assert capsys.readouterr().err == f"{prog}: interrupted by SIGINT (Ctrl-C)\n"


def test_the_daemon_source_and_model_errors_are_one_plain_line_too(tmp_path, capsys):
    """After logging is set up the error was a timestamped ERROR record (and the
    service's own stop line repeated it): now the same plain line as a config error."""
    from happyhouse.daemon.cli import main

    import cv2
    import numpy as np

    not_a_bundle = tmp_path / "bundle"
    not_a_bundle.mkdir()
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((480, 640, 3), 128, np.uint8))
    for argv, word in (
            (["--once", "--source", str(tmp_path / "none.mp4")], "camera source"),
            (["--source", str(tmp_path / "none.mp4"), "--state-dir", str(tmp_path / "s")],
             "camera source"),
            (["--once", "--model", str(not_a_bundle), "--source", str(grey)], "model.json"),
            (["--model", str(not_a_bundle), "--state-dir", str(tmp_path / "s")], "model.json")):
        assert main([*argv, "--gpio", "mock"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        mentions = [line for line in err.splitlines() if word in line]
        assert len(mentions) == 1, err
        assert mentions[0].startswith("happyhouse-daemon: error: ") and err.endswith(
            mentions[0] + "\n"), err


def test_run_main_mapping():
    def raise_(exc):
        def body():
            raise exc
        return body

    assert run_main("p", lambda: 7) == 7
    assert run_main("p", raise_(SourceError("x"))) == 2
    ModelError.exit_code  # every project error carries its own code
    assert run_main("p", raise_(Interrupted(15))) == 143
    with pytest.raises(RuntimeError):  # a bug in a tool without bug_exit: Python reports it
        run_main("p", raise_(RuntimeError("bug")))
    assert run_main("p", raise_(RuntimeError("bug")), bug_exit=70) == 70


def test_refuse_unless_raises_the_first_failed_check_with_its_reason():
    nan = math.nan
    refuse_unless(((0 < 0.5 <= 1, "fine"),))  # all allowed: nothing raised
    with pytest.raises(ConfigError, match="^first$"):
        refuse_unless(((True, "ok"), (0 < nan <= 1, "first"), (False, "second")))
    with pytest.raises(DataError, match="budget"):
        refuse_unless(((0 < nan, "budget"),), DataError)


class _Broken:
    """A standard output that takes nothing: a closed pipe or a full disk."""

    def __init__(self, error):
        self.error = error

    def write(self, text):
        raise self.error

    def flush(self):
        raise self.error


def _report():
    import sys

    sys.stdout.write("report\n")
    return 0


@pytest.mark.parametrize("stream, why", [
    (_Broken(BrokenPipeError(32, "Broken pipe")), "Broken pipe"),
    (_Broken(OSError(28, "No space left on device")), "No space left on device"),
    (None, "it is closed"),  # started with >&-
])
def test_a_report_standard_output_cannot_take_is_one_line_not_a_bug(monkeypatch, capsys,
                                                                    stream, why):
    """--print-config | head, > /dev/full or >&- ended in exit 70 (the daemon's "internal
    error") with a traceback, after --once --actuate had already opened the door."""
    import sys

    monkeypatch.setattr(sys, "stdout", stream)
    assert run_main("p", _report, bug_exit=70) == 2
    assert sys.stdout is stream  # put back as it was
    err = capsys.readouterr().err
    assert err == f"p: error: cannot write the report to standard output ({why}); run it " \
                  f"again with the output going to a terminal or a file with room\n"


def test_a_report_that_fails_only_when_flushed_is_caught_inside(monkeypatch, capsys):
    import io
    import sys

    class Buffered(io.StringIO):
        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Buffered())
    assert run_main("p", _report, bug_exit=70) == 2
    assert "Broken pipe" in capsys.readouterr().err


def test_the_daemon_into_a_full_disk_is_exit_2_and_one_line(tmp_path):
    import os
    import subprocess
    import sys

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "happyhouse.daemon.cli", "--print-config"],
                              stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr


def test_more_ctrl_c_while_the_interruption_is_reported_still_gives_the_line(monkeypatch, capsys):
    """A burst of Ctrl-C: the second one raised KeyboardInterrupt inside the report of the
    first (a traceback, "lost sys.stderr"), and the process died by SIGINT, not 130."""
    import os
    import signal

    from happyhouse.daemon import cli_errors

    real_say = cli_errors.say

    def say_under_fire(prog, text):
        os.kill(os.getpid(), signal.SIGINT)  # (not SIGTERM: unswallowed it ends pytest)
        os.kill(os.getpid(), signal.SIGINT)
        real_say(prog, text)

    monkeypatch.setattr(cli_errors, "say", say_under_fire)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    def interrupted():
        raise Interrupted(signal.SIGINT)

    assert run_main("p", interrupted) == 130
    assert capsys.readouterr().err == "p: interrupted by SIGINT (Ctrl-C)\n"
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_an_ending_signal_ends_a_tool_like_ctrl_c_through_its_finally_blocks(capsys, signame):
    """SIGTERM to happyhouse-adapt killed it silently (rc -15) and left its fold models in
    /tmp: the desktop tools never turned ending signals into an orderly exit."""
    import os
    import signal

    signum = getattr(signal, signame)
    before = signal.getsignal(signum)
    cleaned = []

    def body():
        try:
            os.kill(os.getpid(), signum)
            return 0
        finally:
            cleaned.append(True)

    assert run_main("p", body) == 128 + signum
    assert cleaned == [True] and signal.getsignal(signum) is before
    assert capsys.readouterr().err == f"p: interrupted by {signame}\n"


def test_a_desktop_tool_refusal_is_one_line_even_after_tensorflow_loads(tmp_path):
    """TensorFlow's C++ start-up lines (absl, cpu_feature_guard) came on stderr before
    happyhouse-adapt's one error line."""
    import os
    import subprocess
    import sys

    (tmp_path / "frames").mkdir()
    (tmp_path / "afile").write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from happyhouse.train.adapt import "
                           "main; import tensorflow; sys.exit(main(sys.argv[1:]))",
                           "--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "afile")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr == f"happyhouse-adapt: error: output {tmp_path / 'afile'} exists and is " \
                          f"not a folder\n", proc.stderr


def test_a_signal_ignored_on_entry_stays_ignored(capsys):
    """nohup happyhouse-train ... &: the SSH session's SIGHUP on logout ended hours of
    training, since every tool now turned ending signals into an interruption."""
    import os
    import signal

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        def body():
            os.kill(os.getpid(), signal.SIGHUP)
            return 0

        assert run_main("p", body) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert capsys.readouterr().err == ""


def test_text_the_stream_cannot_encode_is_not_a_closed_stream(monkeypatch):
    """An ASCII-only stdout and a "…": "cannot write the report (it is closed)", exit 2;
    Keras's own fallback to ASCII never saw the UnicodeEncodeError."""
    import io
    import sys

    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)

    def body():
        try:
            sys.stdout.write("\u2026")
        except UnicodeEncodeError:
            sys.stdout.write("...")  # what a caller's fallback does
        return 0

    assert run_main("p", body) == 0


def test_a_process_forked_inside_a_tool_ends_on_its_signal_as_before():
    """A Keras data-pool worker forked by happyhouse-train inherited the tool's handler: a
    pool's SIGTERM made each worker print an Interrupted traceback instead of ending."""
    import os
    import signal
    import time

    from happyhouse.daemon.endsignals import raising

    with raising():
        child = os.fork()
        if child == 0:  # the worker: wait to be terminated
            time.sleep(30)
            os._exit(0)
        time.sleep(0.2)
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


@pytest.mark.parametrize("exc, said", [
    (OSError(errno.ENOSPC, "No space left on device", "/mnt/sd/bundle/model.tflite"),
     "cannot write /mnt/sd/bundle/model.tflite: No space left on device; free space on that disk"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/sd/out"),
     "cannot write /mnt/sd/out: Read-only file system; the disk is read-only"),
    (shutil.Error([("/tmp/.stage/model.keras", "/mnt/sd/out/model.keras",
                    "[Errno 28] No space left on device")]),
     "cannot write /mnt/sd/out/model.keras: No space left on device"),
])
def test_a_disk_that_refuses_a_write_is_one_line_exit_2_not_a_bug(capsys, exc, said):
    """Found on a full disk: happyhouse-convert and -train ended in a traceback, exit 1
    (convert's 1 means "refused: accuracy loss"); adapt's last copy raised shutil.Error."""
    def body():
        raise exc

    assert run_main("happyhouse-convert", body) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("happyhouse-convert: error: " + said), err


def test_another_os_error_is_still_a_bug(capsys):
    def body():
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError):
        run_main("p", body)
    assert run_main("p", body, bug_exit=70) == 70
