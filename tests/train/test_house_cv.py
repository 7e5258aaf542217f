"""House-CV folds: fixed once, reused, refused when they do not match the data."""

import json

import numpy as np
import pytest

from happyhouse.daemon.errors import DataError
from happyhouse.train.house_cv import make_or_load_folds


def test_folds_are_written_once_and_reused(happy_house_h5, tmp_path):
    from happyhouse.daemon.datasets import load_dataset

    labels = load_dataset(happy_house_h5).labels
    path = tmp_path / "folds.json"
    first = make_or_load_folds(path, labels, happy_house_h5, 5, seed=0)
    saved = json.loads(path.read_text())
    assert sorted(i for fold in saved["folds"] for i in fold) == list(range(150))
    assert [len(f) for f in saved["folds"]] == [30] * 5
    again = make_or_load_folds(path, labels, happy_house_h5, 5, seed=99)  # file wins over seed
    assert np.array_equal(first, again)
    with pytest.raises(DataError, match="does not match"):
        make_or_load_folds(path, labels[::-1].copy(), happy_house_h5, 5, seed=0)


def test_committed_folds_match_the_happy_house_frames(happy_house_h5):
    from pathlib import Path

    from happyhouse.daemon.datasets import load_dataset

    path = Path(__file__).resolve().parents[2] / "reports" / "house-cv" / "folds.json"
    labels = load_dataset(happy_house_h5).labels
    fold = make_or_load_folds(path, labels, happy_house_h5, 5, seed=0)  # raises if mismatched
    assert sorted(np.bincount(fold).tolist()) == [30] * 5
    assert all(labels[fold == f].sum() in (16, 17, 18) for f in range(5))
