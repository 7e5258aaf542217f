"""Levelling a rolled head's crop by the face mesh's eye line (geometry.level, format 4).

A head rolled 45 degrees opened the door for about 30% of non-smiling faces a
frame before (reports/tilt/): the gate's box is upright, the classifier learnt
from upright faces. These tests run the real mesh on real GENKI-4K faces.
"""

import json

import cv2
import numpy as np
import pytest

from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.facegate import FaceGate
from happyhouse.daemon.geometry import GeometrySpec, beyond, roll_degrees
from happyhouse.daemon.pipeline import Pipeline
from happyhouse.daemon.preprocess import Preprocess, prepare_frame
from fakes import geometry_bundle, reseal_bundle


LEVEL = {"by": "eye-line", "beyond_degrees": 10.0, "rounds": 2, "settled_degrees": 5.0}
CONTRACT = Preprocess(crop="face", margin=0.0, size=64)




@pytest.fixture(scope="module")
def gate():
    return FaceGate.from_config(load_config(None, {"latch.gpio": "mock"}))


def door_frame(face_rgb, angle):
    """A face 160 px wide in a grey 640x480 door frame, rolled ``angle`` degrees
    (counter-clockwise as shown) about its centre."""
    face = cv2.resize(np.ascontiguousarray(face_rgb[..., ::-1]), (160, 160))
    frame = cv2.copyMakeBorder(face, 160, 160, 240, 240, cv2.BORDER_CONSTANT, value=(110,) * 3)
    turn = cv2.getRotationMatrix2D((320.0, 240.0), angle, 1.0)
    return cv2.warpAffine(frame, turn, (640, 480), borderMode=cv2.BORDER_REPLICATE)


def test_beyond_keeps_only_the_roll_past_the_band():
    assert beyond(4.0, 10.0) == 0.0 and beyond(-10.0, 10.0) == 0.0
    assert beyond(25.0, 10.0) == pytest.approx(15.0) and beyond(-40.0, 10.0) == pytest.approx(-30.0)


def test_a_turn_rotates_the_crop_about_its_centre_and_a_bad_angle_is_refused():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[58:62, 40:120] = 255  # a level bar across the box
    box = (40, 20, 80, 80)
    level = prepare_frame(frame, box, CONTRACT)
    upright = prepare_frame(frame, box, CONTRACT, turn=90.0)
    assert level[30:34].mean() > 100 and level[:, 30:34].mean() < 60  # bar across
    assert upright[:, 30:34].mean() > 100 and upright[30:34].mean() < 60  # bar down
    assert np.array_equal(prepare_frame(frame, box, CONTRACT, turn=0.0), level)
    with pytest.raises(DataError, match="finite angle"):
        prepare_frame(frame, box, CONTRACT, turn=float("nan"))


def test_a_rolled_real_face_is_turned_back_to_the_band_deterministically(faces, mesh, gate,
                                                                        tmp_path):
    bundle = geometry_bundle(tmp_path, faces, mesh, level=LEVEL)
    geometry = bundle.geometry_stage()
    settled = 0
    for face in faces.images:
        for angle in (30.0, -30.0):
            frame = door_frame(face, angle)
            box = gate.find(frame)
            if box is None:
                continue
            crop, points, turn = geometry.level(frame, box, CONTRACT)
            # rolled 30 counter-clockwise, the face is turned back clockwise to the band
            settled += abs(turn - np.sign(-angle) * 20.0) < 6.0 and \
                abs(abs(roll_degrees(points)) - 10.0) < 6.0
            again = geometry.level(frame, box, CONTRACT)
            assert turn == again[2] and np.array_equal(crop, again[0])
            assert np.array_equal(points, mesh.points(crop))
    assert settled >= 8, f"only {settled} of 12 rolled faces were turned back to the band"


def test_a_face_within_the_band_is_cropped_exactly_as_before(faces, mesh, gate, tmp_path):
    geometry = geometry_bundle(tmp_path, faces, mesh, level=LEVEL).geometry_stage()
    within = 0
    for face in faces.images:
        frame = door_frame(face, 0.0)
        box = gate.find(frame)
        if box is None:
            continue
        boxed = prepare_frame(frame, box, CONTRACT)
        crop, points, turn = geometry.level(frame, box, CONTRACT)
        if abs(roll_degrees(mesh.points(boxed))) <= 10.0:  # as the dataset shot it
            within += 1
            assert turn == 0.0 and np.array_equal(crop, boxed)
        else:
            assert turn != 0.0
    assert within >= 8


def test_the_pipeline_scores_the_levelled_crop_and_times_it(faces, mesh, tmp_path):
    bundle = geometry_bundle(tmp_path, faces, mesh, level=LEVEL)
    assert bundle.meta["format_version"] == 4 and bundle.geometry.level_beyond == 10.0
    pipe = Pipeline.from_config(load_config(None, {"model.bundle": str(bundle.path)}))
    assert "levelled by the eye line beyond 10 degrees" in pipe.stages
    frame = door_frame(faces.images[0], 35.0)
    obs = pipe.observe_image(frame)
    crop, points, turn = pipe.geometry.level(frame, obs.face, CONTRACT)
    assert turn != 0.0 and "level" in obs.stages_ms
    from happyhouse.daemon.preprocess import normalize_light
    assert obs.parts["classifier"] == pytest.approx(
        pipe.classifier.score(normalize_light(crop, pipe.preprocess)))
    assert obs.parts["geometry"] == pytest.approx(pipe.geometry.score(crop))


def test_a_bundle_without_levelling_scores_the_boxed_crop_as_before(faces, mesh, tmp_path):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    assert bundle.meta["format_version"] == 2 and bundle.geometry.level_beyond is None
    pipe = Pipeline.from_config(load_config(None, {"model.bundle": str(bundle.path)}))
    frame = door_frame(faces.images[0], 35.0)
    obs = pipe.observe_image(frame)
    assert "level" not in obs.stages_ms
    assert obs.parts["geometry"] == pytest.approx(
        pipe.geometry.score(prepare_frame(frame, obs.face, CONTRACT)))


def test_a_levelled_bundle_that_claims_format_3_is_refused_in_one_line(faces, mesh, tmp_path):
    bundle = geometry_bundle(tmp_path, faces, mesh, level=LEVEL)
    meta = json.loads((bundle.path / "model.json").read_text())
    meta["format_version"] = 3  # a version-3 daemon would serve it unlevelled
    (bundle.path / "model.json").write_text(json.dumps(meta))
    reseal_bundle(bundle.path)
    with pytest.raises(ModelError, match="needs format_version 4") as err:
        load_bundle(bundle.path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("level, words", [
    ({**LEVEL, "by": "nose-line"}, "newer happyhouse"),
    ({**LEVEL, "by": None}, "newer happyhouse"),
    ({**LEVEL, "beyond_degrees": 90}, "beyond_degrees must be a number within 0..45"),
    ({**LEVEL, "beyond_degrees": "10"}, "beyond_degrees must be"),
    ({**LEVEL, "rounds": 1.5}, "rounds must be a number within 0..4 (whole)"),
    ({**LEVEL, "settled_degrees": None}, "settled_degrees must be"),
    ("yes", "level must be an object"),
], ids=["unknown-way", "no-way", "too-far", "text", "half-round", "missing", "not-object"])
def test_a_malformed_level_is_refused_by_name(level, words):
    shipped = load_bundle(None)
    section = {**shipped.geometry.to_dict(), "level": level}
    with pytest.raises(ModelError, match=words.replace("(", r"\(").replace(")", r"\)")):
        GeometrySpec.from_dict(section, "model.json")


def test_the_level_section_round_trips():
    spec = GeometrySpec.from_dict({**load_bundle(None).geometry.to_dict(), "level": LEVEL}, "x")
    assert (spec.level_beyond, spec.level_rounds, spec.level_settled) == (10.0, 2, 5.0)
    assert GeometrySpec.from_dict(spec.to_dict(), "x") == spec


def test_blazeface_hands_on_the_eye_line_of_the_face_it_returns(faces, gate):
    """The detector sees the whole rolled face: its eye points give the roll before any crop
    (the mesh on the upright box measured 6-19 degrees of a 30-45 degree roll)."""
    close = 0
    for face in faces.images:
        for angle in (0.0, 30.0, -30.0):
            box = gate.find(door_frame(face, angle))
            if box is None:
                assert gate.eye_roll is None  # never an earlier face's
                continue
            close += abs(gate.eye_roll - (-angle)) < 12.0
    assert close >= 24, f"only {close} eye lines within 12 degrees of the roll"
    gate.find(np.full((480, 640, 3), 110, np.uint8))
    assert gate.eye_roll is None


def test_a_detector_without_eyes_says_none():
    haar = FaceGate.from_config(load_config(None, {"latch.gpio": "mock", "face.detector": "haar"}))
    haar.find(np.full((480, 640, 3), 110, np.uint8))
    assert haar.eye_roll is None


class _YuNetNet:
    """cv2.FaceDetectorYN's two calls, answering fixed rows (x, y, w, h, right eye, left eye,
    nose, mouth corners, score) in the downscaled frame's pixels."""

    def __init__(self, rows):
        self.rows = None if rows is None else np.array(rows, np.float32)

    def setInputSize(self, size):
        self.size = size

    def detect(self, image):
        return 1, self.rows


def _yunet_row(x, y, side, roll, swap=False):
    """A face box and its eyes on a line rolled ``roll`` degrees (y down), the right eye
    (the subject's, at the picture's left) first unless ``swap``."""
    cx, cy, half = x + side / 2, y + side * 0.4, side * 0.2
    dx, dy = half * np.cos(np.radians(roll)), half * np.sin(np.radians(roll))
    right, left = [cx - dx, cy - dy], [cx + dx, cy + dy]
    eyes = left + right if swap else right + left
    return [x, y, side, side] + eyes + [cx, cy + side * 0.2] * 3 + [0.9]


@pytest.mark.parametrize("swap", [False, True])
def test_yunet_hands_on_the_eye_line_of_the_face_it_returns(swap):
    """YuNet finds the eyes too; it handed on none, so with YuNet a rolled head's levelling
    started from the mesh on the upright box, which sees only part of a large roll."""
    from happyhouse.daemon.detectors.yunet import YuNet

    rows = [_yunet_row(20, 20, 60, -8.0, swap), _yunet_row(150, 60, 100, 35.0, swap)]
    yunet = YuNet(_YuNetNet(rows), detect_width=320, min_face=48)
    frame = np.full((480, 640, 3), 110, np.uint8)
    box = yunet.find(frame)
    assert box == (300, 120, 200, 200)  # the larger face, in full-frame pixels
    assert yunet.eye_roll == pytest.approx(35.0, abs=0.01)
    yunet.net = _YuNetNet(None)
    assert yunet.find(frame) is None and yunet.eye_roll is None  # never an earlier face's
    yunet.net = _YuNetNet([_yunet_row(0, 0, 10, 35.0)])  # too small to be the door's face
    assert yunet.find(frame) is None and yunet.eye_roll is None


def test_weighted_nms_carries_the_keypoints_of_each_cluster():
    from happyhouse.daemon.blazeface import weighted_nms

    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.7, 0.7, 0.9, 0.9]])
    scores = np.array([0.9, 0.3, 0.8])
    eyes = np.array([[1.0, 1.0, 3.0, 1.0], [2.0, 2.0, 4.0, 2.0], [5.0, 5.0, 6.0, 5.0]])
    out = weighted_nms(boxes, scores, 0.2, carry=eyes)
    assert len(out) == 2 and np.allclose(out[0][2], (0.9 * eyes[0] + 0.3 * eyes[1]) / 1.2)
    assert np.allclose(out[1][2], eyes[2])
    assert [len(d) for d in weighted_nms(boxes, scores, 0.2)] == [2, 2]  # as before without


def test_the_detector_s_roll_starts_the_levelling_only_where_the_bundle_says(faces, mesh, tmp_path,
                                                                             monkeypatch):
    from happyhouse.daemon import geometry as geometry_mod

    frame = door_frame(faces.images[0], 0.0)
    box = FaceGate.from_config(load_config(None, {"latch.gpio": "mock"})).find(frame)
    by_mesh = geometry_bundle(tmp_path, faces, mesh, level=LEVEL).geometry_stage()
    (tmp_path / "d").mkdir()
    by_detector = geometry_bundle(tmp_path / "d", faces, mesh,
                                  level={**LEVEL, "by": "detector-then-eye-line"}).geometry_stage()
    assert by_mesh.level(frame, box, CONTRACT, 40.0)[2] == by_mesh.level(frame, box, CONTRACT)[2]
    monkeypatch.setattr(geometry_mod, "roll_degrees", lambda points: 0.0)  # the mesh: level
    assert by_detector.level(frame, box, CONTRACT, 40.0)[2] == pytest.approx(30.0)
    assert by_detector.level(frame, box, CONTRACT, None)[2] == 0.0  # no eyes: the mesh's
    assert by_detector.level(frame, box, CONTRACT, 4.0)[2] == 0.0  # within the band
    (tmp_path / "h").mkdir()
    past_25 = geometry_bundle(tmp_path / "h", faces, mesh, level={
        **LEVEL, "by": "detector-then-eye-line", "detector_beyond_degrees": 25.0}).geometry_stage()
    assert past_25.level(frame, box, CONTRACT, 40.0)[2] == pytest.approx(30.0)
    # a detector's 20 degrees is not trusted over the mesh's first look (the shipped rule)
    assert past_25.level(frame, box, CONTRACT, 20.0)[2] == 0.0
    assert past_25.spec.to_dict()["level"]["detector_beyond_degrees"] == 25.0


def test_the_shipped_bundle_levels_a_head_rolled_45_degrees(faces, gate):
    """End to end through the shipped bundle: rolled 45 degrees either way, the face mesh's
    crop comes out near level (I10 alone left a quarter of the faces rolled -45 unturned)."""
    pipe = Pipeline.from_config(load_config(None, {"latch.gpio": "mock"}))
    assert pipe.geometry.spec.level_by == "detector-then-eye-line"
    assert "from the detector's eye points past 25 degrees" in pipe.stages  # --check, the log
    level = 0
    for face in faces.images:
        for angle in (45.0, -45.0):
            frame = door_frame(face, angle)
            box = pipe.gate.find(frame)
            if box is None:
                continue
            crop, points, turn = pipe.geometry.level(frame, box, CONTRACT, pipe.gate.eye_roll)
            level += abs(roll_degrees(points)) <= 16.0 and abs(turn) >= 25.0
    assert level >= 12, f"only {level} of the rolled faces were turned back near level"


def test_observe_starts_from_the_gate_s_eye_line(faces, monkeypatch):
    """The service path hands the detector's roll of this very face to the levelling (a copy
    passing None instead passed every test before)."""
    pipe = Pipeline.from_config(load_config(None, {"latch.gpio": "mock"}))
    handed = []
    real = pipe.geometry.level
    monkeypatch.setattr(pipe.geometry, "level",
                        lambda frame, box, contract, first=None: handed.append(first)
                        or real(frame, box, contract, first))
    frame = door_frame(faces.images[1], 45.0)
    obs = pipe.observe_image(frame)
    assert obs.face is not None and handed == [pipe.gate.eye_roll] and abs(handed[0]) > 25.0
    pipe.observe_crop(np.ascontiguousarray(faces.images[1][..., ::-1]))
    assert handed[-1] is None  # a dataset crop has no detector: never the last frame's roll


def test_a_level_step_on_a_whole_frame_crop_is_refused(faces, mesh, tmp_path):
    """crop 'frame' cannot be turned: such a bundle loaded and served unturned crops."""
    bundle = geometry_bundle(tmp_path, faces, mesh, level=LEVEL)
    meta = json.loads((bundle.path / "model.json").read_text())
    meta["preprocess"]["crop"] = "frame"
    (bundle.path / "model.json").write_text(json.dumps(meta))
    reseal_bundle(bundle.path)
    with pytest.raises(ModelError, match="needs preprocess crop 'face'"):
        load_bundle(bundle.path)
    with pytest.raises(DataError, match="'face' mode only"):
        prepare_frame(np.zeros((64, 64, 3), np.uint8), None, Preprocess(crop="frame"), turn=5.0)


def test_a_roll_is_wrapped_before_the_band():
    assert beyond(365.0, 10.0) == 0.0 and beyond(-350.0, 10.0) == 0.0
    assert beyond(190.0, 10.0) == pytest.approx(-160.0)
