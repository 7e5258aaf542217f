"""The training metadata that travels with a Keras model into the bundle.

Training writes a JSON file beside the model with the preprocessing contract
it trained with, the decision threshold it chose on validation data, its
metrics and a summary of its data. The converter copies these into
``model.json``; it never invents a threshold or a crop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from happyhouse.daemon.datasets import CLASSES
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.preprocess import Preprocess

#: looked for beside MODEL when --metadata is not given ({stem} = model file stem)
CANDIDATES = ("{stem}.json", "{stem}.meta.json", "metadata.json", "training.json")
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


def find_metadata(model_path: Union[str, Path], explicit: Optional[Union[str, Path]] = None) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ModelError(f"training metadata {path} does not exist")
        return path
    model_path = Path(model_path)
    for pattern in CANDIDATES:
        path = model_path.with_name(pattern.format(stem=model_path.stem))
        if path.is_file() and path.name != model_path.name:
            return path
    names = ", ".join(p.format(stem=model_path.stem) for p in CANDIDATES)
    raise ModelError(f"no training metadata beside {model_path} (looked for {names}); pass "
                     f"--metadata PATH: the bundle needs the preprocess contract and the "
                     f"threshold chosen on validation data")


def _first(data: dict, keys, path: Path, required: bool = True):
    for key in keys:
        if key in data:
            return data[key]
    if required:
        raise ModelError(f"training metadata {path} lacks {' or '.join(map(repr, keys))}")
    return None


def read_metadata(path: Union[str, Path]) -> TrainingMeta:
    path = Path(path)
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
    if len(labels) != 2:
        raise ModelError(f"training metadata {path}: labels must name 2 classes, got {labels}")
    used = {"preprocess", "labels", "metrics", *THRESHOLD_KEYS, *DATA_KEYS}
    return TrainingMeta(path=path, preprocess=preprocess, threshold=threshold, labels=labels,
                        metrics=dict(data.get("metrics") or {}),
                        data=dict(_first(data, DATA_KEYS, path, required=False) or {}),
                        extra={k: v for k, v in data.items() if k not in used})
