"""The label audit's file and what it does to labels: no model, no Keras.

An audit (``happyhouse.train.label_audit record`` writes one) gives some faces a
reviewer's verdict, naming each by ``source/class/file`` so it holds on any
machine. Training applies it to its training part only (``happyhouse-train
--label-audit``); ``label_audit score`` measures a model against it. Kept apart
from ``label_audit`` (which scores models) so the trainer can read an audit
without importing the tool that imports the trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from happyhouse.daemon.errors import DataError

AUDIT_FORMAT = "happyhouse-label-audit"
#: what a reviewer may say of a face, and what the audit does with it
VERDICTS = {"S": "smiling: counted happy", "N": "not smiling: counted not happy",
            "X": "no face: left out (the door's gate scores faces only)",
            "?": "unsure: counted as the dataset labels it"}


def face_name(image_id: str) -> str:
    """A dataset face's name on any machine: ``source/class/file`` (the folder layout's last three parts)."""
    parts = Path(str(image_id).split("#")[0]).parts
    if len(parts) < 3:
        raise DataError(f"{image_id}: not a class-folder face (ROOT/class/file)")
    return "/".join(parts[-3:])


def load_audit(path: Path) -> Dict[str, str]:
    """{face name: verdict} of an audit file, checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        faces = data["faces"] if data.get("format") == AUDIT_FORMAT else None
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise DataError(f"{path}: not a readable label audit ({exc})") from None
    # a list or an object as a verdict was "unhashable type", a traceback
    if not isinstance(faces, dict) or not all(isinstance(v, str) and v in VERDICTS
                                              for v in faces.values()):
        raise DataError(f"{path}: not a {AUDIT_FORMAT} file with verdicts in {' '.join(VERDICTS)}")
    return {str(k): str(v) for k, v in faces.items()}


def load_audits(paths: Sequence[Path]) -> Dict[str, str]:
    """The verdicts of several audit files (review rounds); a face judged differently is refused."""
    merged: Dict[str, str] = {}
    for path in paths:
        for face, verdict in load_audit(path).items():
            if merged.get(face, verdict) != verdict:
                raise DataError(f"{path}: {face} is {verdict} here but {merged[face]} in an "
                                f"earlier audit file; settle it in one of them")
            merged[face] = verdict
    return merged


def apply_audit(names: Sequence[str], labels: np.ndarray,
                audit: Mapping[str, str]) -> Tuple[np.ndarray, np.ndarray]:
    """(labels with the audit's verdicts, which faces stay): S -> 1, N -> 0, X out, ? kept."""
    audited = np.asarray(labels).copy()
    keep = np.ones(len(audited), bool)
    for i, name in enumerate(names):
        verdict = audit.get(name, "?")
        if verdict == "S":
            audited[i] = 1
        elif verdict == "N":
            audited[i] = 0
        elif verdict == "X":
            keep[i] = False
    return audited, keep


def audit_training_part(names: Sequence[str], labels: np.ndarray, train: np.ndarray,
                        audit: Mapping[str, str]) -> Tuple[np.ndarray, np.ndarray, dict]:
    """(labels, training indices, summary) with the audit applied to the training part only.

    The validation part keeps the datasets' labels: the checkpoint and the
    threshold are still chosen on them, as the product's rule says.
    """
    train = np.asarray(train)
    audited, keep = apply_audit([names[i] for i in train], labels[train], audit)
    new_labels = np.asarray(labels).copy()
    new_labels[train] = audited
    summary = {"relabelled": int(np.sum((audited != labels[train]) & keep)),
               "to_happy": int(np.sum((audited == 1) & (labels[train] == 0) & keep)),
               "to_not_happy": int(np.sum((audited == 0) & (labels[train] == 1) & keep)),
               "left_out": int(np.sum(~keep)),
               "applies_to": "the training part only; validation keeps the datasets' labels"}
    return new_labels, train[keep], summary
