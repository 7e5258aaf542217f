"""Proof that the int8 model decides like the float model it came from.

Both models score the same held-back images (never used for calibration);
the int8 scores come from the door's own ``Classifier`` so the proof covers
its input quantization too. Conversion is refused when int8 accuracy falls
more than ``max_drop`` percentage points below float accuracy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Tuple

import numpy as np

from happyhouse.daemon.errors import DataError, ModelError

DEFAULT_MAX_DROP = 0.5  # percentage points
DEFAULT_HOLDOUT_FRACTION = 0.2
#: the parity hold-out is capped so conversion stays quick on big data sets
DEFAULT_HOLDOUT_MAX = 2000
#: float slack so a drop of exactly max_drop (e.g. 1 of 200 = 0.5 pp) is allowed
_EPS = 1e-9


class ParityError(ModelError):
    """The int8 model loses too much accuracy against the float model."""

    exit_code = 1


@dataclass(frozen=True)
class Parity:
    n: int
    threshold: float
    float_accuracy: float
    int8_accuracy: float
    agreement: float
    max_score_diff: float
    mean_score_diff: float

    @property
    def drop_pp(self) -> float:
        """How many percentage points int8 accuracy is below float accuracy."""
        return 100.0 * (self.float_accuracy - self.int8_accuracy)

    def to_dict(self) -> dict:
        return {**asdict(self), "drop_pp": self.drop_pp}

    def summary(self) -> str:
        return (f"hold-out n={self.n}: float accuracy {100 * self.float_accuracy:.2f}%, "
                f"int8 {100 * self.int8_accuracy:.2f}% (drop {self.drop_pp:+.2f} pp), "
                f"agreement {100 * self.agreement:.2f}%, largest score difference "
                f"{self.max_score_diff:.4f}")


def stratified_split(labels: np.ndarray, fraction: float = DEFAULT_HOLDOUT_FRACTION,
                     seed: int = 0, cap: int = DEFAULT_HOLDOUT_MAX) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded (rest, holdout) index arrays; each class contributes ``fraction`` of itself."""
    labels = np.asarray(labels)
    if not 0.0 < fraction < 1.0:
        raise DataError(f"hold-out fraction must be within (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    holdout = []
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            raise DataError(f"calibration data needs at least 2 images of each class for a "
                            f"hold-out split, has {len(members)} labelled {label}")
        take = max(1, int(round(fraction * len(members))))
        take = min(take, max(1, int(round(cap * len(members) / len(labels)))))
        holdout.append(rng.choice(members, size=take, replace=False))
    held = np.sort(np.concatenate(holdout))
    rest = np.setdiff1d(np.arange(len(labels)), held)
    return rest, held


def measure(float_scores: np.ndarray, int8_scores: np.ndarray, labels: np.ndarray,
            threshold: float) -> Parity:
    float_scores = np.asarray(float_scores, np.float64).reshape(-1)
    int8_scores = np.asarray(int8_scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if not len(float_scores) == len(int8_scores) == len(labels) or len(labels) == 0:
        raise DataError(f"parity needs matching, non-empty score and label arrays, got "
                        f"{len(float_scores)}, {len(int8_scores)}, {len(labels)}")
    float_happy = float_scores >= threshold
    int8_happy = int8_scores >= threshold
    diff = np.abs(float_scores - int8_scores)
    return Parity(n=int(len(labels)), threshold=float(threshold),
                  float_accuracy=float(np.mean(float_happy == (labels == 1))),
                  int8_accuracy=float(np.mean(int8_happy == (labels == 1))),
                  agreement=float(np.mean(float_happy == int8_happy)),
                  max_score_diff=float(diff.max()), mean_score_diff=float(diff.mean()))


def require(parity: Parity, max_drop: float = DEFAULT_MAX_DROP) -> Parity:
    """Raise ParityError unless int8 accuracy is within ``max_drop`` points of float."""
    # written as "not within" so that a NaN drop or allowance refuses rather than passes
    if not parity.drop_pp <= max_drop + _EPS:
        raise ParityError(f"int8 model refused: accuracy drops {parity.drop_pp:.2f} pp "
                          f"(allowed {max_drop:g}); {parity.summary()}. No bundle written. "
                          f"Try more or more representative --calibration data.")
    return parity
