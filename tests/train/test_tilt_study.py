"""scripts/tilt_study.py and tilt_start_study.py: their pieces do what the studies' readings need.

The studies (reports/README.md, ``tilt/``) roll a door frame, measure the roll the way the
door does and compare levelling candidates; their figures mean something only if a rolled
frame's roll comes back with the door's sign, the study's levelled crop is the product's,
and the third rule's faces are not the confirmation's.
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tilt(study_script):
    return study_script("tilt_study.py")


@pytest.fixture(scope="module")
def start(study_script):
    return study_script("tilt_start_study.py")


def _bar_frame():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[58:62, 40:120] = 255
    return frame


def test_rolling_the_frame_turns_it_about_the_given_centre(tilt):
    frame = _bar_frame()
    assert tilt.rolled(frame, 0, (80.0, 60.0)) is frame
    upright = tilt.rolled(frame, 90, (80.0, 60.0))
    assert upright[:, 78:82].mean() > 100 and upright[58:62, :60].mean() < 40


def test_the_study_s_levelled_crop_is_the_product_s(tilt):
    from happyhouse.daemon.preprocess import Preprocess, prepare_frame

    frame, box = _bar_frame(), (40, 20, 80, 80)
    spec = Preprocess(crop="face", margin=0.0, size=64)
    for angle in (-30.0, 12.5, 45.0):
        assert np.array_equal(tilt.levelled_crop(frame, box, angle, spec),
                              prepare_frame(frame, box, spec, turn=angle))


def test_roll_degrees_has_the_door_s_sign(tilt):
    from happyhouse.daemon.geometry import EYE_OUTER, roll_degrees

    points = np.zeros((468, 3))
    points[EYE_OUTER[0], :2], points[EYE_OUTER[1], :2] = (10.0, 20.0), (30.0, 40.0)
    assert tilt.roll_degrees(points) == pytest.approx(45.0) == roll_degrees(points)


def test_drawn_keeps_names_labels_and_crops_together(tilt):
    names = [f"f{i}" for i in range(10)]
    labels, crops = np.arange(10) % 2, np.arange(10)[:, None]
    assert tilt.drawn(names, labels, crops, None)[0] is names
    n, y, c = tilt.drawn(names, labels, crops, 4)
    assert len(n) == 4 and all(int(name[1:]) == int(v) for name, v in zip(n, c[:, 0]))
    assert list(y) == [int(name[1:]) % 2 for name in n]


def test_the_third_rule_s_candidates_are_the_shipped_step(start):
    from happyhouse.daemon.bundle import load_bundle

    spec = load_bundle(None).geometry  # the GeometrySpec model.json names
    by, rounds, detector = start.CANDIDATES["H25"]
    assert (spec.level_by, spec.level_rounds, spec.level_detector_beyond, spec.level_beyond) == \
        (by, rounds, detector, 10.0)
    assert start.CANDIDATES["I10"][0] == "eye-line" and start.FRESH_ANGLES != start.CONFIRM_ANGLES
