"""``happyhouse-daemon --collect`` (issue 18): a house's own clean frames, from a fake camera
replaying real GENKI-4K faces in door-sized frames, through the shipped gate and model."""

import errno
import io
import json
from argparse import Namespace

import cv2
import numpy as np
import pytest

from happyhouse.daemon.collect import Folder, run_collect
from happyhouse.daemon.config import load_config
from happyhouse.daemon.demo import face_in_door_frame
from happyhouse.daemon.errors import DataError
from happyhouse.daemon.fakes import FakeSource


@pytest.fixture(scope="module")
def shipped_pipeline():
    from happyhouse.daemon.pipeline import Pipeline

    return Pipeline.from_config(load_config(None, {"latch.gpio": "mock"}))


@pytest.fixture(scope="module")
def faces(genki_root):
    from happyhouse.daemon.datasets import load_class_folders

    data = load_class_folders(genki_root, size=None, limit=4)
    return [face_in_door_frame(data.images[i]) for i in np.flatnonzero(data.labels == 1)]


def camera(frames):
    from fakes import FakeClock

    clock = FakeClock()
    return FakeSource(frames, fps=10, clock=clock, sleep=clock.advance), clock


def args(tmp_path, **kw):
    base = dict(collect=str(tmp_path / "my_house"), label="happy", count=3, every=0.0,
                budget_mb=None)
    base.update(kw)
    return Namespace(**base)


@pytest.fixture
def no_latch(monkeypatch):
    """Collecting must never build a pin factory or a latch."""
    import happyhouse.daemon.latch as latch
    from fakes import forbid

    forbid(monkeypatch, latch, ("make_pin_factory", "latch_from_config"),
           "--collect touched the latch")


def test_collects_clean_face_frames_with_sidecars_skipping_empty_and_repeated(
        tmp_path, faces, shipped_pipeline, no_latch):
    empty = np.full_like(faces[0], 96)
    frames = [empty, faces[0], faces[0], empty, faces[1], faces[1], faces[2], faces[3]]
    source, clock = camera(frames)
    out = io.StringIO()
    cfg = load_config(None, {"latch.gpio": "mock"})
    rc = run_collect(cfg, args(tmp_path), source=source, pipeline=shipped_pipeline, out=out)
    assert rc == 0
    folder = tmp_path / "my_house" / "happy"
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 3 and not list(folder.glob(".*"))
    # the frames as captured, lossless, no box or text drawn on them
    for png, want in zip(pngs, (faces[0], faces[1], faces[2])):
        assert np.array_equal(cv2.imread(str(png)), want)
        side = json.loads(png.with_suffix(".json").read_text())
        assert side["label"] == "happy" and len(side["face"]) == 4
        assert 0.0 <= side["score"] <= 1.0 and side["time"].endswith("+00:00")
        assert side["camera"]["width"] == 640 and side["model_sha256"] == shipped_pipeline.model_sha256
    text = out.getvalue()
    assert "1/3 happy frames, keep smiling" in text and "3/3 happy frames" in text
    assert "skipped 2 without a face, 2 too like the last kept" in text
    assert not (tmp_path / "my_house" / "not_happy").exists()


@pytest.mark.parametrize("pictures, copies, count, every", [
    (1, 0, 3, 0.0), (3, 0, 10, 0.0),
    (3, 1, 10, 0.0),  # IMG_1.jpg beside "IMG_1 (1).jpg": a copy, not the end
    (3, 0, 10, 0.0667),  # --every of one replayed frame's time: lined up with the replay
    (3, 0, 10, 2.0),
])
def test_a_recording_is_read_once_every_frame_offered(tmp_path, faces, shipped_pipeline,
                                                     no_latch, pictures, copies, count, every):
    """--collect from one picture waited for good ("1/3", then silence), and a folder of
    pictures looped into copies of itself ("done: 10 frames" from 6 pictures); a rule that
    stopped at the first picture seen again ended at a copy in the folder, or when --every
    lined up with the replay and offered one picture a pass."""
    from happyhouse.daemon.sources import open_source

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(pictures):
        cv2.imwrite(str(frames / f"{i}.png"), faces[i])
    for i in range(copies):
        cv2.imwrite(str(frames / f"{i} (1).png"), faces[i])
    cfg = load_config(None, {"latch.gpio": "mock", "camera.fps": 30})
    spec = str(frames / "0.png") if pictures == 1 else str(frames)
    out = io.StringIO()
    rc = run_collect(cfg, args(tmp_path, count=count, every=every),
                     source=open_source(spec, cfg), pipeline=shipped_pipeline, out=out)
    kept = sorted((tmp_path / "my_house" / "happy").glob("*.png"))
    assert rc == 1 and len(kept) == pictures, out.getvalue()
    assert len({cv2.imread(str(p)).tobytes() for p in kept}) == pictures  # no copies
    said = out.getvalue()
    assert f"stopped after {pictures}/{count} happy frames: every frame of" in said
    assert f"{copies} copies of a frame read before" in said


def test_a_video_is_read_once_even_when_it_opens_with_repeated_frames(tmp_path, faces,
                                                                    shipped_pipeline, no_latch):
    """A rule that stopped at the first frame seen again ended a video with a black leader
    after 0 frames."""
    from happyhouse.daemon.sources import open_source

    video = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    if not writer.isOpened():
        pytest.skip("this OpenCV writes no MJPG video")
    for image in [np.zeros_like(faces[0])] * 5 + faces[:3]:
        writer.write(image)
    writer.release()
    cfg = load_config(None, {"latch.gpio": "mock", "camera.fps": 30})
    source = open_source(str(video), cfg)
    assert source.kind == "video" and source.replay_frames == 8
    out = io.StringIO()
    rc = run_collect(cfg, args(tmp_path, count=10), source=source, pipeline=shipped_pipeline,
                     out=out)
    assert rc == 1 and "stopped after 3/10 happy frames: every frame of" in out.getvalue()


def test_full_disk_while_collecting_one_line_and_nothing_half_written(
        tmp_path, faces, shipped_pipeline, no_latch, monkeypatch):
    import happyhouse.daemon.collect as collect_mod

    source, _ = camera(faces)
    cfg = load_config(None, {"latch.gpio": "mock"})
    real_fsync, calls = collect_mod.os.fsync, []

    def fsync(fd):  # the second frame's data does not fit
        calls.append(fd)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(collect_mod.os, "fsync", fsync)
    with pytest.raises(DataError, match="is full: frame .* was not written"):
        run_collect(cfg, args(tmp_path), source=source, pipeline=shipped_pipeline,
                    out=io.StringIO())
    folder = tmp_path / "my_house" / "happy"
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".png"]  # the first, whole


def test_disk_budget_and_free_space_stop_cleanly(tmp_path, faces, shipped_pipeline):
    cfg = load_config(None, {"latch.gpio": "mock"})
    source, _ = camera(faces)
    out = io.StringIO()
    rc = run_collect(cfg, args(tmp_path, count=4), source=source, pipeline=shipped_pipeline,
                     out=out, disk_free=lambda p: 100 * 2**20 + 1000)
    assert rc == 1
    assert "stopped after 0/4 happy frames" in out.getvalue() and "MB free" in out.getvalue()
    folder = Folder(tmp_path / "b", "happy", budget_mb=0.0001)
    assert "budget" in folder.room_for(10_000)


def test_collect_flags_and_labels_are_checked_before_anything_opens(tmp_path, capsys):
    from happyhouse.daemon.cli import main

    assert main(["--gpio", "mock", "--label", "happy"]) == 2
    assert "--label only works with --collect" in capsys.readouterr().err
    assert main(["--gpio", "mock", "--collect", str(tmp_path / "x")]) == 2
    assert "--collect needs --label" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit):
        main(["--gpio", "mock", "--collect", str(tmp_path), "--label", "grin"])
    assert main(["--gpio", "mock", "--collect", str(tmp_path), "--label", "happy",
                 "--count", "0"]) == 2
    assert "--count must be 1 to 10000" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["--label", "happy"]])
def test_an_empty_collect_folder_is_refused_and_never_runs_the_door(extra, tmp_path, capsys, no_latch):
    """``--collect "$DIR"`` with DIR unset read as no --collect at all: the door service ran
    and opened the latch for the first smile (with --label: a misleading "--label only works
    with --collect")."""
    from happyhouse.daemon.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["--gpio", "mock", "--state-dir", str(tmp_path / "state"), "--collect", "",
              "--source", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "argument --collect: an empty path" in err
    assert "only works with" not in err


@pytest.mark.parametrize("budget", ["nan", "inf", "0", "-5", "2e6"])
def test_a_disk_budget_that_is_not_a_size_is_one_line_and_creates_nothing(budget, tmp_path, capsys):
    """Found by trying it: --budget-mb nan or inf was a traceback, 0 or -5 a session that
    opened the camera to keep nothing."""
    from happyhouse.daemon.cli import main

    assert main(["--gpio", "mock", "--collect", str(tmp_path / "x"), "--label", "happy",
                 "--budget-mb", budget]) == 2
    err = capsys.readouterr().err
    assert "--budget-mb must be more than 0" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_file_where_the_class_folder_goes_says_so(tmp_path):
    """Found by trying it: DIR/happy left as a file said "cannot create DIR/happy: File exists"."""
    (tmp_path / "happy").write_text("notes")
    with pytest.raises(DataError, match=r"--collect folder .*happy is a file, not a folder: move it away"):
        Folder(tmp_path, "happy", budget_mb=10)
    with pytest.raises(DataError, match=r"deeper/happy cannot be created: .*happy is a file, not a folder"):
        Folder(tmp_path / "happy" / "deeper", "happy", budget_mb=10)


def test_a_dangling_symlink_as_dir_names_the_missing_target(tmp_path):
    """It said "DIR/happy is a file", which it was not."""
    (tmp_path / "frames").symlink_to(tmp_path / "usb-stick")
    with pytest.raises(DataError, match=r"frames is a symlink to .*usb-stick, which does not exist"):
        Folder(tmp_path / "frames", "happy", budget_mb=10)


def test_a_folder_left_with_a_temporary_name_is_not_a_traceback(tmp_path):
    """A stray ``.x.tmp`` folder (not a file a killed session left) ended in IsADirectoryError."""
    (tmp_path / "happy" / ".x.tmp").mkdir(parents=True)
    (tmp_path / "happy" / ".killed.png.tmp").write_bytes(b"half a frame")
    folder = Folder(tmp_path, "happy", budget_mb=10)
    assert folder.existing == 0
    assert sorted(p.name for p in (tmp_path / "happy").iterdir()) == [".x.tmp"]


def test_a_class_folder_this_user_cannot_write_is_refused_before_the_camera_opens(tmp_path, monkeypatch):
    """Found as another user: a read-only happy/ was reported after the camera and the model
    loaded, an unreadable one as a PermissionError traceback. (The check asks the kernel,
    so a test run as root, for whom every folder is writable, is given the answer.)"""
    (tmp_path / "happy").mkdir()
    monkeypatch.setattr("happyhouse.daemon.collect.os.access", lambda path, mode: False)
    with pytest.raises(DataError, match="happy is not readable and writable by this user"):
        Folder(tmp_path, "happy", budget_mb=10)


def test_collect_is_refused_beside_the_service(tmp_path, capsys, no_latch):
    """The door service holds the state folder's lock: --collect on its camera is refused."""
    from happyhouse.daemon.cli import main
    from happyhouse.daemon.statelock import acquire

    held = acquire(str(tmp_path / "state"), "the door service")
    try:
        rc = main(["--gpio", "mock", "--state-dir", str(tmp_path / "state"), "--collect",
                   str(tmp_path / "h"), "--label", "happy"])
    finally:
        held.release()
    err = capsys.readouterr().err
    assert rc != 0 and "refused to start --collect" in err and "the door service" in err
    assert not (tmp_path / "h" / "happy").exists() or not list((tmp_path / "h").rglob("*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_while_collecting_is_one_line_and_its_exit_code(signame, tmp_path, faces):
    """kill, or a dropped SSH session (SIGHUP), ended --collect silently (exit 143/129, no
    line, the camera not closed): it was left out of the tools that turn an ending signal
    into an orderly exit. Now it stops as Ctrl-C does, saying so, and exits as every tool
    does when interrupted (128 + the signal; it exited 1, as when its disk budget ran out)."""
    import signal
    import subprocess
    import sys
    import time

    camera_folder = tmp_path / "camera"
    camera_folder.mkdir()
    for i in range(60):  # a recording is read once: long enough to be interrupted
        cv2.imwrite(str(camera_folder / f"{i:02d}.png"), faces[i % len(faces)] // 2 + i)
    house = tmp_path / "my_house"
    proc = subprocess.Popen(
        [sys.executable, "-m", "happyhouse.daemon.cli", "--gpio", "mock", "--state-dir",
         str(tmp_path / "state"), "--source", str(camera_folder), "--collect", str(house),
         "--label", "happy", "--count", "10000", "--every", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not list((house / "happy").glob("*.png")) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(getattr(signal, signame))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + getattr(signal, signame), (proc.returncode, out, err)
    said = "Ctrl-C" if signame == "SIGINT" else signame
    assert f"stopped ({said}); every frame kept so far is whole" in out, (out, err)
    assert "Traceback" not in err
    kept = list((house / "happy").glob("*.png"))
    assert kept and all(p.with_suffix(".json").is_file() for p in kept)


def test_a_still_picture_is_never_collected(tmp_path, faces, shipped_pipeline, no_latch):
    """A review: --collect scored a still frame (a camera repeating one flat picture) and
    could keep a frozen dark smile as a training frame."""
    import dataclasses

    source, clock = camera([faces[0], faces[1], faces[2], faces[3]])
    real = source.latest
    source.latest = lambda timeout: (lambda f: f if f is None or f.seq > 2 else
                                     dataclasses.replace(f, still=True))(real(timeout))
    out = io.StringIO()
    cfg = load_config(None, {"latch.gpio": "mock"})
    run_collect(cfg, args(tmp_path, count=2), source=source, pipeline=shipped_pipeline, out=out)
    kept = sorted((tmp_path / "my_house" / "happy").glob("*.png"))
    assert [cv2.imread(str(p)).tobytes() == f.tobytes() for p, f in zip(kept, faces[2:])] == [True, True]
    assert "2 still pictures (a dark or covered camera)" in out.getvalue()


def test_a_collect_folder_on_a_read_only_file_system_is_said_so(tmp_path, monkeypatch):
    """A card remounted read-only was told "not readable and writable by this user: run as its owner"."""
    import os
    from types import SimpleNamespace

    from happyhouse.daemon import collect

    monkeypatch.setattr(collect.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(collect.os, "statvfs", lambda p: SimpleNamespace(f_flag=os.ST_RDONLY))
    with pytest.raises(DataError, match="read-only file system") as info:
        Folder(tmp_path / "c", "happy", budget_mb=10)
    assert "run as its owner" not in str(info.value)


def test_two_sessions_writing_into_one_folder_never_share_a_serial(tmp_path):
    """Two --collect sessions into one folder (other state folders) gave 000004 to 000011
    to two frames each: each counted on from what it had seen when it started."""
    smiles = Folder(tmp_path / "house", "happy", budget_mb=10)
    others = Folder(tmp_path / "house", "not_happy", budget_mb=10)  # both started at 0
    written = []
    for folder in (smiles, others, smiles, others, others, smiles):
        written.append(folder.write("20261129T200000", b"\x89PNG frame", {}).name[:6])
    assert written == ["000001", "000002", "000003", "000004", "000005", "000006"]
    assert not [p for p in (tmp_path / "house" / "happy").iterdir() if p.name.startswith(".")]
