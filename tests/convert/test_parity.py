"""Parity arithmetic, the hold-out split and golden vector choice."""

import numpy as np
import pytest

from happyhouse.convert.build import golden_indices
from happyhouse.convert.parity import Parity, ParityError, measure, require, stratified_split
from happyhouse.convert.quantize import calibration_sample
from happyhouse.daemon.errors import DataError


def test_measure_counts_accuracy_agreement_and_difference():
    labels = np.array([1, 1, 0, 0])
    float_scores = np.array([0.9, 0.6, 0.4, 0.1])
    int8_scores = np.array([0.88, 0.45, 0.41, 0.1])  # second image flips to "not happy"
    p = measure(float_scores, int8_scores, labels, threshold=0.5)
    assert p.float_accuracy == 1.0 and p.int8_accuracy == 0.75 and p.agreement == 0.75
    assert p.max_score_diff == pytest.approx(0.15)
    assert p.drop_pp == pytest.approx(25.0)


def test_require_refuses_a_drop_above_the_margin():
    labels = np.array([1] * 100 + [0] * 100)
    good = np.where(labels == 1, 0.9, 0.1)
    worse = good.copy()
    worse[0] = 0.1  # one of 200 wrong: 0.5 pp
    p = measure(good, worse, labels, 0.5)
    assert require(p, max_drop=0.5) is p
    with pytest.raises(ParityError, match="0.50 pp"):
        require(p, max_drop=0.4)


def test_require_refuses_when_the_drop_or_the_allowance_is_not_a_number():
    """A comparison with NaN is False, so "drop > allowed" once let any drop through."""
    labels = np.array([1, 0])
    p = measure(np.array([0.9, 0.1]), np.array([0.9, 0.1]), labels, 0.5)
    with pytest.raises(ParityError):
        require(p, max_drop=float("nan"))
    nan_drop = Parity(n=2, threshold=0.5, float_accuracy=float("nan"), int8_accuracy=1.0,
                      agreement=1.0, max_score_diff=0.0, mean_score_diff=0.0)
    with pytest.raises(ParityError):
        require(nan_drop, max_drop=1.0)


def test_int8_better_than_float_is_not_a_drop():
    labels = np.array([1, 0])
    p = measure(np.array([0.4, 0.1]), np.array([0.6, 0.1]), labels, 0.5)
    assert p.drop_pp < 0 and require(p, 0.0) is p


def test_measure_rejects_mismatched_arrays():
    with pytest.raises(DataError):
        measure(np.zeros(3), np.zeros(2), np.zeros(3), 0.5)


def test_split_is_seeded_disjoint_and_stratified():
    labels = np.array([1] * 300 + [0] * 700)
    rest, held = stratified_split(labels, 0.2, seed=3)
    again_rest, again_held = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(held, again_held) and np.array_equal(rest, again_rest)
    assert not set(rest) & set(held) and len(rest) + len(held) == 1000
    assert labels[held].sum() == 60 and len(held) == 200
    assert not np.array_equal(held, stratified_split(labels, 0.2, seed=4)[1])


def test_split_is_capped_in_class_proportion():
    labels = np.array([1] * 3000 + [0] * 7000)
    _, held = stratified_split(labels, 0.5, seed=0, cap=1000)
    assert len(held) == 1000 and labels[held].sum() == 300


def test_split_needs_both_classes():
    with pytest.raises(DataError, match="each class"):
        stratified_split(np.array([1, 1, 1, 0]), 0.2)


def test_calibration_sample_draws_only_from_the_pool():
    labels = np.array([1] * 50 + [0] * 150)
    pool = np.arange(0, 200, 2)
    pick = calibration_sample(labels, pool, 40, seed=0)
    assert set(pick) <= set(pool) and len(pick) == 40
    assert labels[pick].sum() == 10


@pytest.mark.parametrize("count", [2, 3])
def test_a_small_calibration_sample_has_a_face_of_each_class(count):
    """--calibration-size 1, documented as allowed, rounded each class's share to 0: "need
    at least one array to stack", a traceback. The least is now 2, one of each class."""
    labels = np.array([1] * 10 + [0] * 10)
    pick = calibration_sample(labels, np.arange(20), count, seed=0)
    assert 1 <= labels[pick].sum() < len(pick) <= count


def test_golden_indices_spread_over_scores_and_classes():
    labels = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.7, 0.99, 0.6, 0.1, 0.3, 0.01, 0.2, 0.45])
    pick = golden_indices(labels, scores, per_class=3)
    assert sorted(labels[pick].tolist()) == [0, 0, 0, 1, 1, 1]
    # lowest and highest of each class are included
    assert {1, 3, 7, 9} <= set(pick.tolist())


def test_int8_speed_probe_runs_every_kernel_path(capsys):
    """The speed probe converts, runs each resolver and prints one row per combination."""
    from happyhouse.convert.int8_speed import main

    assert main(["--rounds", "1", "--invokes", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tutorial")]
    assert len(rows) == 8  # 2 models x (float32, int8) x (xnnpack, builtin)
    combos = {tuple(cell.strip() for cell in row.split("|")[2:4]) for row in rows}
    assert combos == {(d, k) for d in ("float32", "int8") for k in ("xnnpack", "builtin")}
    for row in rows:
        assert float(row.split("|")[5]) > 0
        assert "CONV_2D" in row and ("DELEGATE" in row) == ("| xnnpack |" in row)
