"""scripts/classifier_mix_study.py: the fusion weights it judges at, and what a row holds."""

import argparse

import numpy as np
import pytest

from happyhouse.daemon.roc import roc_auc


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("classifier_mix_study.py")


@pytest.mark.parametrize("text, expected", [("0.7:0.3", (0.7, 0.3)), ("1:0", (1.0, 0.0)), ("0.5:0.5", (0.5, 0.5))])
def test_weights_parse_as_classifier_then_geometry(study, text, expected):
    assert study.parse_weights(text) == expected


@pytest.mark.parametrize("text", ["0.7", "a:b", "0.7:0.3:0", "-0.1:1", "0:0", ""])
def test_malformed_weights_are_refused_with_the_expected_form(study, text):
    with pytest.raises(argparse.ArgumentTypeError, match="weights"):
        study.parse_weights(text)


def _faces(n=400, seed=0):
    """Two sources; a classifier score that ranks well, a geometry score that ranks worse."""
    rng = np.random.default_rng(seed)
    names = [f"{'genki4k-train' if i % 3 else 'smilesmiled'}/{'happy' if i % 2 else 'not_happy'}/{i}.jpg"
             for i in range(n)]
    labels = np.array([i % 2 for i in range(n)])
    copies = {c: (np.arange(n), None) for c in study_copies()}
    classifier = {c: 1 / (1 + np.exp(-(3 * (labels - 0.5) + rng.normal(0, 1, n)))) for c in copies}
    geometry = {c: 1 / (1 + np.exp(-(1 * (labels - 0.5) + rng.normal(0, 1, n)))) for c in copies}
    return names, labels, copies, classifier, geometry


def study_copies():
    return ("validation", "door-shifted", "door-framed", "door-framed door-shifted")


def test_a_row_is_judged_at_the_weights_it_is_given(study):
    names, labels, copies, classifier, geometry = _faces()
    alone = study.judged(names, labels, copies, classifier, geometry, {}, (1.0, 0.0))
    assert alone["validation"]["pooled"]["auc"] == pytest.approx(roc_auc(labels, classifier["validation"]), abs=1e-4)
    only_geometry = study.judged(names, labels, copies, classifier, geometry, {}, (0.0, 1.0))
    assert only_geometry["validation"]["pooled"]["auc"] == pytest.approx(
        roc_auc(labels, geometry["validation"]), abs=1e-4)
    assert only_geometry["door_mean_auc"] < alone["door_mean_auc"]
    # the door copies' means are the means of the three door copies' pooled figures
    doors = [c for c in study_copies() if c != "validation"]
    for key in ("auc", "auc_audited", "recall", "recall_audited"):
        assert alone["door_mean_" + key] == pytest.approx(
            np.mean([alone[c]["pooled"][key] for c in doors]), abs=1e-4)
