"""scripts/house_measures_study.py (study H): the compact head's variant is the protocol's own
decision when the compact head weighs nothing, and its rule is the one in reports/README.md."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("house_measures_study.py")


def _saved_house(seed=0):
    """A house_cv --scores-out file's arrays: 150 frames, 5 folds, 4 inner folds each."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(66, int), np.ones(84, int)]
    fold = rng.permutation(np.arange(150) % 5)
    scores = lambda: 1 / (1 + np.exp(-(2.5 * (2 * labels - 1) + rng.normal(0, 1.5, 150))))  # noqa: E731
    saved = {"labels": labels, "fold": fold, "has_face": np.ones(150, bool),
             "geometry": scores(), "classifier": scores(), "weights": np.array([0.7, 0.3])}
    for f in range(5):
        rest = np.flatnonzero(fold != f)
        saved[f"inner{f}_rest"] = rest
        saved[f"inner{f}_inner"] = np.arange(len(rest)) % 4
        saved[f"inner{f}_classifier"] = scores()[rest]
    x = rng.normal(0, 1, (150, 936)) + 0.3 * labels[:, None]
    return saved, x


def test_with_no_weight_on_the_compact_head_it_decides_as_the_protocol_does(study):
    from happyhouse.daemon.geometry import GeometryHead
    from happyhouse.train import house_rules

    saved, x = _saved_house()
    rng = np.random.default_rng(1)
    general = GeometryHead(weights=rng.normal(0, 0.01, 936), bias=0.0)
    compact = GeometryHead(weights=rng.normal(0, 0.1, 15), bias=0.0)
    xc = rng.normal(0, 1, (150, 15))
    protocol = house_rules.study(saved, x, general, ["GFR0"])["GFR0"]
    same = study.gmfr0(saved, x, general, xc, compact, weights=(0.7, 0.3, 0.0))
    for key in ("n", "correct", "false_opens", "missed", "thresholds"):
        assert same[key] == protocol[key], key
    other = study.gmfr0(saved, x, general, xc, compact)  # 0.6:0.2:0.2: a noise head moves it
    assert other["thresholds"] != protocol["thresholds"]


def test_the_measures_of_aligned_coordinates_are_those_of_the_points(study, study_script):
    from happyhouse.daemon.geometry import features

    rng = np.random.default_rng(2)
    points = rng.normal(0, 30, (468, 3)) + 100.0
    m = study_script("smile_measures_study.py").measures(points)
    got = study.compact_features(np.stack([features(points), np.full(936, np.nan)]))
    np.testing.assert_allclose(got[0], m, atol=1e-9)
    assert np.isnan(got[1]).all()  # a frame without a face has no measures


def _row(accuracy, false_opens, most):
    return {"accuracy": accuracy, "false_opens": false_opens, "max_false_opens_one_house": most}


@pytest.mark.parametrize("new, passes", [
    (_row(0.805, 4, 2), True),
    (_row(0.799, 3, 1), False),   # +1.9 points
    (_row(0.85, 5, 2), False),    # 5 false opens of 264
    (_row(0.85, 4, 3), False),    # 3 in one house
])
def test_the_rule(study, new, passes):
    assert study.decide({"GFR0": _row(0.78, 4, 2), "GMFR0": new})["passes"] is passes
