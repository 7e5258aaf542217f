"""Class-balanced L2 logistic regression, optionally as a correction of a fixed logit.

Shared by the geometry head (``train/geometry.py``) and the house's last-layer
correction (``train/house_probe.py``). Desktop-only (scipy).
"""

from __future__ import annotations

import numpy as np


def fit_logistic(x: np.ndarray, labels: np.ndarray, l2: float, offset=0.0):
    """(weights, bias) on the raw features of a class-balanced L2 logistic regression.

    The features are standardised for the fit (the penalty treats them alike)
    and the standardisation is folded back into the weights; ``offset`` is a
    fixed per-sample logit the fit adds to (a head it corrects)."""
    from scipy.optimize import minimize
    from scipy.special import expit  # no overflow for a far-off face

    y = np.asarray(labels, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / std
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1.0 - y.mean()))
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
