import io
import json

import cv2
import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon import cli
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import DataError, SourceError
from happyhouse.daemon.once import run_once
from happyhouse.daemon.pipeline import Pipeline
from happyhouse.daemon.fakes import FakeSource, fake_clock
from happyhouse.daemon.preprocess import to_door_frame
from fakes import plain_bundle, FixedGate


class FixedClassifier:
    runtime = "fixed"
    runtime_version = "0"

    def __init__(self, value):
        self.value = value

    def score(self, image):
        return self.value


def _args(**kw):
    base = dict(as_json=True, snapshot=None, actuate=False)
    base.update(kw)
    return base


def _pipeline(score, box=(100, 100, 200, 200)):
    return Pipeline(plain_bundle(), FixedClassifier(score), FixedGate(box), 0.5)


def _source(n=10, **kw):
    clock, sleep = fake_clock()
    frames = [np.full((480, 640, 3), i * 10, np.uint8) for i in range(n)]
    return FakeSource(frames, fps=15, clock=clock, sleep=sleep, **kw)


@pytest.fixture
def cfg():
    return load_config(None, {"camera.settle_frames": 3, "decision.unlock_seconds": 2.0})


def _run(cfg, args, **kw):
    out = io.StringIO()
    code = run_once(cfg, **args, out=out, **kw)
    return code, out.getvalue()


def test_happy_json_and_settle_frames_discarded(cfg):
    code, text = _run(cfg, _args(), source=_source(), pipeline=_pipeline(0.9))
    result = json.loads(text)
    assert code == 0 and result["happy"] is True and result["score"] == pytest.approx(0.9)
    assert result["face"] == [100, 100, 200, 200] and result["seq"] == 4  # 3 settled + 1
    for key in ("latency_ms", "model_sha256", "source", "runtime", "frame_size", "timestamp"):
        assert key in result
    assert result["frame_size"] == [640, 480] and result["actuated"] is False


def test_not_happy_and_no_face_exit_1(cfg):
    code, text = _run(cfg, _args(), source=_source(), pipeline=_pipeline(0.2))
    assert code == 1 and json.loads(text)["verdict"] == "not happy"
    code, text = _run(cfg, _args(as_json=False), source=_source(), pipeline=_pipeline(0.9, None))
    assert code == 1 and text.startswith("NO FACE")


def test_latch_untouched_without_actuate(cfg):
    factory = MockFactory()
    code, _ = _run(cfg, _args(), source=_source(), pipeline=_pipeline(0.9), pin_factory=factory)
    assert code == 0 and factory.pins == {}  # the pin was never even claimed


def test_actuate_unlocks_then_relocks(cfg):
    factory = MockFactory()
    slept = []
    code, text = _run(cfg, _args(actuate=True), source=_source(), pipeline=_pipeline(0.9),
                      pin_factory=factory, sleep=slept.append)
    assert code == 0 and json.loads(text)["actuated"] is True and slept == [2.0]
    pin = factory.pin(17)
    assert [s.state for s in pin.states][-2:] == [True, False] and pin.state is False


def test_actuate_does_nothing_when_not_happy(cfg):
    factory = MockFactory()
    code, _ = _run(cfg, _args(actuate=True), source=_source(), pipeline=_pipeline(0.1),
                   pin_factory=factory)
    assert code == 1 and factory.pins == {}


def test_snapshot_is_written(cfg, tmp_path):
    path = tmp_path / "snap.jpg"
    code, text = _run(cfg, _args(snapshot=str(path)), source=_source(), pipeline=_pipeline(0.9))
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (480, 640, 3)
    assert json.loads(text)["snapshot"] == str(path)


def test_snapshot_into_missing_folder_is_an_error(cfg, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        run_once(cfg, **_args(snapshot=str(tmp_path / "no" / "s.jpg")), source=_source(),
                 pipeline=_pipeline(0.9), out=io.StringIO())


def test_snapshot_over_a_fifo_or_device_is_an_error_and_leaves_it(cfg, tmp_path):
    """os.replace put the JPEG in the place of a FIFO or device node (as root,
    ``--snapshot /dev/null`` replaced the system's /dev/null)."""
    import os
    import stat

    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "null.jpg"
    link.symlink_to("/dev/null")
    for path in (fifo, link):
        with pytest.raises(DataError, match="not a regular file"):
            run_once(cfg, **_args(snapshot=str(path)), source=_source(), pipeline=_pipeline(0.9),
                     out=io.StringIO())
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat(link).st_mode)


def test_snapshot_is_written_in_the_format_its_name_says(cfg, tmp_path):
    """``--snapshot x.png`` wrote JPEG bytes under a .png name."""
    path = tmp_path / "snap.png"
    _run(cfg, _args(snapshot=str(path)), source=_source(), pipeline=_pipeline(0.9))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError, match="name it .jpg or .png"):
        run_once(cfg, **_args(snapshot=str(tmp_path / "snap.gif")), source=_source(),
                 pipeline=_pipeline(0.9), out=io.StringIO())


def test_stalled_source_is_a_source_error(cfg):
    with pytest.raises(SourceError, match="no frame"):
        run_once(cfg, **_args(), source=_source(n=2), pipeline=_pipeline(0.9), out=io.StringIO())


def test_wrong_frame_from_source_is_a_data_error(cfg):
    clock, sleep = fake_clock()
    src = FakeSource([np.zeros((480, 640), np.uint8)] * 10, clock=clock, sleep=sleep)
    factory = MockFactory()
    with pytest.raises(DataError):
        run_once(cfg, **_args(actuate=True), source=src, pipeline=_pipeline(0.9),
                 pin_factory=factory, out=io.StringIO())
    assert factory.pins == {}


# ---- through the real command line: real image files, real model, real gate


@pytest.fixture(scope="module")
def door_jpg(tmp_path_factory, happy_house_h5):
    from happyhouse.daemon.datasets import load_hdf5

    path = tmp_path_factory.mktemp("door") / "door.jpg"
    cv2.imwrite(str(path), to_door_frame(load_hdf5(happy_house_h5, limit=1).images[0]))
    return path


def test_cli_once_on_an_image(door_jpg, capsys):
    code = cli.main(["--once", "--json", "--source", str(door_jpg), "--gpio", "mock"])
    result = json.loads(capsys.readouterr().out)
    assert code == (0 if result["happy"] else 1)
    assert result["face"] is not None and result["frame_size"] == [640, 480]


@pytest.mark.parametrize("make, match", [
    (lambda p: str(p / "missing.jpg"), "does not exist"),
    (lambda p: (p / "bad.jpg").write_bytes(b"\xff\xd8junk") and str(p / "bad.jpg"), "cannot be read"),
    (lambda p: (p / "empty").mkdir() or str(p / "empty"), "holds no images"),
    (lambda p: "/dev/video63", "cannot open"),
])
def test_cli_once_bad_sources_exit_2_with_one_line(tmp_path, capsys, make, match):
    code = cli.main(["--once", "--source", make(tmp_path), "--gpio", "mock", "--actuate",
                     "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]


def test_cli_once_missing_cascade_exits_2(tmp_path, door_jpg, capsys):
    conf = tmp_path / "h.conf"
    conf.write_text(f"[face]\ndetector = haar\ncascade = {tmp_path / 'gone.xml'}\n")
    code = cli.main(["--once", "--config", str(conf), "--source", str(door_jpg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "gone.xml" in err[0]


# ---- issue 16 item 17: a small picture is scored as eval scores it; NO FACE says why


def test_cli_once_on_a_small_image_is_scored_the_way_eval_scores_it(tmp_path, happy_house_h5,
                                                                      capsys):
    """A 64x64 Happy House frame said NO FACE; scaled to 640x480 (as happyhouse-eval does)
    the face is found. --once now scales an image file to the camera size first."""
    from happyhouse.daemon.datasets import load_hdf5
    from happyhouse.daemon.evaluate import score_images

    data = load_hdf5(happy_house_h5, limit=1)
    small = tmp_path / "small.png"  # lossless: the very pixels eval sees
    cv2.imwrite(str(small), cv2.cvtColor(data.images[0], cv2.COLOR_RGB2BGR))
    code = cli.main(["--once", "--json", "--source", str(small), "--gpio", "mock"])
    result = json.loads(capsys.readouterr().out)
    assert result["face"] is not None, result
    assert result["frame_size"] == [640, 480] and result["scaled_from"] == [64, 64]
    pipe = Pipeline.from_config(load_config(None, {"latch.gpio": "mock"}))
    seen_by_eval = score_images(pipe, data.images, gate=True, source_size=(640, 480))[0]
    assert result["face"] == list(seen_by_eval.face)
    assert result["score"] == pytest.approx(seen_by_eval.score, abs=1e-6)
    assert code == (0 if result["happy"] else 1)
    code = cli.main(["--once", "--source", str(small), "--gpio", "mock"])
    assert "scaled from 64x64 to 640x480" in capsys.readouterr().out


def test_no_face_says_the_face_was_smaller_than_min_face(tmp_path, genki_root, capsys):
    from happyhouse.daemon.datasets import load_dataset
    from happyhouse.daemon.demo import face_in_door_frame

    face = load_dataset(genki_root, limit=1).images[0]
    frame = tmp_path / "far.png"
    cv2.imwrite(str(frame), face_in_door_frame(face, side=160))
    conf = tmp_path / "far.conf"
    conf.write_text("[face]\nmin_face = 400\n")
    code = cli.main(["--once", "--config", str(conf), "--source", str(frame), "--gpio", "mock"])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("NO FACE")
    head = out.splitlines()[0]
    assert "smaller than [face] min_face (400 px)" in head, head
    code = cli.main(["--once", "--json", "--config", str(conf), "--source", str(frame),
                     "--gpio", "mock"])
    result = json.loads(capsys.readouterr().out)
    assert "min_face" in result["no_face_reason"] and result["face"] is None


def test_no_face_says_nothing_was_found(tmp_path, capsys):
    empty = tmp_path / "porch.png"
    cv2.imwrite(str(empty), np.full((480, 640, 3), 120, np.uint8))
    code = cli.main(["--once", "--source", str(empty), "--gpio", "mock"])
    head = capsys.readouterr().out.splitlines()[0]
    assert code == 1 and head.startswith("NO FACE") and "found no face" in head, head


def test_an_empty_snapshot_path_is_refused_before_the_camera_opens(tmp_path, capsys):
    """``--snapshot "$OUT"`` with OUT unset ran and silently wrote no snapshot."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["--once", "--gpio", "mock", "--snapshot", "", "--source", str(tmp_path)])
    assert stop.value.code == 2 and "argument --snapshot: an empty path" in capsys.readouterr().err


class RealLooking:
    """A pin factory that is not gpiozero's MockFactory (as lgpio on a Pi is), driving
    mock pins underneath so the test can watch them."""

    def __init__(self):
        self.__dict__["_mock"] = MockFactory()

    def __getattr__(self, name):
        return getattr(self._mock, name)

    def __setattr__(self, name, value):
        setattr(self._mock, name, value)


def _recording(n=10):
    source = _source(n)
    source.kind = "images"  # what open_source says of a picture or a folder
    source.description = "images /srv/demo/smiles (40 frame(s) at 15 fps)"
    return source


def test_a_recording_never_opens_a_real_latch(cfg):
    """A field probe: a picture or video as [camera] source on a real latch opened the door
    for a recorded smile (and the service again after every cooldown)."""
    from happyhouse.daemon.errors import ConfigError

    factory = RealLooking()
    with pytest.raises(ConfigError, match="is a recording, not a live camera"):
        _run(cfg, _args(actuate=True), source=_recording(), pipeline=_pipeline(0.9),
             pin_factory=factory, sleep=lambda s: None)
    assert all(s.state is False for s in factory._mock.pin(17).states)


def test_a_recording_may_open_a_mock_latch(cfg):
    factory = MockFactory()
    code, _ = _run(cfg, _args(actuate=True), source=_recording(), pipeline=_pipeline(0.9),
                   pin_factory=factory, sleep=lambda s: None)
    assert code == 0 and [s.state for s in factory.pin(17).states][-2:] == [True, False]


def test_a_live_camera_opens_a_real_latch(cfg):
    factory = RealLooking()
    code, _ = _run(cfg, _args(actuate=True), source=_source(), pipeline=_pipeline(0.9),
                   pin_factory=factory, sleep=lambda s: None)
    assert code == 0 and [s.state for s in factory._mock.pin(17).states][-2:] == [True, False]


def test_a_recording_is_refused_before_it_is_scored_whatever_its_verdict(cfg):
    """A review: a not-happy picture exited 1 without a word of the refusal."""
    from happyhouse.daemon.errors import ConfigError

    source = _recording()
    with pytest.raises(ConfigError, match="is a recording"):
        _run(cfg, _args(actuate=True), source=source, pipeline=_pipeline(0.1),
             pin_factory=RealLooking(), sleep=lambda s: None)
    assert source.opened is False  # refused before the source opened


def test_actuate_refuses_a_still_or_stale_frame(cfg):
    """A review: --once --actuate opened on any happy frame, however old (a stream's
    backlog) or whether the camera had only repeated a still picture."""
    import dataclasses

    for change in ({"still": True}, {"timestamp": -1e6}):
        factory = MockFactory()
        source = _source()
        real = source.latest
        source.latest = lambda timeout, real=real, change=change: (
            lambda f: f if f is None else dataclasses.replace(f, **change))(real(timeout))
        code, text = _run(cfg, _args(actuate=True), source=source, pipeline=_pipeline(0.9),
                          pin_factory=factory, sleep=lambda s: None)
        assert code == 1 and json.loads(text)["actuated"] is False, change
        assert json.loads(text)["unfit"], change
        assert factory.pins == {}


def test_a_picture_is_never_too_old_for_once(cfg):
    """A review: with fps = 1 a replayed picture waited 0.7 s for --once and was called
    stale (exit 1), though a picture is what it is at any age."""
    import dataclasses

    source = _recording()
    real = source.latest
    source.latest = lambda timeout: (lambda f: f if f is None else
                                     dataclasses.replace(f, timestamp=-1e6))(real(timeout))
    code, text = _run(cfg, _args(), source=source, pipeline=_pipeline(0.9))
    assert code == 0 and json.loads(text)["unfit"] is None


@pytest.mark.parametrize("camera", [(640, 480), (1280, 720)])
def test_a_picture_gets_one_verdict_from_once_the_service_and_eval(tmp_path, genki_root, capsys,
                                                                   caplog, camera):
    """A portrait 480x640 picture of a neutral face: --once stretched it to the camera size
    (HAPPY 0.976) while the service replayed it at its own size (0.001). Both now replay a
    picture at the camera's size, as happyhouse-eval scores a whole frame, and say when that
    stretches it."""
    import logging

    from happyhouse.daemon.datasets import load_dataset
    from happyhouse.daemon.evaluate import observe_whole_frame
    from happyhouse.daemon.sources import open_source

    face = load_dataset(genki_root, limit=1).images[0]
    portrait = np.full((640, 480, 3), 110, np.uint8)
    portrait[200:420, 130:350] = cv2.resize(face[..., ::-1], (220, 220))
    picture = tmp_path / "portrait.png"
    cv2.imwrite(str(picture), portrait)
    conf = tmp_path / "camera.conf"
    conf.write_text(f"[camera]\nwidth = {camera[0]}\nheight = {camera[1]}\n")
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.sources"):
        code = cli.main(["--once", "--json", "--config", str(conf), "--source", str(picture),
                         "--gpio", "mock"])
    result = json.loads(capsys.readouterr().out)
    assert result["frame_size"] == list(camera) and result["scaled_from"] == [480, 640]
    assert any("stretched to the camera's" in r.getMessage() for r in caplog.records)
    cfg = load_config(str(conf), {"latch.gpio": "mock"})
    pipe = Pipeline.from_config(cfg)
    eval_obs, eval_frame = observe_whole_frame(pipe, portrait[..., ::-1], camera)
    with open_source(str(picture), cfg) as source:  # what the service replays
        served = source.latest(5.0).image
    assert np.array_equal(served, eval_frame)
    assert result["face"] == (None if eval_obs.face is None else list(eval_obs.face))
    assert result["score"] == (None if eval_obs.score is None else pytest.approx(eval_obs.score, abs=1e-6))
    assert code in (0, 1)
