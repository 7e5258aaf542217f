"""Class-balanced L2 logistic regression, optionally as a correction of a fixed logit.

Shared by the geometry head (``train/geometry.py``) and the house's last-layer
correction (``train/house_probe.py``). Desktop-only (scipy).
"""

from __future__ import annotations

import numpy as np


def fit_logistic(x: np.ndarray, labels: np.ndarray, l2: float, offset=0.0,
                 sample_weight=None):
    """(weights, bias) on the raw features of a class-balanced L2 logistic regression.

    The features are standardised for the fit (the penalty treats them alike)
    and the standardisation is folded back into the weights; ``offset`` is a
    fixed per-sample logit the fit adds to (a head it corrects);
    ``sample_weight`` weighs faces within their class (a face weighted 0 is as
    good as left out), the two classes still weigh half each."""
    from scipy.optimize import minimize
    from scipy.special import expit  # no overflow for a far-off face

    y = np.asarray(labels, np.float64)
    s = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, np.float64)
    keep = s > 0
    mean, std = x[keep].mean(axis=0), x[keep].std(axis=0) + 1e-6
    z = (x - mean) / std
    share = np.sum(s * y) / np.sum(s)
    w = s * np.where(y == 1, 0.5 / share, 0.5 / (1.0 - share))
    w = w / w.sum()
    k = z.shape[1]

    def loss(p):
        logits = offset + z @ p[:k] + p[k]
        value = np.sum(w * (np.logaddexp(0.0, logits) - y * logits)) + l2 * np.sum(p[:k] ** 2)
        grad = w * (expit(logits) - y)
        return value, np.concatenate([z.T @ grad + 2.0 * l2 * p[:k], [grad.sum()]])

    result = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B",
                      options={"maxiter": 3000})
    coef = result.x[:k] / std
    return coef, float(result.x[k] - np.sum(coef * mean))
