"""The ROC curve and its area, with numpy only (no scikit-learn on the Pi).

Shared by ``happyhouse-eval`` and the trainer's report, so both mean the same
thing by "AUC": the chance that a random smile scores above a random
non-smile (ties count half), whatever the threshold.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray):
    """(fpr, tpr, thresholds), thresholds descending; predicted happy when score >= t."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:  # nothing scored (no frame had a face): the curve's one point
        return np.zeros(1), np.zeros(1), np.array([np.inf])
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[distinct]
    fps = np.cumsum(~y)[distinct]
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fps / neg]
    tpr = np.r_[0.0, tps / pos]
    thr = np.r_[np.inf, s[distinct]]
    return fpr, tpr, thr


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
    """Area under the ROC curve; None when only one class is present (undefined)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    # the trapezoid rule by hand: np.trapezoid needs numpy 2, the tflite extra numpy < 2
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))
