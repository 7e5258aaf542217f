"""Report metrics and the validation-chosen threshold."""

import json

import numpy as np

from happyhouse.train import report


def test_metrics_on_a_known_case():
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.2, 0.1, 0.05])
    m = report.metrics(labels, scores, 0.5)
    assert (m["confusion_matrix"]["tp"], m["false_opens"], m["confusion_matrix"]["fn"]) == (2, 1, 1)
    assert m["accuracy"] == 5 / 7 and m["precision"] == 2 / 3 and m["recall"] == 2 / 3
    assert abs(m["roc_auc"] - 11 / 12) < 1e-12
    assert m["confusion_matrix"]["rows_true_cols_pred"] == [[3, 1], [1, 2]]


def test_threshold_keeps_false_opens_under_target():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(500), np.zeros(500)].astype(int)
    scores = np.clip(np.r_[rng.normal(0.75, 0.15, 500), rng.normal(0.3, 0.15, 500)], 0, 1)
    t = report.choose_threshold(labels, scores, 0.01)
    fpr = np.mean(scores[labels == 0] >= t)
    assert fpr <= 0.01
    # and it is the lowest such threshold: one step lower breaks the target
    lower = np.max(scores[(scores < t)])
    assert np.mean(scores[labels == 0] >= lower) > 0.01 or lower < 0.5


def test_threshold_never_below_even_odds():
    labels = np.array([1, 1, 0, 0])
    assert report.choose_threshold(labels, np.array([0.3, 0.2, 0.1, 0.05]), 0.01) == 0.5


def test_write_report_writes_metrics_and_every_plot(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (20, 64, 64, 3), dtype=np.uint8)
    labels = np.r_[np.ones(10), np.zeros(10)].astype(int)
    scores = rng.random(20)
    history = {"loss": [0.7, 0.5], "val_loss": [0.6, 0.55], "accuracy": [0.5, 0.7],
               "val_accuracy": [0.6, 0.65]}
    out = report.write_report(tmp_path, history, images, labels, scores, 0.6)
    for name in report.PLOTS:
        assert (tmp_path / name).stat().st_size > 1000
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["accuracy"] == out["accuracy"] and saved["threshold"] == 0.6


def test_architecture_report_has_the_tutorial_summary_and_a_diagram(tmp_path):
    from happyhouse.train import models
    from happyhouse.train.report import ARCHITECTURE_PLOT, SUMMARY_FILE, write_architecture

    model = models.build("happymodel", (64, 64, 3))
    assert write_architecture(tmp_path, model) == [SUMMARY_FILE, ARCHITECTURE_PLOT]
    summary = (tmp_path / SUMMARY_FILE).read_text()
    assert "Total params: 37,633" in summary  # the tutorial's HappyModel, as it printed it
    assert (tmp_path / ARCHITECTURE_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
