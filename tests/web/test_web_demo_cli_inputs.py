"""python -m happyhouse.daemon.web.demo: a --frames folder it cannot play is one line."""

import pytest

from happyhouse.daemon.web import demo

PROG = "happyhouse-page-demo"


@pytest.mark.parametrize("case", ["missing", "a-file"])
def test_frames_that_are_not_a_folder_are_one_line(case, tmp_path, capsys):
    """--frames /nonexistent was a FileNotFoundError traceback."""
    frames = tmp_path / "none"
    if case == "a-file":
        frames.write_text("x")
    assert demo.main(["--frames", str(frames), "--state-dir", str(tmp_path / "state")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{PROG}: ")]
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: --frames {frames}"), err
    assert ("does not exist" if case == "missing" else "is not a folder") in lines[0]


@pytest.mark.parametrize("seconds", ["nan", "-1"])
def test_seconds_that_never_end_are_refused(tmp_path, capsys, seconds):
    """--seconds nan or -1 ran until killed."""
    from happyhouse.daemon.web import demo

    (tmp_path / "frames").mkdir()
    assert demo.main(["--frames", str(tmp_path / "frames"), "--seconds", seconds,
                      "--state-dir", str(tmp_path / "state")]) == 2
    assert "--seconds must be 0 (until Ctrl-C) or more" in capsys.readouterr().err
