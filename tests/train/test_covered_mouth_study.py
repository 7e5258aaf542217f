"""scripts/covered_mouth_study.py (study O): the cover paints only the lower middle of the
face, the frame puts the face where the study says, and the tally counts what the door's
pipeline answers, per cover and class."""

from types import SimpleNamespace

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("covered_mouth_study.py")


def test_the_cover_paints_the_lower_middle_of_the_face_only(study):
    face = np.full((64, 64, 3), 7, np.uint8)
    covered = study.cover(face, (30, 31, 32))
    painted = np.argwhere(np.any(covered != face, axis=2))
    assert painted[:, 0].min() == 40 and painted[:, 0].max() == 63  # 62.5% of 64 = row 40 down
    assert painted[:, 1].min() == 8 and painted[:, 1].max() == 55  # the middle 75%
    assert (covered[45, 30] == (30, 31, 32)).all() and (face == 7).all()  # a copy
    assert (study.cover(face, None) == face).all()


def test_the_door_frame_holds_the_face_at_its_place(study):
    frame = study.door_frame(np.full((64, 64, 3), 200, np.uint8))
    assert frame.shape == (480, 640, 3)
    assert (frame[120:340, 220:440] == 200).all() and (frame[:120] == 110).all()


def test_the_tally_counts_gated_frames_and_happy_verdicts_per_cover_and_class(study):
    """A pipeline that finds no face under a white cover and says HAPPY under a dark one."""
    def observe(frame):
        centre = frame[300, 330]  # inside the covered part of the pasted face
        if (centre == 235).all():
            return SimpleNamespace(face=None, happy=False)
        return SimpleNamespace(face=(1, 2, 3, 4), happy=bool((centre == 30).all()))

    faces = [(np.full((64, 64, 3), 90, np.uint8), 0)] * 3 + [(np.full((64, 64, 3), 90, np.uint8), 1)]
    counts = study.tally(observe, faces)
    assert counts["none"]["not_smiling"] == {"faces": 3, "gated": 3, "happy": 0, "happy_of_gated": 0.0}
    assert counts["dark scarf"]["not_smiling"]["happy"] == 3
    assert counts["dark scarf"]["smiling"] == {"faces": 1, "gated": 1, "happy": 1, "happy_of_gated": 1.0}
    assert counts["white mask"]["not_smiling"] == {"faces": 3, "gated": 0, "happy": 0,
                                                   "happy_of_gated": None}


def test_validation_faces_are_found_under_the_data_folder_by_their_relative_path(study, tmp_path):
    split = tmp_path / "split.json"
    split.write_text('{"validation_ids": ["../shared/datasets/genki4k-train/not_happy/a.jpg", '
                     '"/elsewhere/smilesmiled/happy/b.jpg"]}')
    assert study.validation_faces(split, tmp_path / "d") == [
        (tmp_path / "d" / "genki4k-train" / "not_happy" / "a.jpg", 0),
        (tmp_path / "d" / "smilesmiled" / "happy" / "b.jpg", 1)]


def test_the_texture_cover_is_the_top_of_the_donor_face(study):
    face = np.full((64, 64, 3), 7, np.uint8)
    donor = np.zeros((64, 64, 3), np.uint8)
    donor[:19] = 180  # its top 30% (19 of 64 rows): forehead and hair
    donor[19:] = 40
    covered = study.cover(face, study.TEXTURE, donor)
    assert (covered[40:, 8:56] == 180).all() and (covered[:40] == 7).all()
    assert (covered[40:, :8] == 7).all() and (covered[40:, 56:] == 7).all()
    with pytest.raises(ValueError, match="donor"):
        study.cover(face, study.TEXTURE)
