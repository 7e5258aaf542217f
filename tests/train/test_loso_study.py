"""scripts/loso_study.py: the two rules it decides by do what reports/README.md ("loso/") says.

The fusion-weights rule picks the best cross-source weight only among weights that keep the
shipped model's in-domain floor, and adopts it only for a clear gain in direction A that does
not cost direction B. The threshold rules are the training rule ("lowest t >= 0.5 with <= 1%
false opens") on the validation split (R0), on it and its door copies pooled (R1), and the
lowest of the per-copy thresholds (R3).
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("loso_study.py")


def _directions(study, a, b):
    """Mean AUCs per weight: ``a``/``b`` override the ones given, the rest 0.95."""
    rows = {}
    for label, over in (("A", a), ("B", b)):
        rows[label] = {study.name(w): {"mean_auc": over.get(study.name(w), 0.95)} for w in study.GRID}
    return rows


def _shipped(study, failing=()):
    good = {"auc": 0.979, "auc_audited": 0.991, "recall_audited": 0.905}
    bad = {"auc": 0.970, "auc_audited": 0.984, "recall_audited": 0.85}
    return {study.name(w): (bad if study.name(w) in failing else good) for w in study.GRID}


def test_weights_beyond_the_in_domain_floor_are_never_chosen(study):
    # the best cross-source weight keeps none of the floor: the best feasible one is chosen
    directions = _directions(study, {"0:1": 0.99, "0.6:0.4": 0.96}, {"0:1": 0.99, "0.6:0.4": 0.96})
    d = study.decide(directions, _shipped(study, failing=("0:1", "0.3:0.7", "0.4:0.6", "0.5:0.5")))
    assert d["argmax_unconstrained"] == "0:1" and "0:1" not in d["feasible"]
    assert d["chosen"] == "0.6:0.4" and d["adopt"]  # +0.01 in A, +0.01 in B


@pytest.mark.parametrize("gain_a, gain_b, adopt", [
    (0.0049, 0.01, False),   # A gains less than the rule's 0.005
    (0.0050, 0.0, True),     # exactly the bar, B held
    (0.02, -0.0001, False),  # B loses
])
def test_adoption_needs_a_clear_gain_in_a_and_no_loss_in_b(study, gain_a, gain_b, adopt):
    directions = _directions(study, {"0.6:0.4": 0.95 + gain_a, "0.55:0.45": 0.95 + gain_a + 0.001},
                             {"0.6:0.4": 0.95 + gain_b, "0.55:0.45": 0.95 + gain_b - 0.002})
    d = study.decide(directions, _shipped(study, failing=("0.55:0.45",)))
    assert d["chosen"] == "0.6:0.4" and d["adopt"] is adopt


def test_without_a_feasible_weight_nothing_is_adopted(study):
    d = study.decide(_directions(study, {}, {}), _shipped(study, failing=[study.name(w) for w in study.GRID]))
    assert d["chosen"] is None and not d["adopt"]


def test_threshold_rules_follow_the_training_rule_on_their_copies(study):
    from happyhouse.train.report import choose_threshold

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(400), np.ones(200)]
    base = np.r_[rng.beta(2, 5, 400), rng.beta(5, 2, 200)]
    # the same faces, their door copies scored higher or lower (as a shifted look moves them)
    copies = {c: (y, np.clip(base + shift, 0, 1))
              for c, shift in (("as-is", 0.0), ("door-shifted", 0.08), ("door-framed", -0.05))}
    rules = study.threshold_rules(copies)
    per_copy = {c: choose_threshold(y, f, 0.01) for c, (y, f) in copies.items()}
    assert rules["R0"] == per_copy["as-is"]
    assert rules["R3"] == min(per_copy.values()) < rules["R0"]
    assert min(per_copy.values()) <= rules["R1"] <= max(per_copy.values())
    pooled = study.applied(copies, rules["R1"])
    y_all = np.concatenate([y for y, _ in copies.values()])
    f_all = np.concatenate([f for _, f in copies.values()])
    assert np.mean(f_all[y_all == 0] >= rules["R1"]) <= 0.01  # the rule's own promise, pooled
    assert pooled["worst_false_open_rate"] == max(pooled[c]["false_open_rate"] for c in copies)
