"""What a bundle's recorded validation figures allow: a threshold floor and a go/no-go.

A bundle records how its model did on data it never trained on (``model.json``
``metrics.training``: the validation split, float model; ``metrics.parity``: the
converter's hold-out, int8 model, with the ROC table of its int8 scores since this
module exists). Two questions are answered from those figures, and only here:

* :func:`threshold_floor`: the lowest threshold the door may serve. A threshold at
  which most non-smiling faces of the bundle's own validation data would score
  high enough to open is refused, whoever asks for it (``model.json``, the config,
  ``--threshold``).
* :func:`evidence_problems`: whether the figures are good enough to arm a door on
  (``--check`` says NO-GO otherwise; ``happyhouse-convert`` warns).

No TensorFlow, no model: plain numbers from ``model.json``.
"""

from __future__ import annotations

import math
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import ModelError

#: a threshold at which more than this share of the validation's non-smiling faces would
#: open the door is refused ("would open for most non-smiling faces")
MAX_FLOOR_FALSE_OPEN = 0.5
#: The floor when the bundle records no score distribution (format-1 bundles written
#: before the ROC table, e.g. the shipped general model). A fixed value cannot know a
#: model's calibration, so it is set from the one model measured: the shipped model's
#: 1607 non-smiling validation faces open at 0.2 for 13.9% of them (0.3: 9.8%, 0.1:
#: 19.4%), and for most of them (51.5%) only at 0.01. 0.2 therefore leaves the
#: technician room to lower the validated threshold (0.889) for a dim door, and is a
#: wide margin above "opens for most" for any model whose non-smiling scores are not
#: far worse calibrated than that one's.
FIXED_FLOOR = 0.2
#: an ROC table measured on fewer non-smiling faces than this says too little to set a
#: floor from; the fixed floor applies then
MIN_ROC_NOT_HAPPY = 20
#: the grid the converter records the ROC table on (thresholds 0.00, 0.01, ... 1.00)
ROC_STEPS = 100

#: recorded figures below these are a NO-GO in ``--check``:
#: fewer hold-out images than this cannot resolve the 0.5 pp parity limit nor say the
#: model beats chance with any confidence (one image is 1 pp at 100)
MIN_HOLDOUT = 100
#: accuracy within this many points of always answering the larger class is "near chance"
CHANCE_MARGIN = 0.10
#: a ROC AUC below this separates smiles from non-smiles too poorly for a door
MIN_ROC_AUC = 0.75
#: the validation false-open rate at the bundle's own threshold may not exceed this
#: (training chooses a threshold for 1%; 5% is one stranger in twenty let in)
MAX_FALSE_OPEN = 0.05


def _number(value: Any, where: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A JSON number (not a bool, not a string) within [low, high], else ModelError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"{where} = {_short(value)} is not a number")
    if not low <= value <= high:
        raise ModelError(f"{where} = {value!r} is outside {low:g}..{high:g}")
    return float(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def roc_table(scores: Sequence[float], labels: Sequence[int], steps: int = ROC_STEPS) -> dict:
    """Share of each class scoring at or above thresholds 0, 1/steps, ... 1 (for model.json)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    grid = np.round(np.linspace(0.0, 1.0, steps + 1), 6)
    neg, pos = scores[labels == 0], scores[labels == 1]

    def rate(values: np.ndarray) -> List[float]:
        if len(values) == 0:
            return [0.0] * len(grid)
        return [round(float(np.mean(values >= t)), 6) for t in grid]

    return {"thresholds": grid.tolist(), "false_open_rate": rate(neg), "true_open_rate": rate(pos),
            "n_not_happy": int(len(neg)), "n_happy": int(len(pos)),
            "scores": "int8 model on the parity hold-out"}


def _section(meta: Mapping, name: str) -> Optional[Mapping]:
    metrics = meta.get("metrics")
    if metrics is None:
        return None
    if not isinstance(metrics, Mapping):
        raise ModelError("model.json metrics must be an object")
    section = metrics.get(name)
    if section is not None and not isinstance(section, Mapping):
        raise ModelError(f"model.json metrics.{name} must be an object")
    return section


def _roc(meta: Mapping) -> Optional[Tuple[np.ndarray, np.ndarray, int]]:
    parity = _section(meta, "parity")
    roc = parity.get("roc") if parity else None
    if roc is None:
        return None
    where = "model.json metrics.parity.roc"
    if not isinstance(roc, Mapping):
        raise ModelError(f"{where} must be an object")
    columns = []
    for key in ("thresholds", "false_open_rate"):
        values = roc.get(key)
        if not isinstance(values, list) or not values:
            raise ModelError(f"{where}.{key} must be a non-empty list of numbers")
        columns.append(np.array([_number(v, f"{where}.{key}[]", 0.0, 1.0) for v in values]))
    if len(columns[0]) != len(columns[1]) or np.any(np.diff(columns[0]) <= 0):
        raise ModelError(f"{where}: thresholds must rise and match false_open_rate in length")
    count = _number(roc.get("n_not_happy"), f"{where}.n_not_happy", 0)
    return columns[0], columns[1], int(count)


def validate_metrics(meta: Mapping) -> None:
    """Type and range of every recorded figure this module reads (ModelError if wrong)."""
    for name in ("training", "parity"):
        section = _section(meta, name) or {}
        for key in ("threshold", "accuracy", "float_accuracy", "int8_accuracy", "roc_auc",
                    "false_open_rate"):
            if section.get(key) is not None:
                _number(section[key], f"model.json metrics.{name}.{key}", 0.0, 1.0)
        for key in ("n", "tp", "fp", "tn", "fn"):
            if section.get(key) is not None:
                _number(section[key], f"model.json metrics.{name}.{key}", 0)
        summary = section.get("holdout_summary")
        if summary is not None:
            if not isinstance(summary, Mapping):
                raise ModelError(f"model.json metrics.{name}.holdout_summary must be an object")
            for key in ("n", "happy", "not_happy"):
                if summary.get(key) is not None:
                    _number(summary[key], f"model.json metrics.{name}.holdout_summary.{key}", 0)
    _roc(meta)


def threshold_floor(meta: Mapping) -> Tuple[float, str]:
    """(lowest servable threshold, what it is based on) for a bundle's ``model.json``."""
    roc = _roc(meta)
    if roc is not None and roc[2] >= MIN_ROC_NOT_HAPPY:
        thresholds, false_open, count = roc
        # the lowest recorded threshold at which at most half the non-smiling faces open;
        # between grid points the rate is only known to be at most the lower point's
        allowed = np.flatnonzero(false_open <= MAX_FLOOR_FALSE_OPEN)
        floor = float(thresholds[allowed[0]]) if len(allowed) else 1.0
        return floor, (f"below it more than {MAX_FLOOR_FALSE_OPEN:.0%} of the {count} "
                       f"non-smiling faces of the bundle's validation hold-out would open the door")
    return FIXED_FLOOR, ("the fixed floor for a bundle that records no validation score "
                         "distribution")


def false_open_at(meta: Mapping, threshold: float) -> Optional[float]:
    """The recorded hold-out false-open rate at ``threshold`` (None if not recorded)."""
    roc = _roc(meta)
    if roc is None or roc[2] < MIN_ROC_NOT_HAPPY:
        return None
    thresholds, false_open, _ = roc
    below = np.flatnonzero(thresholds <= threshold)
    return float(false_open[below[-1]]) if len(below) else 1.0


def require_threshold(meta: Mapping, value: float, origin: str) -> float:
    """``value`` if the door may serve it for this bundle, else a ModelError naming the floor."""
    floor, basis = threshold_floor(meta)
    if value < floor:
        raise ModelError(f"{origin}: threshold {value:g} is below the floor {floor:g} for this "
                         f"bundle ({basis}); the door would open for faces that are not smiling")
    return value


def evidence_problems(meta: Mapping) -> List[str]:
    """Why the bundle's recorded validation figures are too poor to arm a door on ([] = fine)."""
    problems: List[str] = []
    parity = _section(meta, "parity")
    training = _section(meta, "training")
    if not parity and not training:
        return ["model.json records no validation figures (metrics.training, metrics.parity): "
                "nothing shows the model tells smiles from non-smiles"]
    if parity:
        n = parity.get("n")
        if n is None or n < MIN_HOLDOUT:
            problems.append(f"the parity hold-out has {'no' if n is None else int(n)} images "
                            f"(at least {MIN_HOLDOUT} needed for a figure that means anything)")
        accuracy = parity.get("int8_accuracy")
        chance = _chance(parity.get("holdout_summary"))
        if accuracy is not None and accuracy < chance + CHANCE_MARGIN:
            problems.append(f"int8 accuracy {accuracy:.1%} on the hold-out is near chance "
                            f"({chance:.1%} by always answering the larger class)")
    if training:
        auc = training.get("roc_auc")
        if auc is not None and auc < MIN_ROC_AUC:
            problems.append(f"validation ROC AUC {auc:.3f} is below {MIN_ROC_AUC:g}")
        rate = training.get("false_open_rate")
        if rate is not None and rate > MAX_FALSE_OPEN:
            problems.append(f"validation false-open rate {rate:.1%} at the bundle's threshold is "
                            f"above {MAX_FALSE_OPEN:.0%}")
        accuracy = training.get("accuracy")
        counts = [training.get(k) for k in ("tp", "fn", "tn", "fp")]
        if accuracy is not None and None not in counts:
            chance = _chance({"happy": counts[0] + counts[1], "not_happy": counts[2] + counts[3]})
            if accuracy < chance + CHANCE_MARGIN:
                problems.append(f"validation accuracy {accuracy:.1%} is near chance "
                                f"({chance:.1%} by always answering the larger class)")
    return problems


def _chance(summary: Optional[Mapping]) -> float:
    """Accuracy of always answering the larger class (0.5 when the counts are unknown)."""
    if not summary:
        return 0.5
    happy, not_happy = summary.get("happy"), summary.get("not_happy")
    if happy is None or not_happy is None or happy + not_happy <= 0:
        return 0.5
    return max(happy, not_happy) / (happy + not_happy)
