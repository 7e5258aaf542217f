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
