"""train/logistic.py: the class-balanced logistic fit shared by the geometry heads."""

import numpy as np

from happyhouse.train.logistic import fit_logistic


def _faces(seed=0, n=120):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    x = rng.normal(0, 1, (n, 5)) + y[:, None] * [1.5, 0, -1, 0, 0]
    return x, y


def test_unit_sample_weights_change_nothing():
    x, y = _faces()
    a, b = fit_logistic(x, y, 1e-3), fit_logistic(x, y, 1e-3, sample_weight=np.ones(len(y)))
    assert np.allclose(a[0], b[0]) and np.isclose(a[1], b[1])


def test_a_face_weighted_zero_is_as_good_as_left_out():
    x, y = _faces(1)
    weight = np.ones(len(y))
    weight[::3] = 0.0
    kept = weight > 0
    a = fit_logistic(x, y, 1e-3, sample_weight=weight)
    b = fit_logistic(x[kept], y[kept], 1e-3)
    assert np.allclose(a[0], b[0], atol=1e-5) and np.isclose(a[1], b[1], atol=1e-5)


def test_weights_move_the_fit_toward_the_heavier_faces():
    x, y = _faces(2)
    group = np.arange(len(y)) % 2 == 0
    x[group, 1] += y[group] * 2.0  # feature 1 tells smiles apart in one group only
    light = fit_logistic(x, y, 1e-3, sample_weight=np.where(group, 0.1, 1.0))[0][1]
    heavy = fit_logistic(x, y, 1e-3, sample_weight=np.where(group, 10.0, 1.0))[0][1]
    assert heavy > light > 0
