"""scripts/aligned_crop_study.py: the aligned crop does what its figures rely on.

The study's verdicts (reports/README.md, aligned-crops) assume that an aligned crop
puts a real face's outer eye corners level, at the canonical distance and place,
whatever the source's own framing. Checked with the door's face mesh on real faces
of both sources, as the study runs it.
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("aligned_crop_study.py")


@pytest.fixture(scope="module")
def mesh():
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh

    return FaceMesh(ASSET_DIR / MESH_FILE)


def _faces(root, count):
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train.data import load_training_data

    return load_training_data([str(root)], Preprocess(crop="face", size=64), limit=count).images


def _tilt(eyes):
    right, left = eyes
    return float(np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])))


@pytest.mark.parametrize("canon", [(0.536, 0.496, 0.380), (0.685, 0.508, 0.247)],
                         ids=["genki-framing", "smile-framing"])
def test_aligned_crops_put_the_eyes_level_at_the_canonical_place(study, mesh, genki_root,
                                                                  smile_root, canon):
    canon = np.array(canon)
    faces = np.concatenate([_faces(genki_root, 6), _faces(smile_root, 6)])
    before, after, distance, centre = [], [], [], []
    for face in faces:
        eyes = study.eye_corners(mesh, face)
        crop = study.aligned(face, eyes, canon)
        assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
        found = study.eye_corners(mesh, crop)  # the mesh run again on the aligned crop
        before.append(abs(_tilt(eyes)))
        after.append(abs(_tilt(found)))
        distance.append(np.hypot(*(found[1] - found[0])) / 64)
        centre.append(found.mean(axis=0) / 64)
    # the mesh on a 64 px face is good to a pixel or two, so medians, not every face:
    # a wrong rotation sign would double the tilt, a wrong scale or shift move the eyes
    assert np.median(after) < 1.5 and np.median(after) < np.median(before) / 2
    assert max(after) < 8.0
    assert np.median(distance) == pytest.approx(canon[0], abs=0.02)
    assert np.median(centre, axis=0) == pytest.approx(canon[1:], abs=0.02)
    # the same face twice gives the same crop: nothing random in the alignment
    eyes = study.eye_corners(mesh, faces[0])
    assert np.array_equal(study.aligned(faces[0], eyes, canon), study.aligned(faces[0], eyes, canon))


def test_a_degenerate_eye_pair_falls_back_to_the_plain_resize(study, genki_root):
    face = _faces(genki_root, 1)[0]
    crop = study.aligned(face, np.array([[10.0, 20.0], [10.0, 20.0]]), np.array([0.5, 0.5, 0.4]))
    assert crop.shape == (64, 64, 3)


def test_the_canonical_framing_is_the_medians_of_the_eyes(study):
    eyes = np.array([[[10.0, 20.0], [42.0, 20.0]], [[12.0, 22.0], [40.0, 22.0]],
                     [[8.0, 18.0], [44.0, 18.0]]])
    distance, cx, cy = study.canonical(eyes, 64)
    assert distance == pytest.approx(32 / 64) and cx == pytest.approx(26 / 64)
    assert cy == pytest.approx(20 / 64)


def test_validation_auc_by_source_scores_each_source_on_its_own(study):
    # pooled, the source alone ranks (A's faces score high and are mostly happy); within each
    # source the scores are perfect for A and inverted for B, whatever the other source does
    names = [f"A/happy/{i}.jpg" for i in range(3)] + ["A/not_happy/9.jpg"] + \
            ["B/happy/1.jpg", "B/not_happy/2.jpg", "B/not_happy/3.jpg"]
    labels = np.array([1, 1, 1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.95, 0.97, 0.8, 0.1, 0.2, 0.3])
    audit = {"B/not_happy/3.jpg": "X", "A/not_happy/9.jpg": "S"}  # left out; relabelled
    got = study.by_source_auc(names, labels, scores, audit)
    assert got["A"] == {"n": 4, "auc": 1.0, "auc_audited": None}  # audited: one class only
    assert got["B"]["n"] == 3 and got["B"]["auc"] == 0.0 and got["B"]["auc_audited"] == 0.0
