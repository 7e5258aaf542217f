"""Training data: real shared datasets, corrupt files, bad layouts, the split."""

import shutil

import numpy as np
import pytest

from happyhouse.daemon.errors import DataError
from happyhouse.daemon.preprocess import Preprocess
from happyhouse.train.data import load_training_data, stratified_folds, stratified_split


def _small_copy(src, dst, per_class=6):
    for name in ("happy", "not_happy"):
        (dst / name).mkdir(parents=True)
        for path in sorted((src / name).glob("*.jpg"))[:per_class]:
            shutil.copy(path, dst / name / path.name)
    return dst


def test_loads_both_real_sources_combined(genki_root, smile_root):
    data = load_training_data([genki_root, smile_root], Preprocess(crop="face"), limit=5)
    assert data.images.shape == (20, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.labels.tolist().count(1) == 10 and data.labels.tolist().count(0) == 10
    assert data.sources == [str(genki_root), str(smile_root)]


def test_loads_course_hdf5(happy_house_h5):
    data = load_training_data([happy_house_h5], Preprocess(crop="frame"))
    assert data.images.shape == (150, 64, 64, 3)
    assert int(data.labels.sum()) == 84


def test_corrupt_image_is_skipped_and_counted(genki_root, tmp_path):
    root = _small_copy(genki_root, tmp_path / "ds")
    (root / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (root / "not_happy" / "empty.jpg").write_bytes(b"")
    data = load_training_data([root], Preprocess())
    assert len(data) == 12
    assert sorted(p.split("/")[-1] for p, _ in data.skipped) == ["broken.jpg", "empty.jpg"]
    assert data.summary()["skipped"] == 2


def test_empty_class_is_a_clear_error_naming_the_folder(genki_root, tmp_path):
    root = _small_copy(genki_root, tmp_path / "ds")
    for path in (root / "not_happy").iterdir():
        path.unlink()
    with pytest.raises(DataError, match=str(root / "not_happy")):
        load_training_data([root], Preprocess())


def test_wrong_layout_is_a_clear_error_naming_the_path(tmp_path):
    (tmp_path / "faces").mkdir()
    with pytest.raises(DataError, match=str(tmp_path / "faces" / "happy")):
        load_training_data([tmp_path / "faces"], Preprocess())


def test_same_seed_same_split_and_stratified():
    labels = np.array([1] * 300 + [0] * 700)
    tr1, va1 = stratified_split(labels, 0.2, seed=7)
    tr2, va2 = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(tr1, tr2) and np.array_equal(va1, va2)
    assert not set(tr1) & set(va1) and len(tr1) + len(va1) == 1000
    assert labels[va1].sum() == 60 and len(va1) == 200
    _, va3 = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(va1, va3)


def test_same_seed_same_split_on_real_files(genki_root):
    spec = Preprocess()
    a = load_training_data([genki_root], spec, limit=30)
    b = load_training_data([genki_root], spec, limit=30)
    va_a = [a.ids[i] for i in stratified_split(a.labels, 0.25, 3)[1]]
    va_b = [b.ids[i] for i in stratified_split(b.labels, 0.25, 3)[1]]
    assert va_a == va_b and len(set(va_a)) == len(va_a) == 16


def test_split_rejects_a_class_too_small():
    with pytest.raises(DataError, match="class 1"):
        stratified_split(np.array([0, 0, 0, 1]), 0.5, 0)


def test_folds_are_stratified_and_cover_every_index():
    labels = np.array([1] * 84 + [0] * 66)
    fold = stratified_folds(labels, 5, seed=0)
    assert sorted(np.bincount(fold).tolist()) == [30] * 5
    for f in range(5):
        assert labels[fold == f].sum() in (16, 17, 18)
    assert np.array_equal(fold, stratified_folds(labels, 5, seed=0))


def test_a_burst_of_near_identical_frames_stays_in_one_fold():
    """A house folder of bursts (the same face a few px apart) was split frame by frame: 119
    of 124 "unseen" frames had a near-copy in training, and a worse bundle was accepted."""
    from happyhouse.train.data import near_duplicate_groups, stratified_group_folds

    rng = np.random.default_rng(0)
    import cv2

    # smooth pictures (a face is not pixel noise): 4x4 random, enlarged
    faces = [cv2.resize(rng.integers(0, 256, (4, 4, 3)).astype(np.uint8), (64, 64),
                        interpolation=cv2.INTER_CUBIC) for _ in range(12)]
    crops, labels = [], []
    for n, face in enumerate(faces):
        for shot in range(5):  # five frames of one face: the light flickers, the sensor is noisy
            frame = face.astype(np.int16) * (1 + 0.02 * (shot - 2)) + rng.integers(-3, 4, face.shape)
            crops.append(np.clip(frame, 0, 255).astype(np.uint8))
            labels.append(n % 2)
    crops, labels = np.stack(crops), np.array(labels)
    has_face = np.ones(len(crops), bool)
    groups = near_duplicate_groups(crops, has_face)
    assert len(np.unique(groups)) == 12  # one group per face
    fold = stratified_group_folds(labels, groups, 3, seed=0)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1  # a burst never sits on both sides
    for cls in (0, 1):
        assert sorted(np.bincount(fold[labels == cls], minlength=3)) == [10, 10, 10]


def test_too_few_bursts_for_the_folds_is_one_line():
    from happyhouse.daemon.errors import DataError
    from happyhouse.train.data import stratified_group_folds

    labels = np.array([0] * 6 + [1] * 6)
    groups = np.array([0] * 6 + [1, 1, 1, 2, 2, 2])  # the not-smiling frames: one burst
    with pytest.raises(DataError, match="not_happy: its frames fall in 1 bursts .*fewer than the 3 folds"):
        stratified_group_folds(labels, groups, 3, seed=0)


def test_house_frames_are_levelled_as_the_bundle_will_level_them(genki_root):
    """A house's rolled frames were cropped upright for adapt and the house protocol while
    the bundle they made levelled them at the door: two contracts."""
    import cv2

    from happyhouse.daemon.bundle import load_bundle
    from happyhouse.daemon.datasets import load_dataset
    from happyhouse.train.data import door_face_crops

    spec = Preprocess(crop="face", margin=0.0, size=64)
    stage = load_bundle(None).geometry_stage()
    frames = []
    for face in load_dataset(genki_root, size=None, limit=6).images:
        big = cv2.resize(np.ascontiguousarray(face), (160, 160))
        frame = cv2.copyMakeBorder(big, 160, 160, 240, 240, cv2.BORDER_CONSTANT, value=(110,) * 3)
        frames.append(cv2.warpAffine(frame, cv2.getRotationMatrix2D((320.0, 240.0), 40.0, 1.0),
                                     (640, 480), borderMode=cv2.BORDER_REPLICATE))
    upright, found = door_face_crops(np.stack(frames), spec)
    levelled, found_too = door_face_crops(np.stack(frames), spec, level=stage)
    assert (found == found_too).all() and found.sum() >= 6
    pick = np.flatnonzero(found)[0]
    upright, levelled = upright[pick:pick + 1], levelled[pick:pick + 1]
    assert not np.array_equal(upright, levelled)
    from happyhouse.daemon.geometry import roll_degrees

    left = [abs(roll_degrees(stage.mesh.points(crop[0]))) for crop in (levelled, upright)]
    assert left[0] < left[1] and left[0] <= 16.0
