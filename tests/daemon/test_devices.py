"""Capture devices, reached the way the daemon reaches them (``open_source``): picture
replay from a folder, an image or a course HDF5 file, OpenCV capture of a video file
(looping) and of a missing camera (the one-line hint).
"""

import logging

import cv2
import numpy as np
import pytest

from fakes import flat_image, replay_cfg
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import SourceError
from happyhouse.daemon.sources import Frame, open_source


@pytest.fixture
def cfg():
    return replay_cfg()


def test_image_folder_source(tmp_path, cfg):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), flat_image(i * 50))
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    src = open_source(str(tmp_path), cfg)
    with src:
        values = {int(src.latest(1.0).image[0, 0, 0]) for _ in range(4)}
    assert values <= {0, 50, 100} and len(values) >= 2
    assert "3 frame(s)" in src.description


def test_single_image_source(tmp_path, cfg):
    path = tmp_path / "door.jpg"
    cv2.imwrite(str(path), flat_image(200, 120, 160))
    with open_source(str(path), cfg) as src:
        frame = src.latest(1.0)
    # replayed at the camera's size, as happyhouse-eval and --once score a picture
    assert isinstance(frame, Frame) and frame.image.shape == (cfg.camera_height, cfg.camera_width, 3)
    assert frame.image.dtype == np.uint8 and frame.scaled_from == (160, 120)


def test_h5_source_scales_frames_to_camera_size(happy_house_h5):
    cfg = load_config(None, {"camera.width": 320, "camera.height": 240, "camera.fps": 50.0})
    with open_source(str(happy_house_h5), cfg) as src:
        frame = src.latest(1.0)
    assert frame.image.shape == (240, 320, 3) and "150 frame(s)" in src.description


@pytest.mark.parametrize("length", [4, 1])
def test_video_file_source_loops(tmp_path, cfg, length):
    """A one-frame video could not seek back: "camera lost" every half second."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (64, 48))
    assert writer.isOpened()
    for i in range(length):
        writer.write(flat_image(i * 60))
    writer.release()
    with open_source(str(path), cfg) as src:
        frames = [src.latest(1.0) for _ in range(6)]  # longer than the clip: it loops
        assert src.reopens == 0
    assert all(f is not None and f.image.shape == (48, 64, 3) for f in frames)


def test_missing_camera_device_fails_to_open(cfg):
    src = open_source("/dev/video63", cfg)
    with pytest.raises(SourceError, match="cannot open /dev/video63"):
        src.open()


# --- issue 16 items 7 and 8 -------------------------------------------------------------------
def test_image_folder_is_decoded_lazily_one_picture_at_a_time(tmp_path, cfg, monkeypatch):
    from happyhouse.daemon import devices

    for i in range(6):
        cv2.imwrite(str(tmp_path / f"{i}.png"), flat_image(i * 40))
    decoded = []
    real = devices._read_picture
    monkeypatch.setattr(devices, "_read_picture", lambda p: decoded.append(p.name) or real(p))
    src = open_source(str(tmp_path), cfg)
    assert decoded == []  # opening probes, it does not keep pictures
    with src:
        src.latest(1.0)
    assert decoded and set(decoded) <= {f"{i}.png" for i in range(6)}  # decoded when read


def test_absurdly_large_pictures_are_refused_without_a_full_decode(tmp_path, cfg, monkeypatch):
    from happyhouse.daemon import devices

    huge = tmp_path / "huge.jpg"
    cv2.imwrite(str(huge), np.zeros((4400, 4400, 3), np.uint8))
    monkeypatch.setattr(devices, "_read_picture", lambda p: pytest.fail("decoded in full"))
    with pytest.raises(SourceError, match="larger than 4096x4096") as info:
        open_source(str(huge), cfg)
    assert "\n" not in str(info.value)


def test_large_pictures_in_a_folder_are_skipped_with_a_line(tmp_path, cfg, caplog):
    cv2.imwrite(str(tmp_path / "a.png"), flat_image(10))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((4400, 4400, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.sources"):
        src = open_source(str(tmp_path), cfg)
    assert "1 frame(s)" in src.description and "b.jpg" in caplog.text and "larger" in caplog.text
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4400, 4400, 3), np.uint8))
    with pytest.raises(SourceError, match="none of its 2 images"):
        open_source(str(tmp_path), cfg)


def test_empty_h5_holds_no_frames(tmp_path, cfg):
    import h5py

    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f["test_set_x"] = np.zeros((0, 64, 64, 3), np.uint8)
        f["test_set_y"] = np.zeros((0,), np.int64)
    with pytest.raises(SourceError, match="holds no frames") as info:
        open_source(str(path), cfg).open()
    assert "\n" not in str(info.value)


def test_pictures_too_small_to_shrink_are_refused_with_a_line(tmp_path, cfg, caplog):
    # OpenCV asserts (cv2.error) when its 1/8 probe decode meets a picture under 8 pixels a
    # side: a 1x1 PNG was a traceback in --once, --check and --collect
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(SourceError, match="too small to hold a face") as info:
        open_source(str(tiny), cfg)
    assert "\n" not in str(info.value)
    cv2.imwrite(str(tmp_path / "a.png"), flat_image(10))
    cv2.imwrite(str(tmp_path / "thin.png"), np.zeros((5, 300, 3), np.uint8))
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.sources"):
        src = open_source(str(tmp_path), cfg)
    assert "1 frame(s)" in src.description and "tiny.png" in caplog.text and "thin.png" in caplog.text


@pytest.mark.parametrize("shape", [(3, 0, 64, 3), (3, 64, 0, 3), (3, 4, 64, 3)])
def test_an_h5_of_frames_too_small_for_a_face_is_refused_at_open(tmp_path, cfg, shape):
    """Zero-high frames passed the checks: the service logged "camera lost" (an OpenCV
    assertion) on every frame forever, --once "no frame within 3 s"."""
    import h5py

    path = tmp_path / "flat.h5"
    with h5py.File(path, "w") as f:
        f["test_set_x"] = np.zeros(shape, np.uint8)
        f["test_set_y"] = np.zeros((3,), np.int64)
    with pytest.raises(SourceError, match=r"frames are \d+x\d+ pixels; a frame needs at least 8"):
        open_source(str(path), cfg).open()


@pytest.mark.parametrize("layout", ["grey", "grey1", "bgra", "grey16", "bgr16"])
def test_common_driver_layouts_become_bgr_frames(layout):
    """A field probe: 4-channel, H x W x 1 and 16-bit frames reached the door unconverted,
    were all refused as bad frames, and the service never became ready ("camera lost")."""
    from happyhouse.daemon.devices import as_bgr

    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (24, 32, 3), np.uint8)
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    given, expected = {
        "grey": (grey, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)),
        "grey1": (grey[:, :, None], cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)),
        "bgra": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), bgr),
        "grey16": (grey.astype(np.uint16) * 257, cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)),
        "bgr16": (bgr.astype(np.uint16) * 257, bgr),
    }[layout]
    out = as_bgr(given)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert np.array_equal(out, expected)


def test_a_layout_with_no_sure_conversion_is_left_for_the_frame_check():
    from happyhouse.daemon.devices import as_bgr

    odd = np.zeros((24, 32, 3), np.float32)
    assert as_bgr(odd) is odd


def test_a_gif_is_a_picture_scaled_like_any_other(tmp_path, cfg):
    """It was opened as a video: not scaled to the camera size by --once, so the same
    64x64 frame scored HAPPY as a PNG and "face too small" as a GIF."""
    path = tmp_path / "door.gif"
    assert cv2.imwrite(str(path), flat_image(120))
    src = open_source(str(path), cfg)
    assert src.kind == "images"
    with src:
        frame = src.latest(2.0)
    assert frame is not None and frame.image.shape[2] == 3


def test_a_gif_this_opencv_cannot_decode_is_played_as_a_video(tmp_path, monkeypatch):
    """A review: OpenCV decodes GIF only from 4.12 on (Debian bookworm's is 4.6): there a
    GIF must stay a video, as it was, not become a picture that never decodes."""
    from happyhouse.daemon.sources import classify_spec

    path = tmp_path / "door.gif"
    assert cv2.imwrite(str(path), flat_image(120))
    assert classify_spec(str(path)) == "images"
    monkeypatch.setattr(cv2, "haveImageReader", lambda name: False)
    assert classify_spec(str(path)) == "video"


def test_each_replayed_frame_says_its_own_pictures_size(tmp_path, cfg):
    """The size before scaling was one value the reader overwrote with the next picture's:
    --once said "scaled from 320x240" for the 640x480 picture it scored (8 runs in 10)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), flat_image(50, 240, 320))
    cv2.imwrite(str(folder / "b.png"), flat_image(200, 480, 640))
    seen = set()
    with open_source(str(folder), cfg) as src:
        for _ in range(12):
            frame = src.latest(1.0)
            value = int(frame.image[0, 0, 0])
            assert frame.scaled_from == ((320, 240) if value == 50 else None), (value, frame.scaled_from)
            seen.add(value)
    assert seen == {50, 200}
