"""How a small house turns out-of-fold scores into a threshold (and a fusion).

A house adapts on ~120 of its own frames: about 50 not-smiling ones. "At most
1% false opens" on 50 frames means "above the highest not-smiling score", so
a single odd frame (a grin labelled not smiling, a frame caught mid-word)
sets the threshold, and the house loses most of its smiles to one outlier.
The rules here are compared on pseudo-houses (``scripts/house_threshold_study.py``:
general validation faces, one door look per house), never on a door's frames. What
won is in the protocol itself: it keeps :func:`empirical` (``report.choose_threshold``)
and fixed fusion, with the house-corrected head (``house_cv.Fusion``); the other rules
and the stack stay here, as measured and not adopted (``reports/README.md``).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from happyhouse.daemon.geometry import fuse, logit, sigmoid

from . import report
from .house_cv import Fusion

#: the normal quantile of a 1% false-open rate
Z_1_PERCENT = 2.3263
#: MAD -> standard deviation for a normal distribution
MAD_TO_SD = 1.4826
FLOOR = 0.5  # never open for a face the model thinks more likely not smiling


def empirical(labels: np.ndarray, scores: np.ndarray, max_false_open: float = 0.01) -> float:
    """Lowest threshold whose false-open rate on these scores is <= ``max_false_open``."""
    return report.choose_threshold(labels, scores, max_false_open)


def robust_gaussian(labels: np.ndarray, scores: np.ndarray, z: float = Z_1_PERCENT) -> float:
    """The not-smiling scores' 1% tail from their median and MAD (in logits).

    A median and a MAD do not move for one outlier, so a single odd frame
    cannot lift the house's threshold; the normal tail stands in for the
    frames a house of 50 not-smiling ones has not shown yet.
    """
    neg = logit(np.asarray(scores)[np.asarray(labels) == 0])
    if len(neg) < 2:
        return 1.0
    centre = float(np.median(neg))
    spread = MAD_TO_SD * float(np.median(np.abs(neg - centre)))
    return float(min(max(sigmoid(centre + z * spread), FLOOR), 1.0))


def tolerant(labels: np.ndarray, scores: np.ndarray, allowed: int = 1) -> float:
    """Lowest threshold with at most ``allowed`` not-smiling frames at or above it."""
    neg = np.sort(np.asarray(scores)[np.asarray(labels) == 0])[::-1]
    if len(neg) <= allowed:
        return FLOOR
    return float(min(max(np.nextafter(neg[allowed], np.inf), FLOOR), 1.0))


RULES = {"R0": empirical, "R1": robust_gaussian, "R2": tolerant}

def fit_stack(classifier: np.ndarray, geometry: np.ndarray, labels: np.ndarray,
              l2: float = 1e-2) -> Tuple[float, float, float]:
    """(a, b, c) of P = sigmoid(a*logit(classifier) + b*logit(geometry) + c), class-balanced."""
    from scipy.optimize import minimize

    x = np.stack([logit(classifier), logit(geometry)], axis=1)
    y = np.asarray(labels, np.float64)
    w = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1.0 - y.mean()))
    w = w / w.sum()

    def loss(p):
        z = x @ p[:2] + p[2]
        prob = sigmoid(z)
        g = w * (prob - y)
        value = np.sum(w * (np.logaddexp(0.0, z) - y * z)) + l2 * np.sum(p[:2] ** 2)
        return value, np.concatenate([x.T @ g + 2 * l2 * p[:2], [g.sum()]])

    p = minimize(loss, np.array([0.7, 0.3, 0.0]), jac=True, method="L-BFGS-B").x
    return float(p[0]), float(p[1]), float(p[2])


def stacked(classifier: np.ndarray, geometry: np.ndarray, params: Sequence[float]) -> np.ndarray:
    a, b, c = params
    return sigmoid(a * logit(classifier) + b * logit(geometry) + c)


def study(saved: Dict[str, np.ndarray], features: Optional[np.ndarray] = None,
          general=None, only: Optional[Sequence[str]] = None,
          decisions: bool = False) -> Dict[str, dict]:
    """Every rule x fusion (x head) on one ``house_cv --scores-out`` file: decisions per variant.

    Each fold's threshold (and stack, and house head) comes from its own
    training frames and their inner out-of-fold scores only; its test frames
    are then decided once. ``features`` (N x 936 mesh features) and the
    ``general`` geometry head add the house-head variants ("G..."); ``only``
    computes just the named variants; ``decisions`` adds each variant's per-frame
    ``opened`` (a bool array in the file's frame order).
    """
    labels, fold, has_face = saved["labels"], saved["fold"], saved["has_face"].astype(bool)
    geo, cls, weights = saved["geometry"], saved["classifier"], tuple(saved["weights"])
    with_geo = not np.isnan(geo[has_face]).all()
    fusions = ("F", "S") if with_geo else ("F",)
    heads = ("", "G") if with_geo and features is not None else ("",)
    names = [f"{h}{fu}{r}" for h in heads for fu in fusions for r in RULES]
    names = [n for n in names if only is None or n in only]
    out = {n: {"n": 0, "correct": 0, "false_opens": 0, "missed": 0, "thresholds": [],
               **({"opened": np.zeros(len(labels), bool)} if decisions else {})}
           for n in names}
    for f in range(int(fold.max()) + 1):
        rest, oof_cls = saved[f"inner{f}_rest"], saved[f"inner{f}_classifier"]
        test = np.flatnonzero(fold == f)
        y_rest, y_test = labels[rest], labels[test]
        for h in heads:
            if not any(n.startswith(h) and (h or not n.startswith("G")) for n in names):
                continue
            # the protocol's own fusion: "G" corrects the head on each model's training frames
            fusion = Fusion(geo, weights, features if h == "G" else None, general, labels)
            inner = saved[f"inner{f}_inner"]
            oof_geo = np.full(len(rest), np.nan)
            for g in np.unique(inner):
                oof_geo[inner == g] = fusion.geometry(rest[inner != g], rest[inner == g])
            test_geo = fusion.geometry(rest, test)
            for fu in fusions:
                if not any(n.startswith(h + fu) for n in names):
                    continue
                if fu == "F":
                    oof = fuse(oof_cls, oof_geo, weights) if with_geo else oof_cls
                    score = fuse(cls[test], test_geo, weights) if with_geo else cls[test]
                else:
                    params = fit_stack(oof_cls, oof_geo, y_rest)
                    oof = stacked(oof_cls, oof_geo, params)
                    score = stacked(cls[test], test_geo, params)
                score = np.where(has_face[test], score, 0.0)  # no face, no unlock
                for r, rule in RULES.items():
                    name = f"{h}{fu}{r}"
                    if name not in out:
                        continue
                    t = rule(y_rest, oof)
                    opened = score >= t
                    res = out[name]
                    res["n"] += len(test)
                    res["correct"] += int((opened == (y_test == 1)).sum())
                    res["false_opens"] += int((opened & (y_test == 0)).sum())
                    res["missed"] += int((~opened & (y_test == 1)).sum())
                    res["thresholds"].append(round(float(t), 4))
                    if decisions:
                        res["opened"][test] = opened
    return out
