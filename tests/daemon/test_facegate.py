"""The face gate on real door frames and on scenes with nobody in them.

Figures (scripts/facegate_report.py, 640x480): the tuned gate finds a face in
109/150 Happy House frames (72.7%; the goal of 97% is NOT met by Haar cascades:
the misses are heads turned sideways and faces in near-black shadow) and in
0 of 84 person-free scenes. The floors below guard those figures.
"""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import DataError, FaceGateError
from happyhouse.daemon.facegate import FaceGate, HaarPass, find_cascade

ROOT = Path(__file__).resolve().parents[2]


def _report_module():
    spec = importlib.util.spec_from_file_location("facegate_report",
                                                  ROOT / "scripts" / "facegate_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report():
    pytest.importorskip("skimage")
    return _report_module()


@pytest.fixture(scope="module")
def gate():
    return FaceGate.from_config(load_config(None))


@pytest.fixture(scope="module")
def hh_frames(happy_house_h5, report):
    frames, _ = report.happy_house_frames(happy_house_h5)
    return frames


def test_gate_finds_faces_in_happy_house_frames(gate, hh_frames):
    boxes = [gate.find(f) for f in hh_frames]
    found = sum(b is not None for b in boxes)
    assert found >= 105, f"face found in only {found}/150 Happy House frames (was 109)"
    for box in boxes:
        if box is not None:  # a real face box: inside the frame, plausible size
            x, y, w, h = box
            assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480
            assert 80 <= w <= 400 and 80 <= h <= 400


def test_gate_finds_no_face_in_empty_scenes(gate, report):
    scenes = report.empty_scenes()
    false = {name: gate.find(img) for name, img in scenes.items()}
    false = {k: v for k, v in false.items() if v is not None}
    assert len(scenes) == 84 and false == {}


def test_stock_cascade_at_default_settings_does_worse(hh_frames):
    """Why the gate is tuned: OpenCV's stock call finds far fewer faces."""
    cascade = cv2.CascadeClassifier(str(find_cascade("haarcascade_frontalface_default.xml")))
    stock = sum(len(cascade.detectMultiScale(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY))) > 0
                for f in hh_frames[::3])
    ours = FaceGate.from_config(load_config(None))
    tuned = sum(ours.find(f) is not None for f in hh_frames[::3])
    assert tuned > stock + 5


class FixedCascade:
    """Stands in for a cascade: returns fixed boxes (in small-image pixels)."""

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, []

    def detectMultiScale(self, image, scaleFactor, minNeighbors, minSize):
        self.calls.append((image.shape, minSize))
        return np.array(self.boxes, dtype=np.int32).reshape(-1, 4)


def test_largest_face_wins_and_box_is_in_full_frame_pixels():
    first = FixedCascade([])
    second = FixedCascade([(10, 10, 20, 20), (60, 30, 40, 44), (100, 5, 30, 30)])
    gate = FaceGate([(first, HaarPass("a", 3)), (second, HaarPass("b", 3))], detect_width=160,
                    min_face=48)
    box = gate.find(np.zeros((480, 640, 3), np.uint8))
    assert box == (240, 120, 160, 176)  # (60, 30, 40, 44) x 4
    assert gate.last_pass == 1
    assert first.calls[0] == ((120, 160), (12, 12))  # min_face 48 full-frame -> 12 at 160 wide


def test_first_pass_with_a_face_ends_the_search():
    first, second = FixedCascade([(0, 0, 30, 30)]), FixedCascade([(0, 0, 90, 90)])
    gate = FaceGate([(first, HaarPass("a", 3)), (second, HaarPass("b", 3))], detect_width=160)
    assert gate.find(np.zeros((480, 640, 3), np.uint8)) == (0, 0, 120, 120)
    assert second.calls == []


def test_mirrored_pass_box_is_unmirrored():
    cascade = FixedCascade([(10, 20, 30, 30)])
    gate = FaceGate([(cascade, HaarPass("a", 3, mirror=True))], detect_width=160)
    assert gate.find(np.zeros((480, 640, 3), np.uint8)) == ((160 - 10 - 30) * 4, 80, 120, 120)


def test_min_face_rejects_small_faces(hh_frames):
    cfg = load_config(None, {"face.min_face": 400})
    assert FaceGate.from_config(cfg).find(hh_frames[0]) is None


def test_no_face_on_flat_and_noise_frames(gate):
    rng = np.random.default_rng(0)
    assert gate.find(np.zeros((480, 640, 3), np.uint8)) is None
    assert gate.find(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) is None


@pytest.mark.parametrize("bad", [np.zeros((480, 640), np.uint8), np.zeros((480, 640, 3), np.float32),
                                 np.zeros((480, 640, 4), np.uint8), "not an image"])
def test_bad_frames_raise_data_error(gate, bad):
    with pytest.raises(DataError):
        gate.find(bad)


def test_missing_cascade_is_a_clear_error(tmp_path):
    with pytest.raises(FaceGateError, match="does not exist") as info:
        FaceGate.from_config(load_config(None, {"face.cascade": str(tmp_path / "nope.xml")}))
    assert "\n" not in str(info.value)
    with pytest.raises(FaceGateError, match="not found"):
        find_cascade("haarcascade_nothing.xml")


def test_corrupt_cascade_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.xml"
    bad.write_text("<opencv_storage>nonsense</opencv_storage>")
    with pytest.raises(FaceGateError, match="cannot be loaded"):
        FaceGate.haar(cascade=str(bad))


def test_missing_yunet_model_is_a_clear_error(tmp_path):
    cfg = load_config(None, {"face.detector": "yunet", "face.yunet_model": str(tmp_path / "y.onnx")})
    with pytest.raises(FaceGateError, match="YuNet model .* does not exist"):
        FaceGate.from_config(cfg)
