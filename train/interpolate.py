"""Weight-space interpolation of an adapted model with the general model it started from.

A house fine-tunes the general model on ~120 frames of its own door. Moving the
adapted weights part of the way back to the general ones (``alpha * adapted +
(1 - alpha) * general``, "WiSE-FT", Wortsman et al. 2022) keeps one model of the
same size and cost while keeping some of what the general model learnt from
thousands of faces. ``alpha`` = 1 is the adapted model as it is, 0 the general one.

The house protocol (``house_cv --interpolate``) chooses ``alpha`` inside each
fold from that fold's own frames (the inner out-of-fold scores), never from the
frames it is measured on.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, Sequence

import numpy as np

from happyhouse.daemon.errors import ModelError

from . import report


def parse_alphas(text: str) -> tuple:
    """``"0,0.5,1"`` -> (0.0, 0.5, 1.0): sorted, unique, each in [0, 1]."""
    try:
        alphas = sorted({float(a) for a in text.split(",") if a.strip()})
    except ValueError:
        raise ValueError(f"--interpolate takes numbers between 0 and 1 separated by commas, "
                         f"not {text!r}") from None
    if not alphas or alphas[0] < 0 or alphas[-1] > 1:
        raise ValueError(f"--interpolate takes numbers between 0 and 1 separated by commas, "
                         f"not {text!r}")
    return tuple(alphas)


def _checked(model, general: Sequence[np.ndarray]) -> List[np.ndarray]:
    own = model.get_weights()
    if len(own) != len(general) or any(a.shape != b.shape for a, b in zip(own, general)):
        raise ModelError("the adapted model's weights do not match the general model's: "
                         "interpolation needs the same architecture")
    return own


def blend(own: Sequence[np.ndarray], general: Sequence[np.ndarray], alpha: float) -> List[np.ndarray]:
    """``alpha * own + (1 - alpha) * general``, array by array, in the arrays' own dtypes."""
    return [np.asarray(alpha * a + (1.0 - alpha) * b, dtype=a.dtype) for a, b in zip(own, general)]


@contextmanager
def blended(model, general: Sequence[np.ndarray], alpha: float) -> Iterator[object]:
    """``model`` with its weights moved to ``alpha`` of the way from ``general``; restored after."""
    own = _checked(model, general)
    model.set_weights(blend(own, general, alpha))
    try:
        yield model
    finally:
        model.set_weights(own)


def settle(model, general: Sequence[np.ndarray], alpha: float) -> None:
    """Move ``model``'s weights to the blend for good (the model a house deploys)."""
    if alpha != 1.0:
        model.set_weights(blend(_checked(model, general), general, alpha))


def choose_alpha(labels: np.ndarray, oof_by_alpha: Mapping[float, np.ndarray],
                 max_false_open: float) -> Dict[str, object]:
    """The ``alpha`` whose out-of-fold scores decide best at their own threshold.

    Each ``alpha``'s threshold is the protocol's (the lowest with at most
    ``max_false_open`` out-of-fold false opens); the highest accuracy there
    wins, and a tie goes to the larger ``alpha`` (closer to plain fine-tuning).
    """
    rows = {}
    for alpha, scores in oof_by_alpha.items():
        t = report.choose_threshold(labels, scores, max_false_open)
        rows[float(alpha)] = {"threshold": float(t),
                              "accuracy": float(np.mean((scores >= t).astype(int) == labels))}
    best = max(rows, key=lambda a: (rows[a]["accuracy"], a))
    return {"alpha": best, "threshold": rows[best]["threshold"],
            "inner": {f"{a:g}": r for a, r in sorted(rows.items())}}
