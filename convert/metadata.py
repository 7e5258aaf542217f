"""The training metadata that travels with a Keras model into the bundle.

Training writes a JSON file beside the model with the preprocessing contract
it trained with, the decision threshold it chose on validation data, its
metrics and a summary of its data. The converter copies these into
``model.json``; it never invents a threshold or a crop.
"""

from __future__ import annotations

import json
import math
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Optional, Tuple, Union

from happyhouse.daemon.datasets import CLASSES
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.filesafety import require_file
from happyhouse.daemon.preprocess import Preprocess

log = logging.getLogger(__name__)

#: looked for beside MODEL when --metadata is not given ({stem} = model file stem);
#: ``train_meta.json`` is what ``happyhouse-train`` writes
CANDIDATES = ("train_meta.json", "{stem}.json", "{stem}.meta.json", "metadata.json", "training.json")
#: written by happyhouse-train beside its metadata: validation metrics and the validation ids
METRICS_FILE = "metrics.json"
SPLIT_FILE = "split.json"
#: the validation metrics worth carrying into model.json (the rest stays in the training report)
METRIC_KEYS = ("scope", "n", "threshold", "accuracy", "precision", "recall", "f1", "roc_auc",
               "false_open_rate", "false_opens", "errors")
THRESHOLD_KEYS = ("threshold", "decision_threshold")
DATA_KEYS = ("data", "data_summary", "training_data")


@dataclass(frozen=True)
class TrainingMeta:
    path: Path
    preprocess: Preprocess
    threshold: float
    labels: Tuple[str, ...] = CLASSES
    metrics: Dict[str, Any] = field(default_factory=dict)
    data: Dict[str, Any] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)
    #: normalised ids of the images training validated on (never trained on), if known
    validation_ids: Optional[FrozenSet[str]] = None


def normalise_id(image_id: str) -> str:
    """A dataset id ("ROOT/class/file" or "file.h5#i") made comparable across machines.

    A model may be trained on another machine or from another folder (a GPU
    machine, a colleague's desktop) than the one that converts or evaluates it,
    so a face is named by its dataset folder, class and file
    (``genki4k-train/happy/file0598.jpg``) and a door frame by its file and
    index (``test_happy.h5#3``), wherever the datasets lie.
    """
    path, sep, index = str(image_id).partition("#")
    parts = [p for p in os.path.normpath(path).replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts[-1 if sep else -3:]) + sep + index


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not readable JSON: {exc}") from None


#: figures a training report holds as shares (0..1) and as counts (whole numbers >= 0)
SHARE_KEYS = ("threshold", "accuracy", "precision", "recall", "f1", "roc_auc",
              "false_open_rate", "accuracy_at_0.5")
COUNT_KEYS = ("n", "false_opens", "errors", "tp", "fp", "tn", "fn")


def _side_metrics(path: Path, given: bool = False) -> Dict[str, Any]:
    """The training report's figures; ``given``: the user named the file (--metrics), so
    one without figures is refused rather than leaving a bundle no door will arm."""
    if not path.is_file():
        return {}
    report = _read_json(path)
    if not isinstance(report, dict):
        if given:
            raise ModelError(f"--metrics {path} is not a training report: expected "
                             f"happyhouse-train's metrics.json (a JSON object)")
        return {}
    picked = {k: report[k] for k in METRIC_KEYS if k in report}
    confusion = report.get("confusion_matrix") or {}
    if isinstance(confusion, dict):
        picked.update({k: confusion[k] for k in ("tp", "fp", "tn", "fn") if k in confusion})
    if isinstance(report.get("at_0.5"), dict) and "accuracy" in report["at_0.5"]:
        picked["accuracy_at_0.5"] = report["at_0.5"]["accuracy"]
    if given and not any(k in picked for k in SHARE_KEYS):
        raise ModelError(f"--metrics {path} holds no training figures (roc_auc, accuracy, "
                         f"recall, ...): expected happyhouse-train's metrics.json")
    for key in SHARE_KEYS + COUNT_KEYS:
        value = picked.get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        if value is not None and not (
                number and (0 <= value <= 1 if key in SHARE_KEYS
                            else value >= 0 and float(value).is_integer())):
            kind = "a number from 0 to 1" if key in SHARE_KEYS else "a whole number >= 0"
            raise ModelError(f"training metrics {path}: {key} = {value!r:.60} is not {kind}")
    picked["source"] = str(path)
    return picked


def _side_split(folder: Path) -> Optional[FrozenSet[str]]:
    path = folder / SPLIT_FILE
    if not path.is_file():
        return None
    split = _read_json(path)
    ids = split.get("validation_ids") if isinstance(split, dict) else None
    if not isinstance(ids, list):
        raise ModelError(f"{path} lacks a validation_ids list")
    return frozenset(normalise_id(i) for i in ids)


def find_metadata(model_path: Union[str, Path], explicit: Optional[Union[str, Path]] = None,
                  flag: Optional[str] = "--metadata") -> Path:
    """The training metadata: ``explicit``, else beside the model. ``flag``: the caller's
    option that names it (None: the caller has none, so the error does not suggest one)."""
    if explicit:
        return require_file(explicit, "training metadata", ModelError)
    model_path = require_file(model_path, "model", ModelError)
    for pattern in CANDIDATES:
        path = model_path.with_name(pattern.format(stem=model_path.stem))
        if path.is_file() and path.name != model_path.name:
            return path
    names = ", ".join(p.format(stem=model_path.stem) for p in CANDIDATES)
    raise ModelError(f"no training metadata beside {model_path} (looked for {names})"
                     + (f"; pass {flag} PATH" if flag else "")
                     + ": the model's preprocess contract and threshold are read from it "
                       "(happyhouse-train writes it)")


def _first(data: dict, keys, path: Path, required: bool = True):
    for key in keys:
        if key in data:
            return data[key]
    if required:
        raise ModelError(f"training metadata {path} lacks {' or '.join(map(repr, keys))}")
    return None


def read_metadata(path: Union[str, Path],
                  metrics_path: Optional[Union[str, Path]] = None) -> TrainingMeta:
    """Read the training metadata; validation metrics from ``metrics_path`` or beside it."""
    path = Path(path)
    if metrics_path is not None:
        require_file(metrics_path, "training metrics", ModelError)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"training metadata {path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"training metadata {path} must be a JSON object")
    pre = _first(data, ("preprocess",), path)
    if not isinstance(pre, dict):
        raise ModelError(f"training metadata {path}: preprocess must be an object")
    preprocess = Preprocess.from_dict(pre)
    raw = _first(data, THRESHOLD_KEYS, path)
    try:
        threshold = float(raw)
    except (TypeError, ValueError):
        raise ModelError(f"training metadata {path}: threshold {raw!r} is not a number") from None
    if not 0.0 < threshold < 1.0:
        raise ModelError(f"training metadata {path}: threshold {threshold} is outside (0, 1)")
    labels = tuple(data.get("labels") or CLASSES)
    if labels != tuple(CLASSES):  # the door serves the second class's score as "happy"
        raise ModelError(f"training metadata {path}: labels must be {list(CLASSES)}, got "
                         f"{list(labels)!r:.80}")
    used = {"preprocess", "labels", "metrics", *THRESHOLD_KEYS, *DATA_KEYS}
    metrics = (_side_metrics(Path(metrics_path), given=True) if metrics_path is not None
               else dict(data.get("metrics") or {}) or _side_metrics(path.parent / METRICS_FILE))
    return TrainingMeta(path=path, preprocess=preprocess, threshold=threshold, labels=labels,
                        metrics=metrics,
                        data=dict(_first(data, DATA_KEYS, path, required=False) or {}),
                        extra={k: v for k, v in data.items() if k not in used},
                        validation_ids=_side_split(path.parent))
