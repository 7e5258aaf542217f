"""scripts/smile_measures_study.py (study M): the measures and the two rules it decides by do
what reports/README.md ("loso/", study M) says.

The measures are taken on the aligned points, so where the face sits in the crop, how large it
is and how the head is tilted must not move them. A candidate goes on only for a clear gain in
direction A that costs direction B nothing, and is adopted only if it also keeps the shipped
model's in-domain floor.
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("smile_measures_study.py")


@pytest.fixture(scope="module")
def face_points(genki_root):
    """The face mesh's points of a real GENKI-4K smile, as the door's geometry stage gets them."""
    import cv2

    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh

    path = sorted((genki_root / "happy").iterdir())[0]
    crop = cv2.cvtColor(cv2.resize(cv2.imread(str(path)), (64, 64)), cv2.COLOR_BGR2RGB)
    return FaceMesh(ASSET_DIR / MESH_FILE).points(crop)


def test_the_measures_do_not_move_with_the_faces_place_size_or_tilt(study, face_points):
    m = study.measures(face_points)
    assert m.shape == (len(study.MEASURES),) and np.all(np.isfinite(m))
    angle = np.deg2rad(17.0)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = face_points.copy()
    moved[:, :2] = 2.7 * face_points[:, :2] @ turn.T + np.array([31.0, -12.0])
    np.testing.assert_allclose(study.measures(moved), m, atol=1e-6)  # float32 points


def test_a_wider_mouth_with_raised_corners_measures_as_one(study, face_points):
    """Pull the mouth corners (61, 291) out and up: width and corner lift grow, the eyes stay."""
    m = dict(zip(study.MEASURES, study.measures(face_points)))
    span = face_points[263, :2] - face_points[33, :2]
    smile = face_points.copy()
    smile[61, :2] += np.array([-0.05, -0.05]) * np.hypot(*span)
    smile[291, :2] += np.array([0.05, -0.05]) * np.hypot(*span)
    s = dict(zip(study.MEASURES, study.measures(smile)))
    assert s["mouth_width"] > m["mouth_width"] + 0.05
    assert s["corner_lift_outer"] > m["corner_lift_outer"] + 0.02
    assert s["eye_aperture"] == pytest.approx(m["eye_aperture"])


def _directions(study, a, b):
    """Held-out mean AUCs: the shipped fusion at 0.93, the candidates at 0.93 + the gain given."""
    out = {}
    for label, gains in (("A", a), ("B", b)):
        rows = {c: {"mean_auc": 0.93 + gains.get(c, 0.0)} for c in study.CANDIDATES}
        out[label] = {"candidates": rows}
    return out


@pytest.mark.parametrize("a, b, chosen", [
    ({"C2 0.6:0.2:0.2": 0.006}, {"C2 0.6:0.2:0.2": 0.001}, "C2 0.6:0.2:0.2"),
    ({"C1 0.7:0:0.3": 0.006}, {"C1 0.7:0:0.3": -0.001}, None),       # costs B
    ({"C1 0.7:0:0.3": 0.004}, {"C1 0.7:0:0.3": 0.010}, None),        # too little in A
    ({"C1 0.7:0:0.3": 0.006, "C2 0.6:0.2:0.2": 0.008},
     {"C1 0.7:0:0.3": 0.004, "C2 0.6:0.2:0.2": 0.0}, "C1 0.7:0:0.3"),  # the best mean gain
])
def test_a_candidate_goes_on_only_for_a_gain_in_a_that_costs_b_nothing(study, a, b, chosen):
    d = study.decide(_directions(study, a, b))
    assert d["chosen"] == chosen and d["goes_on_to_the_in_domain_check"] == (chosen is not None)


@pytest.mark.parametrize("candidate, keeps", [
    ({"auc": 0.9777, "auc_audited": 0.9906, "recall_audited": 0.905}, True),
    ({"auc": 0.9777, "auc_audited": 0.9906, "recall_audited": 0.871}, False),  # study M's C2
    ({"auc": 0.9765, "auc_audited": 0.9906, "recall_audited": 0.92}, False),   # 0.0025 lower
    ({"auc": 0.9790, "auc_audited": 0.9840, "recall_audited": 0.92}, False),
])
def test_the_in_domain_floor(study, candidate, keeps):
    shipped = {"auc": 0.9790, "auc_audited": 0.9914, "recall_audited": 0.905}
    assert study.keeps_floor(shipped, candidate) is keeps


def test_study_js_features_are_the_shipped_heads_and_the_measures_side_by_side(study, face_points):
    from happyhouse.daemon.geometry import features

    joint = study.joint_features(face_points)
    assert joint.shape == (936 + len(study.MEASURES),)
    np.testing.assert_array_equal(joint[:936], features(face_points))
    np.testing.assert_array_equal(joint[936:], study.measures(face_points))
