"""One rule for picture files in every tool (``pictures``): found by a probe handing the
tools the files real users have (phone photos, macOS copies, TIFFs, huge pictures, a FIFO)."""

import logging
import os
import shutil
import struct
import threading

import cv2
import numpy as np
import pytest
from fakes import flat_image, replay_cfg

from happyhouse.daemon.collect import Folder
from happyhouse.daemon.datasets import load_dataset
from happyhouse.daemon.devices import read_pictures
from happyhouse.daemon.errors import SourceError
from happyhouse.daemon.pictures import list_pictures, read_picture
from happyhouse.daemon.sources import classify_spec, open_source

#: the first bytes of an iPhone's HEIC photo (an ISO media file of brand heic)
HEIC = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic" + b"\0" * 64


def _jpeg(path, image=None):
    ok, data = cv2.imencode(".jpg", flat_image(90) if image is None else image)
    path.write_bytes(data.tobytes())
    return path


def _tiff_header(width, height) -> bytes:
    """A little-endian TIFF whose first directory says width x height (no pixels)."""
    entries = [struct.pack("<HHII", 256, 4, 1, width), struct.pack("<HHII", 257, 4, 1, height)]
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 2) + b"".join(entries) + b"\0" * 8


def _png_header(width, height) -> bytes:
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + b"\0" * 64)


@pytest.fixture
def messy(tmp_path):
    """A class folder as a technician's copy leaves it."""
    folder = tmp_path / "happy"
    folder.mkdir()
    for name in ("a.png", "b.jpg", "c.tif"):
        assert cv2.imwrite(str(folder / name), flat_image(80))
    _jpeg(folder / "d.jfif")
    _jpeg(folder / "IMG_0001.HEIC")  # a phone's "HEIC" that is a JPEG
    (folder / "IMG_0002.HEIC").write_bytes(HEIC)  # a real one
    shutil.copy(folder / "a.png", folder / ".hidden.png")
    (folder / "._a.png").write_bytes(b"\0\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (folder / "a.json").write_text("{}")  # a collected frame's sidecar
    (folder / "day1").mkdir()
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    return folder


def test_a_folder_s_pictures_are_named_by_content_and_hidden_files_left_out(messy):
    listing = list_pictures(messy)
    assert [p.name for p in listing.pictures] == ["IMG_0001.HEIC", "a.png", "b.jpg", "c.tif",
                                                 "d.jfif"]
    assert [p.name for p, _ in listing.passed_over] == ["IMG_0002.HEIC", "day1", "gone.png"]
    line = listing.passed_over_line()
    assert "export it as JPEG" in line and "subfolders are not read" in line
    assert "a link to nothing" in line and "a.json" not in line


def test_the_door_and_the_loaders_read_the_same_pictures_of_a_folder(messy, caplog):
    """--check replayed 5 frames of a folder eval counted 4 of (a hidden one), eval and adapt
    dropped a TIFF the door replayed, and neither read a JPEG saved as .jfif."""
    shutil.copytree(messy, messy.parent / "not_happy", symlinks=True)
    count, _, left_out = read_pictures(messy)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        data = load_dataset(messy.parent, size=64)
    assert count == 5 and len(data) == 10 and not data.skipped
    assert [entry.split(" ")[0] for entry in left_out] == ["IMG_0002.HEIC", "day1", "gone.png"]
    assert sum("IMG_0002.HEIC" in r.getMessage() for r in caplog.records) == 2


def test_a_picture_too_large_is_refused_from_its_header_by_every_tool(tmp_path, monkeypatch):
    """A 1 MB 20000x20000 PNG took eval to 2.4 GB (the door refused it from its header);
    a 1.2 MB TIFF took the door to 816 MB before it was refused."""
    folder = tmp_path / "happy"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(_png_header(20000, 20000))
    (folder / "bomb.tif").write_bytes(_tiff_header(16000, 16000))
    assert cv2.imwrite(str(folder / "ok.png"), flat_image(80))
    shutil.copytree(folder, tmp_path / "not_happy")
    bombs = {(folder / name).read_bytes() for name in ("bomb.png", "bomb.tif")}
    real = cv2.imdecode
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda data, flag: decoded.append(bytes(data))
                        or real(data, flag))
    data = load_dataset(tmp_path, size=64)
    assert len(data) == 2 and sorted(why for _, why in data.skipped) == [
        "16000x16000 pixels, larger than 4096x4096: scale it down"] * 2 + [
        "20000x20000 pixels, larger than 4096x4096: scale it down"] * 2
    for name in ("bomb.png", "bomb.tif"):
        with pytest.raises(SourceError, match="larger than 4096x4096"):
            open_source(str(folder / name), replay_cfg())
    assert decoded and not bombs & set(decoded)  # only the real pictures were decoded


def test_a_picture_too_small_to_hold_a_face_is_refused_by_every_tool(tmp_path):
    """A 1x1 PNG was refused by the door and scored as a face by eval (0.47-0.82)."""
    for label in ("happy", "not_happy"):
        (tmp_path / label).mkdir()
        assert cv2.imwrite(str(tmp_path / label / "ok.png"), flat_image(80))
    assert cv2.imwrite(str(tmp_path / "happy" / "one.png"), np.zeros((1, 1, 3), np.uint8))
    data = load_dataset(tmp_path, size=64)
    assert len(data) == 2 and data.skipped[0][1] == ("1x1 pixels, under 8 on a side: too small "
                                                     "to hold a face")
    with pytest.raises(SourceError, match="under 8 on a side"):
        open_source(str(tmp_path / "happy" / "one.png"), replay_cfg())


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_png_is_refused_not_waited_on(tmp_path):
    """--once and --check hung for good on a FIFO named .png (the loaders already refused it)."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    said = []

    def open_it():
        try:
            open_source(str(fifo), replay_cfg())
        except SourceError as exc:
            said.append(str(exc))

    worker = threading.Thread(target=open_it, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # let the thread end: the read it is blocked in gets its bytes
        with open(fifo, "wb"):
            pass
        pytest.fail("the door waited on the FIFO")
    assert said and "not a regular file" in said[0]


def test_a_jpeg_under_another_name_is_replayed_as_a_picture_and_a_heic_is_named(tmp_path):
    """A JPEG saved as .jfif (or a phone's .HEIC that is a JPEG) was played as a video: no
    EXIF turn, not scaled to the camera size, and "no face"."""
    for name in ("door.jfif", "IMG_0001.HEIC"):
        photo = _jpeg(tmp_path / name, np.full((960, 1280, 3), 90, np.uint8))
        assert classify_spec(str(photo)) == "images"
        with open_source(str(photo), replay_cfg()) as src:
            frame = src.latest(5.0)
        assert frame is not None and frame.image.shape[:2] == (480, 640)
        assert frame.scaled_from == (1280, 960)
    heic = tmp_path / "IMG_0002.HEIC"
    heic.write_bytes(HEIC)
    with pytest.raises(SourceError, match="HEIC/HEIF photo.*export it as JPEG"):
        classify_spec(str(heic))


def test_frames_all_of_another_shape_are_said_to_be_stretched(tmp_path, caplog):
    """Phone portraits (all 3024x4032) were stretched to 640x480 without a word: the warning
    came only when the frames differed in size among themselves."""
    for label in ("happy", "not_happy"):
        (tmp_path / label).mkdir()
        assert cv2.imwrite(str(tmp_path / label / "p.jpg"), np.full((1000, 750, 3), 90, np.uint8))
    with caplog.at_level(logging.WARNING):
        data = load_dataset(tmp_path, size=None, frame_size=(640, 480))
    assert data.images.shape == (2, 480, 640, 3)
    assert any("2 frame(s) not of the camera's shape" in r.getMessage() for r in caplog.records)


def test_collect_counts_the_frames_adapt_will_read(messy):
    """"(3 there already)" counted macOS's ._x.png copies and a hidden PNG, not a phone's JPEG."""
    assert Folder(messy.parent, "happy", budget_mb=10).existing == 5


def test_read_picture_says_why_in_one_line(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff a copy cut short")
    for name, why in (("empty.jpg", "empty file"), ("cut.jpg", "not a decodable image"),
                      ("missing.jpg", "No such file or directory")):
        with pytest.raises(ValueError, match=why):
            read_picture(tmp_path / name)


def test_check_warns_of_a_replayed_folder_s_files_it_leaves_out(messy):
    """--check said GO over a folder of which it replayed 5 of 9 files (the rest in a log
    line only)."""
    from happyhouse.daemon.check import WARN, check_camera
    from happyhouse.daemon.config import load_config

    (messy / "cut.jpg").write_bytes(b"\xff\xd8\xff a copy cut short")
    cfg = load_config(None, {"latch.gpio": "mock", "camera.source": str(messy)})
    item = check_camera(cfg, {}, open_source(str(messy), cfg))
    assert item.status == WARN and "4 file(s) of the folder not replayed" in item.detail
    assert "cut.jpg (not a decodable image)" in item.detail


def test_a_motion_jpeg_recording_stays_a_video_and_raw_files_are_no_pictures(tmp_path):
    """A raw motion-JPEG recording (rpicam-vid --codec mjpeg) starts as a JPEG does: judged
    by its content alone it was replayed as one still picture."""
    ok, jpeg = cv2.imencode(".jpg", flat_image(90))
    (tmp_path / "rec.mjpeg").write_bytes(jpeg.tobytes() * 5)
    assert classify_spec(str(tmp_path / "rec.mjpeg")) == "video"
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "DSC_0001.NEF").write_bytes(_tiff_header(6000, 4000))
    (tmp_path / "happy" / "rec.mjpeg").write_bytes(jpeg.tobytes() * 5)
    assert list_pictures(tmp_path / "happy").pictures == []
