import shutil

import numpy as np
import pytest

from happyhouse.daemon.datasets import load_dataset, load_many
from happyhouse.daemon.errors import DataError


def test_happy_house_hdf5_loads_with_its_labels(happy_house_h5):
    ds = load_dataset(happy_house_h5)
    assert ds.images.shape == (150, 64, 64, 3) and ds.images.dtype == np.uint8
    assert int(ds.labels.sum()) == 84 and len(ds) - int(ds.labels.sum()) == 66
    assert ds.ids[0].endswith("test_happy.h5#0")


def test_class_folders_load_as_rgb_with_a_limit(genki_root):
    ds = load_dataset(genki_root, limit=5)
    assert ds.images.shape == (10, 64, 64, 3)
    assert ds.labels.tolist() == [0] * 5 + [1] * 5
    assert all("/not_happy/" in i for i in ds.ids[:5]) and all("/happy/" in i for i in ds.ids[5:])


def test_sources_combine(genki_root, smile_root):
    ds = load_many([genki_root, smile_root], limit=3)
    assert len(ds) == 12 and len(ds.sources) == 2


def test_corrupt_images_are_skipped_and_counted(tmp_path, genki_root):
    for name in ("happy", "not_happy"):
        (tmp_path / name).mkdir()
        src = sorted((genki_root / name).glob("*.jpg"))[0]
        (tmp_path / name / "good.jpg").write_bytes(src.read_bytes())
    (tmp_path / "happy" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "happy" / "empty.png").write_bytes(b"")
    ds = load_dataset(tmp_path)
    assert len(ds) == 2 and len(ds.skipped) == 2
    assert {s[0].rsplit("/", 1)[1] for s in ds.skipped} == {"broken.jpg", "empty.png"}


def test_wrong_layout_and_empty_class_name_the_path(tmp_path):
    with pytest.raises(DataError, match="happy"):
        load_dataset(tmp_path)
    (tmp_path / "happy").mkdir()
    (tmp_path / "not_happy").mkdir()
    with pytest.raises(DataError, match="no images"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_hdf5_with_wrong_keys_is_rejected(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(DataError, match="test_set_x"):
        load_dataset(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="junk.h5"):
        load_dataset(tmp_path / "junk.h5")


def test_data_root_is_absolute_even_when_given_relative(tmp_path, monkeypatch):
    from happyhouse.daemon.datasets import data_root

    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAPPYHOUSE_DATA", "data")
    assert data_root() == tmp_path.resolve() / "data"
    monkeypatch.setenv("HAPPYHOUSE_DATA", "missing")
    assert data_root() is None


def test_a_class_whose_files_are_all_unreadable_is_an_error_not_a_one_class_dataset(tmp_path, genki_root):
    # before: the other class's images loaded alone, and eval judged a one-class folder
    for name in ("happy", "not_happy"):
        (tmp_path / name).mkdir()
    (tmp_path / "happy" / "good.jpg").write_bytes(sorted((genki_root / "happy").glob("*.jpg"))[0].read_bytes())
    (tmp_path / "not_happy" / "cut.jpg").write_bytes(b"\xff\xd8 cut short")
    (tmp_path / "not_happy" / "zero.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"not_happy: none of its 2 image files can be read \(first: cut.jpg"):
        load_dataset(tmp_path)


def test_unreadable_files_are_named_in_one_line():
    from happyhouse.daemon.datasets import unreadable_line

    assert unreadable_line([]) == ""
    skipped = [(f"/x/house/happy/{i}.jpg", "not a decodable image") for i in range(5)]
    line = unreadable_line(skipped)
    assert line.startswith("left out 5 file(s) that could not be read: happy/0.jpg (not a decodable image)")
    assert line.endswith("and 2 more") and "\n" not in line


def test_frames_of_several_sizes_scale_to_the_camera_as_the_door_path_does(tmp_path):
    import cv2

    from happyhouse.daemon.preprocess import to_door_frame

    rng = np.random.default_rng(0)
    frames = {"happy/a.png": rng.integers(0, 256, (48, 64, 3), np.uint8),
              "not_happy/b.png": rng.integers(0, 256, (480, 640, 3), np.uint8)}
    for name, rgb in frames.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name), rgb[..., ::-1])
    with pytest.raises(DataError, match="differ in size"):
        load_dataset(tmp_path, size=None)
    ds = load_dataset(tmp_path, size=None, frame_size=(640, 480))
    assert ds.images.shape == (2, 480, 640, 3)
    # the same pixels the door path makes of the small frame (to_door_frame gives BGR)
    assert np.array_equal(ds.images[ds.labels.tolist().index(1)],
                          to_door_frame(frames["happy/a.png"], 640, 480)[..., ::-1])
    assert np.array_equal(ds.images[ds.labels.tolist().index(0)], frames["not_happy/b.png"])


def _noise_classes(root, per_class=2):
    """A class-folder dataset of random 64x64 'faces', two per class."""
    import cv2

    for label in ("happy", "not_happy"):
        (root / label).mkdir()
        for i in range(per_class):
            img = np.random.default_rng(i).integers(0, 256, (64, 64, 3), np.uint8)
            cv2.imwrite(str(root / label / f"{i}.png"), img)


@pytest.mark.parametrize("make, said", [
    (lambda p: p.write_bytes(b""), "is a file, not a folder"),
    (lambda p: p.symlink_to(p.parent / "gone"), "is a link to nothing"),
    (lambda p: None, "is missing"),
])
def test_a_class_folder_that_is_not_a_folder_is_named_for_what_it_is(tmp_path, make, said):
    """A file named happy (an unpacked archive's stray, a `touch`) was called missing, and a
    technician looking at `ls` saw it right there."""
    _noise_classes(tmp_path)
    shutil.rmtree(tmp_path / "happy")
    make(tmp_path / "happy")
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path)
    assert f"{tmp_path / 'happy'} {said} (expected folders" in str(info.value)


def _png_whose_header_lies(width=40000, height=40000) -> bytes:
    """A 69-byte PNG whose header claims ``width`` x ``height`` pixels (corrupt or hostile)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [64, None])
def test_an_image_whose_header_claims_too_many_pixels_is_left_out_and_named(tmp_path, size):
    # before: OpenCV's CV_IO_MAX_IMAGE_PIXELS assertion (cv2.error) ended every loader
    _noise_classes(tmp_path)
    (tmp_path / "happy" / "lies.png").write_bytes(_png_whose_header_lies())
    ds = load_dataset(tmp_path, size=size)
    assert len(ds) == 4 and [s[0].rsplit("/", 1)[1] for s in ds.skipped] == ["lies.png"]
    assert ds.skipped[0][1].startswith("40000x40000 pixels, larger than 4096x4096")


def _course_h5(path, **arrays):
    """A course HDF5 at ``path``; an array given as "GROUP" becomes an HDF5 group there."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if isinstance(value, str):
                handle.create_group(key)
            else:
                handle[key] = value
    return path


FRAMES = np.zeros((4, 8, 8, 3), np.uint8)
LABELS = np.array([1, 0, 1, 0])


@pytest.mark.parametrize("arrays, match", [
    ({"test_set_x": FRAMES[:0], "test_set_y": LABELS[:0]}, "test_set_x holds no frames"),
    ({"test_set_x": "GROUP", "test_set_y": LABELS}, "test_set_x is a group"),
    ({"test_set_x": FRAMES, "test_set_y": "GROUP"}, "test_set_y is a group"),
    ({"train_set_x": np.uint8(3), "train_set_y": LABELS}, "train_set_x is a single value"),
])
def test_an_empty_or_malformed_course_hdf5_is_one_clear_error(tmp_path, arrays, match):
    # before: an empty file loaded as 0 frames (eval divided by them, training stacked an
    # empty list); a group or a scalar gave h5py's TypeError/ValueError
    path = _course_h5(tmp_path / "course.h5", **arrays)
    with pytest.raises(DataError, match=f"course.h5: {match}"):
        load_dataset(path)


def test_training_and_conversion_refuse_an_empty_course_hdf5_by_name(tmp_path):
    # training and conversion read their data through load_training_data
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train.data import load_training_data

    path = _course_h5(tmp_path / "empty.h5", train_set_x=FRAMES[:0], train_set_y=LABELS[:0])
    with pytest.raises(DataError, match="empty.h5: train_set_x holds no frames"):
        load_training_data([str(path)], Preprocess(crop="frame"))


def _two_classes(tmp_path):
    import cv2

    for name in ("happy", "not_happy"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), np.full((64, 64, 3), 90, np.uint8))
    return tmp_path


def test_a_fifo_named_like_a_picture_is_left_out_not_waited_on(tmp_path):
    """mkfifo happy/pipe.png: every loader (eval, adapt, convert, train) hung forever."""
    import os
    import threading

    root = _two_classes(tmp_path)
    os.mkfifo(root / "happy" / "pipe.png")
    loaded = []
    reader = threading.Thread(target=lambda: loaded.append(load_dataset(root)), daemon=True)
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():  # unblock the stuck reader so the test run can end
        with open(root / "happy" / "pipe.png", "wb"):
            pass
        pytest.fail("the loader waited on the FIFO")
    ds, = loaded
    assert len(ds) == 2 and ds.skipped == [(str(root / "happy" / "pipe.png"), "not a regular file")]


def test_a_class_folder_that_cannot_be_listed_is_one_data_error(tmp_path, monkeypatch):
    """A 0700 --collect folder copied with rsync -a: a PermissionError traceback in every tool."""
    from pathlib import Path

    root = _two_classes(tmp_path)
    real = Path.iterdir

    def iterdir(self):
        if self.name == "happy":
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(DataError, match=r"happy cannot be listed \(Permission denied\): make it "
                                        r"readable"):
        load_dataset(root)


def test_hidden_files_in_a_class_folder_are_not_frames(tmp_path):
    """A hidden not_happy/.smile.png (which `ls` does not show) was counted as a frame."""
    import cv2

    from happyhouse.daemon.datasets import load_class_folders

    for name in ("happy", "not_happy"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), np.full((64, 64, 3), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "not_happy" / ".smile.png"), np.full((64, 64, 3), 200, np.uint8))
    (tmp_path / "happy" / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    data = load_class_folders(tmp_path)
    assert len(data.images) == 2 and not data.skipped


def test_a_frame_of_another_shape_is_said_to_be_stretched(tmp_path, caplog):
    """A portrait phone photo among a house's 640x480 frames was squashed to 640x480 without
    a word (adapt then counted it as a missed smile)."""
    import logging

    import cv2

    from happyhouse.daemon.datasets import load_class_folders

    for name in ("happy", "not_happy"):
        (tmp_path / name).mkdir()
        cv2.imwrite(str(tmp_path / name / "a.png"), np.full((480, 640, 3), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "happy" / "phone.png"), np.full((1280, 720, 3), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "not_happy" / "wide.png"), np.full((720, 1280, 3), 100, np.uint8))
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.datasets"):
        data = load_class_folders(tmp_path, size=None, frame_size=(640, 480))
    assert data.images.shape == (4, 480, 640, 3)
    said = [r.getMessage() for r in caplog.records if "stretched" in r.getMessage()]
    assert len(said) == 1 and "2 frame(s) not of the camera's shape (640x480)" in said[0], said
