"""House adaptation, measured: k-fold CV (5 by default) over the 150 Happy House frames.

The protocol (a report script, not a CI test)::

    python -m happyhouse.train.house_cv --init models/general/model.keras --out reports/house-cv

* Folds are stratified, fixed and committed (``folds.json``); an existing
  ``folds.json`` is reused (its number of folds with it), and refused if it does
  not match the data or a ``--k`` given with it. The frame counts below are the
  default 5 folds'; the report states the run's own.
* Each fold fine-tunes the general model on its 120 training frames, by one of
  two protocols. ``--protocol split``: 96 train, 24 (stratified, seeded) pick
  the best epoch and the threshold for the target false-open rate.
  ``--protocol refit``: an inner K-fold CV over the 120 gives each of them an
  out-of-fold score (the threshold) and a best epoch per inner model; one
  model then trains on all 120 for their median epoch count, which is what a
  house would deploy. Its 30 test frames are never seen before scoring.
* Every frame is predicted exactly once, by the one model that never saw it.
* Crop mode ``--crop face`` (default): each frame goes through the door's own
  path first: scaled to 640x480 as the camera would deliver it, the shipped
  face gate (BlazeFace), then the preprocessing contract's face crop, so the
  fold models see what the daemon would feed them and start from the general
  model's own domain. A frame where the gate finds no face is never opened
  (scored 0, as at the door) and is not used for training.
  ``--crop frame``: the whole 64x64 frame, as the tutorial did (no gate).
  Recorded in each fold model's metadata.
* Fusion: when the general model has a geometry stage (``geometry.json`` beside
  ``--init``, as ``python -m happyhouse.train.geometry`` writes it), every frame
  with a face also gets the geometry head's score on its gated crop (before light
  normalisation, as the door computes it). With ``--geometry-head house``
  (default) each model's head is the general one corrected on the frames that
  model trained on (``fit_house_head``), so no frame is scored by a head that saw
  its label; ``--geometry-head general`` keeps the general model's head as it is.
  Each fold's CNN scores are fused with its head's (the bundle's rule and
  weights) and the fold's threshold is chosen on fused out-of-fold scores, so the
  figures are the door's fused score. ``--no-geometry`` measures the CNN alone.
* ``--adapt last-layer`` (a study, not the protocol): instead of fine-tuning,
  each fold re-estimates the general model's BatchNorm statistics on its
  training frames and corrects only its final layer (``train/house_probe.py``;
  seconds per fold). Measured and not adopted: see ``reports/README.md``.
* ``--interpolate A,B,...`` (refit protocol, a study, not the protocol): each
  fold's adapted model is blended back toward the general one, the alpha chosen
  among these by the fold's own inner out-of-fold scores (``train/interpolate.py``).
  Measured and not adopted: see ``reports/README.md``.
* ``--train-frames N``: each fold keeps N of its training frames (stratified by
  class, seeded by ``--seed`` and the fold): the learning curve
  (``python -m happyhouse.train.learning_curve``).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from happyhouse.daemon.bundle import sha256_file
from happyhouse.daemon.datasets import data_root
from happyhouse.daemon.errors import (ConfigError, DataError, ModelError, refuse_unless,
                                      seed_check)
from happyhouse.daemon.plots import save_figure
from happyhouse.daemon.preprocess import Preprocess

from happyhouse.daemon.geometry import fuse
from happyhouse.daemon.filesafety import check_creatable, check_file_creatable, make_folder, path_arg

from . import report
from .geometry import HOUSE_L2
from .report import CHECKOUT, recorded_path
from .data import door_face_crops, load_training_data, stratified_folds, stratified_split

# The trainer (and so TensorFlow, which logs as it loads) is imported inside the
# functions that train: `--help` and a bad argument answer at once and quietly.

log = logging.getLogger("happyhouse.train.house_cv")
#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-train-house-cv"
#: the shipped general model of this checkout (models/ is not package data)
GENERAL_MODEL = CHECKOUT / "models" / "general" / "model.keras"
#: folds when neither --k nor an existing folds file says how many
DEFAULT_K = 5
FOLDS_FILE = "folds.json"
#: a fold's inner out-of-fold scores (refit protocol), kept out of the report
OOF_KEY = "_inner_scores"
#: every interpolation's test scores and threshold (``--interpolate``), kept out of the fold row
BY_ALPHA_KEY = "_by_alpha"
#: how a fold adapts the general model: fine-tune the network, or re-estimate its
#: BatchNorm statistics and correct its final layer (``train/house_probe.py``)
ADAPT_FINE_TUNE, ADAPT_LAST_LAYER = "fine-tune", "last-layer"
ADAPT_METHODS = {
    ADAPT_FINE_TUNE: "fine-tune the general model (BatchNorm frozen)",
    ADAPT_LAST_LAYER: "re-estimate the general model's BatchNorm statistics on the fold's frames "
                      "and correct its final layer (L2 logistic, the general logit as offset)",
}




def read_folds(path: Path, k: Optional[int]) -> Optional[dict]:
    """The saved folds file at ``path`` (None if there is none yet), DataError if it is
    unreadable or holds other than ``k`` folds (``k`` None: whatever it holds)."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        folds = saved["folds"]
        saved["n"], saved["labels"]  # every key the check against the data needs
        if not isinstance(folds, list) or len(folds) < 2:
            # one fold leaves nothing to train on: "not_happy has 0 images, fewer than the
            # 4 folds asked for", from deep in the estimate
            raise ValueError("fewer than 2 folds in it")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"the folds file {path} is not readable ({exc}): give --folds the "
                        f"folds.json a run wrote, or a path where none exists yet") from None
    if k is not None and len(folds) != k:
        # the file's folds would run silently under a report that says --k
        raise DataError(f"the folds file {path} holds {len(folds)} folds but --k is {k}: drop "
                        f"--k (or pass --k {len(folds)}) to reuse it, or give a new --folds path")
    return saved


def make_or_load_folds(path: Path, labels: np.ndarray, data_file: Path, k: Optional[int],
                       seed: int) -> np.ndarray:
    """Fold number per frame: read from ``path`` if it exists (checked, also against ``k``
    when given), else create it with ``k`` folds (``DEFAULT_K`` when None)."""
    saved = read_folds(path, k)
    if saved is not None:
        fold = np.full(len(labels), -1, dtype=np.int64)
        try:
            for f, idx in enumerate(saved["folds"]):
                fold[np.asarray(idx, dtype=np.int64)] = f
        except (IndexError, TypeError, ValueError):
            fold[:] = -1  # an index outside the data: reported as a mismatch below
        if (saved["n"] != len(labels) or (fold < 0).any()
                or saved["labels"] != labels.astype(int).tolist()):
            raise DataError(f"{path} does not match {data_file}: delete it to make new folds")
        return fold
    k = DEFAULT_K if k is None else k
    fold = stratified_folds(labels, k, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({
            "dataset": data_file.name, "sha256": sha256_file(data_file), "n": int(len(labels)),
            "k": k, "seed": seed, "rule": "happyhouse.train.data.stratified_folds",
            "labels": labels.astype(int).tolist(),
            "folds": [np.flatnonzero(fold == f).tolist() for f in range(k)]}, indent=1) + "\n")
    except OSError as exc:
        raise DataError(f"cannot write the folds file {path}: {exc.strerror or exc}") from None
    return fold


#: the fold protocols (``--protocol``); their text in a report comes from :func:`protocol_text`
PROTOCOLS = {
    "split": "per fold: 80% of its training frames train, 20% pick epoch+threshold",
    "refit": "per fold: an inner CV over its training frames picks epoch count+threshold, "
             "then one model trains on all of them",
}
#: the share of a fold's training frames the split protocol validates on (split_fold)
SPLIT_VALIDATION = 0.2


def _count(values) -> str:
    """``120``, or ``112-113`` where the folds differ in size."""
    values = [int(v) for v in values]
    lo, hi = min(values), max(values)
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def protocol_text(fold: np.ndarray, protocol: str, method: str,
                  train_frames: Optional[int] = None) -> Tuple[str, str]:
    """(scope, protocol) of a report, from the folds the run really used: their number,
    each fold's unseen frames and the training frames it had (before the face gate)."""
    k = int(fold.max()) + 1
    test = np.bincount(fold, minlength=k)
    train = len(fold) - test
    if train_frames:
        train = np.minimum(train, train_frames)
    if protocol == "split":
        val = np.round(train * SPLIT_VALIDATION).astype(int)
        how = f"({_count(train - val)} train / {_count(val)} pick epoch+threshold)"
    else:
        how = (f"(inner CV on the {_count(train)} picks epoch count+threshold, then one model "
               f"trained on all {_count(train)})")
    return (f"house {k}-fold CV, unseen frames",
            f"{k}-fold stratified CV; {method} per fold on {_count(train)} frames {how}; "
            f"score {_count(test)} unseen frames")


def _fold_cfg(args, work: Path, seed: int, test, epochs: int, f: int):
    from .trainer import TrainConfig

    return TrainConfig(data=[str(args.data)], out=work, report_dir=work / "report",
                       init=None if args.scratch else Path(args.init), arch=args.scratch or "default",
                       epochs=epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                       augment=args.augment, patience=args.patience,
                       max_false_open=args.max_false_open, crop=args.crop, verbose=0,
                       extra_meta={"house_cv": {"fold": f, "test_frames": test.tolist()}})


def subsample(labels: np.ndarray, rest: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the indices ``rest``, each class in its share (at least 2 each), seeded."""
    rest = np.asarray(rest)
    if n >= len(rest):
        return rest
    rng = np.random.default_rng(seed)
    members = [rest[labels[rest] == c] for c in (0, 1)]
    happy = int(round(n * len(members[1]) / len(rest)))
    happy = min(len(members[1]), max(2, happy))
    take = (n - happy, happy)
    if take[0] < 2 or take[0] > len(members[0]):
        raise DataError(f"--train-frames {n} cannot keep 2 frames of each class "
                        f"(fold has {len(members[0])} not-smiling, {len(members[1])} smiling)")
    return np.sort(np.concatenate([rng.permutation(m)[:k] for m, k in zip(members, take)]))


def same_score(trained_on, idx, scores):
    """No geometry stage: the door's score is the classifier's."""
    return scores


class Fusion:
    """The door's score of a house's frames: the classifier's fused with the geometry head's.

    With ``features`` (the frames' aligned mesh features) the head a model is
    fused with is the general head corrected on the frames *that model* trained
    on (:func:`happyhouse.train.geometry.fit_house_head`), so no out-of-fold or
    test score comes from a head that saw its frame's label; without them it is
    the general head's precomputed score.
    """

    def __init__(self, general_scores: np.ndarray, weights, features=None, general_head=None,
                 labels=None) -> None:
        self.general_scores = np.asarray(general_scores, np.float64)
        self.weights = tuple(weights)
        self.features, self.general_head, self.labels = features, general_head, labels

    @property
    def house_head(self) -> bool:
        return self.features is not None

    def head(self, trained_on: np.ndarray):
        """The geometry head of a model trained on ``trained_on`` (the general one if not per house)."""
        from .geometry import fit_house_head

        if not self.house_head:
            return self.general_head
        return fit_house_head(self.general_head, self.features[trained_on], self.labels[trained_on])

    def geometry(self, trained_on: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if not self.house_head:
            return self.general_scores[idx]
        head = self.head(trained_on)
        return np.array([head.score(x) for x in np.nan_to_num(self.features[idx])])

    def __call__(self, trained_on: np.ndarray, idx: np.ndarray, classifier: np.ndarray) -> np.ndarray:
        return fuse(classifier, self.geometry(trained_on, idx), self.weights)


def split_fold(args, data, rest, f: int, test, combine=same_score):
    """96 frames train, 24 pick the best epoch and the threshold (on ``combine``d scores)."""
    from .trainer import predict, train_split

    tr_local, va_local = stratified_split(data.labels[rest], 0.2, args.seed + f)
    cfg = _fold_cfg(args, Path(args.work) / f"fold{f}", args.seed + f, test, args.epochs, f)
    va = rest[va_local]
    result = train_split(cfg, data, rest[tr_local], va)
    threshold = float(result["meta"]["threshold"])
    if combine is not same_score:  # the door's score is fused: choose its threshold on that
        fused = combine(rest[tr_local], va,
                        predict(result["keras_model"], data.images[va], _normalized(args)))
        threshold = float(report.choose_threshold(data.labels[va], fused, args.max_false_open))
    return (result["keras_model"], threshold,
            {"best_epoch": result["meta"]["training"]["best_epoch"]}, result["history"])


def refit_fold(args, data, rest, f: int, test, combine=same_score):
    """What a house would deploy: one model trained on all of its 120 frames.

    An inner K-fold CV over those frames first gives every one of them an
    out-of-fold score (the threshold is chosen on all 120, not on 24) and a
    best epoch per inner model; the refit then trains for their median.
    """
    from . import interpolate
    from .trainer import fit_fixed, load_model, train_split

    # --interpolate: every alpha is scored by the same inner models, and the fold's
    # own out-of-fold scores choose one (train/interpolate.py); 1 alone is plain fine-tuning
    alphas = getattr(args, "interpolate", None) or (1.0,)
    general = load_model(args.init).get_weights() if alphas != (1.0,) else None
    inner = stratified_folds(data.labels[rest], args.inner_k, args.seed + f)
    oof = {a: np.full(len(rest), np.nan) for a in alphas}
    oof_raw = {a: np.full(len(rest), np.nan) for a in alphas}
    best, first_history = [], None
    for g in range(args.inner_k):
        cfg = _fold_cfg(args, Path(args.work) / f"fold{f}" / f"inner{g}",
                        args.seed + 100 * f + g, test, args.epochs, f)
        result = train_split(cfg, data, rest[inner != g], rest[inner == g])
        held = rest[inner == g]
        for a, raw in _scores_by_alpha(args, result["keras_model"], general, alphas,
                                       data.images[held]).items():
            oof_raw[a][inner == g] = raw
            oof[a][inner == g] = combine(rest[inner != g], held, raw)
        best.append(int(result["meta"]["training"]["best_epoch"]))
        first_history = first_history or result["history"]
    chosen = interpolate.choose_alpha(data.labels[rest], oof, args.max_false_open)
    alpha, threshold = chosen["alpha"], chosen["threshold"]
    epochs = max(1, int(np.median(best)))
    cfg = _fold_cfg(args, Path(args.work) / f"fold{f}" / "refit", args.seed + f, test, epochs, f)
    model, _ = fit_fixed(cfg, data, rest)
    info = {"inner_best_epochs": best, "refit_epochs": epochs}
    if general is not None:
        if len(test):  # every alpha's scores of the test frames, for a paired comparison
            info[BY_ALPHA_KEY] = {a: {"threshold": chosen["inner"][f"{a:g}"]["threshold"],
                                      "scores": combine(rest, test, raw)}
                                  for a, raw in _scores_by_alpha(args, model, general, alphas,
                                                                 data.images[test]).items()}
        interpolate.settle(model, general, alpha)
        info["interpolation"] = {"alpha": alpha, "inner": chosen["inner"]}
    # the inner scores travel with the fold (cross_validate keeps them out of the
    # report): a threshold rule can be studied on exactly these models
    info[OOF_KEY] = {"rest": rest, "inner": inner, "fused": oof[alpha], "classifier": oof_raw[alpha]}
    return model, threshold, info, first_history


def _scores_by_alpha(args, model, general, alphas, images) -> dict:
    """{alpha: the classifier's scores of ``images`` with ``model`` blended that far from
    ``general``} (``general`` None: the model as it is, alpha 1 only)."""
    from . import interpolate
    from .trainer import predict

    out = {}
    for a in alphas:
        with (nullcontext(model) if general is None
              else interpolate.blended(model, general, a)) as blended:
            out[a] = predict(blended, images, _normalized(args))
    return out


def door_crop(args) -> Preprocess:
    """The face crop the door makes for the general model: its contract's crop (no light step).

    A model trained from scratch has no contract yet: the default face crop.
    """
    from .trainer import read_meta

    if args.scratch:
        return Preprocess(crop="face", margin=0.0, size=64)
    return Preprocess.from_dict(read_meta(Path(args.init))["preprocess"]).geometric()


def _normalized(args) -> Preprocess:
    """The general model's light normalisation, applied after the crop as the door does."""
    from .trainer import inherited_normalize

    return Preprocess(normalize=inherited_normalize(None if args.scratch else args.init))


def fusion_for(args, crops: np.ndarray, has_face: np.ndarray, labels: np.ndarray):
    """(stage, :class:`Fusion`) of the general model's geometry stage, or (None, None).

    ``args.geometry_head``: ``house`` (default) corrects the head on each
    model's own training frames, ``general`` keeps the general head. The
    general head's scores are NaN where the gate found no face (never scored).
    """
    from happyhouse.daemon.geometry import features

    from .geometry import stage_beside

    if args.scratch or getattr(args, "no_geometry", False):
        return None, None
    found = stage_beside(Path(args.init))
    if found is None:
        return None, None
    stage = found[0]
    x = np.full((len(crops), 936), np.nan)
    for i in np.flatnonzero(has_face):
        x[i] = features(stage.mesh.points(crops[i], stage.spec.pad))
    general = np.full(len(crops), np.nan)
    general[has_face] = [stage.head.score(v) for v in x[has_face]]
    log.info("geometry stage of %s: %d faces", args.init, int(has_face.sum()))
    per_house = getattr(args, "geometry_head", "house") == "house"
    return stage, Fusion(general, stage.spec.weights, x if per_house else None, stage.head, labels)


def cross_validate_last_layer(args, data, has_face: np.ndarray, fold: np.ndarray,
                              fusion: Optional[Fusion] = None) -> dict:
    """``--adapt last-layer``: statistics and final layer per fold (``train/house_probe.py``)."""
    from . import house_probe
    from .trainer import load_model

    if args.protocol != "refit" or args.scratch:
        raise DataError("--adapt last-layer needs the refit protocol and a general model (--init)")
    n_train = getattr(args, "train_frames", None)
    faces = house_probe.door_statistics_embedding(load_model(args.init), data.images,
                                                  _normalized(args))
    cv = house_probe.cross_validate(
        faces, data.labels, has_face, fold, fusion, seed=args.seed, inner_k=args.inner_k,
        max_false_open=args.max_false_open,
        select=(lambda f, rest: subsample(data.labels, rest, n_train, args.seed + 1000 * f))
        if n_train else None)
    for x in cv["folds"]:
        log.info("fold %d: %d errors, %d false opens of %d (threshold %.3f, %d training frames)",
                 x["fold"], x["errors"], x["false_opens"], x["n_test"], x["threshold"], x["n_train"])
    return {**cv, "histories": {}, "inner_scores": [None] * len(cv["folds"]),
            "threshold": float(np.median([x["threshold"] for x in cv["folds"]]))}


def cross_validate(args, data, has_face: np.ndarray, fold: np.ndarray,
                   fusion: Optional[Fusion] = None) -> dict:
    """Every frame scored once by the fold model that never saw it (``fusion``: the door's score).

    ``data.images`` are the gated crops before light normalisation; a frame
    without a face scores 0 and never trains. Returns per-frame ``scores``
    (the door's score), ``classifier`` and ``geometry`` scores, ``pred`` (each
    fold's own threshold), the per-fold figures and training histories.
    """
    from .trainer import predict

    if getattr(args, "adapt", ADAPT_FINE_TUNE) == ADAPT_LAST_LAYER:
        return cross_validate_last_layer(args, data, has_face, fold, fusion)
    normalized = _normalized(args)
    combine = same_score if fusion is None else fusion
    n_train = getattr(args, "train_frames", None)
    scores = np.full(len(data), np.nan)
    classifier = np.full(len(data), np.nan)
    geometry = np.full(len(data), np.nan)
    pred = np.full(len(data), -1, dtype=np.int64)
    folds, histories, inner_scores = [], {}, []
    by_alpha = {}  # --interpolate: each alpha's decisions on the test frames, for comparison
    k = int(fold.max()) + 1
    for f in range(k):
        test = np.flatnonzero(fold == f)
        rest = np.flatnonzero((fold != f) & has_face)  # no face: nothing to learn from
        if n_train:
            rest = subsample(data.labels, rest, n_train, args.seed + 1000 * f)
        fit_fold = refit_fold if args.protocol == "refit" else split_fold
        model, threshold, info, histories[f] = fit_fold(args, data, rest, f, test, combine)
        inner_scores.append(info.pop(OOF_KEY, None))
        for a, row in info.pop(BY_ALPHA_KEY, {}).items():
            by_alpha.setdefault(a, np.full(len(data), -1, dtype=np.int64))[test] = (
                np.where(has_face[test], row["scores"], 0.0) >= row["threshold"]).astype(int)
        raw = predict(model, data.images[test], normalized)
        if fusion is not None:
            geometry[test] = fusion.geometry(rest, test)
            fused = fuse(raw, geometry[test], fusion.weights)
        else:
            fused = raw
        s = np.where(has_face[test], fused, 0.0)  # no face, no unlock
        if not np.isnan(scores[test]).all():
            raise AssertionError("a frame was predicted twice")
        scores[test], classifier[test] = s, np.where(has_face[test], raw, 0.0)
        pred[test] = (s >= threshold).astype(int)
        m = report.metrics(data.labels[test], s, threshold)
        folds.append({"fold": f, "n_test": int(len(test)), "n_train": int(len(rest)),
                      "threshold": threshold, **info, "accuracy": m["accuracy"],
                      "errors": m["errors"], "false_opens": m["false_opens"]})
        log.info("fold %d: %d errors, %d false opens of %d (threshold %.3f, %d training frames)",
                 f, m["errors"], m["false_opens"], len(test), threshold, len(rest))
    assert (pred >= 0).all() and not np.isnan(scores).any(), "every frame predicted once"
    return {"scores": scores, "classifier": classifier, "geometry": geometry, "pred": pred,
            "folds": folds, "by_alpha": {f"{a:g}": _decided(data.labels, p) for a, p in sorted(by_alpha.items())},
            "histories": histories, "inner_scores": inner_scores,
            "threshold": float(np.median([x["threshold"] for x in folds]))}


def fold_record(info: dict) -> dict:
    """A fold's training info as a report or a model's metadata keeps it: without the
    scores the protocol hands back for studying (``OOF_KEY``, ``BY_ALPHA_KEY``)."""
    return {k: v for k, v in info.items() if k not in (OOF_KEY, BY_ALPHA_KEY)}


def _decided(labels: np.ndarray, pred: np.ndarray) -> dict:
    """Pooled figures of fixed decisions (one alpha at every fold's own threshold for it)."""
    return {"accuracy": round(float(np.mean(pred == labels)), 4), "errors": int(np.sum(pred != labels)),
            "false_opens": int(np.sum((pred == 1) & (labels == 0))),
            "missed_smiles": int(np.sum((pred == 0) & (labels == 1)))}


def save_scores(path: Path, labels: np.ndarray, has_face: np.ndarray, fold: np.ndarray,
                geo, cv: dict, weights) -> None:
    """Every score the protocol made, for studying threshold and fusion rules offline.

    Per frame: label, fold, gate, geometry score, the fold model's classifier
    score; per fold (refit protocol): its training frames, their inner folds and
    inner out-of-fold classifier scores.
    """
    arrays = {"labels": labels, "fold": fold, "has_face": has_face,
              "geometry": np.full(len(labels), np.nan) if geo is None else geo,
              "classifier": cv["classifier"], "scores": cv["scores"],
              "thresholds": np.array([x["threshold"] for x in cv["folds"]]),
              "weights": np.asarray(weights, np.float64)}
    for f, inner in enumerate(cv["inner_scores"]):
        if inner is not None:
            for key in ("rest", "inner", "classifier"):
                arrays[f"inner{f}_{key}"] = inner[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def run(args) -> dict:
    from .geometry import stage_beside
    from .outputs import staged_output
    from .trainer import load_model, predict

    normalized = _normalized(args)
    if args.crop == "face":
        spec = door_crop(args)
        data = load_training_data([args.data], Preprocess(crop="frame", size=64))
        found = (None if args.scratch or getattr(args, "no_geometry", False)
                 else stage_beside(Path(args.init)))  # the stage whose levelling the door serves
        data.images, has_face = door_face_crops(data.images, spec,
                                                level=found[0] if found else None)
    else:
        spec = Preprocess(crop="frame", size=64)
        data = load_training_data([args.data], spec)
        has_face = np.ones(len(data), bool)
    out = make_folder(Path(args.out), "--out")
    folds_path = Path(getattr(args, "folds", None) or out / FOLDS_FILE)
    fold = make_or_load_folds(folds_path, data.labels, Path(args.data), args.k, args.seed)
    stage, fusion = (fusion_for(args, data.images, has_face, data.labels) if args.crop == "face"
                     else (None, None))
    geo = None if fusion is None else fusion.general_scores
    weights = stage.spec.weights if stage is not None else (0.5, 0.5)
    if args.scratch:
        base_scores = np.full(len(data), 0.5)  # no general model: nothing to score untuned
    else:
        general = load_model(args.init)
        base_scores = predict(general, data.images, normalized)  # the general model on whole frames, untuned
        if geo is not None:
            base_scores = np.where(has_face, fuse(base_scores, np.nan_to_num(geo, nan=0.0),
                                                  weights), 0.0)
    cv = cross_validate(args, data, has_face, fold, fusion)
    if getattr(args, "scores_out", None):
        save_scores(Path(args.scores_out), data.labels, has_face, fold, geo, cv, weights)
    scores, pred, folds = cv["scores"], cv["pred"], cv["folds"]
    base = None if args.scratch else report.metrics(data.labels, base_scores, 0.5)
    n_train = getattr(args, "train_frames", None)
    scope, protocol = protocol_text(
        fold, args.protocol, f"{args.scratch} from scratch" if args.scratch
        else ADAPT_METHODS[getattr(args, "adapt", ADAPT_FINE_TUNE)], n_train)
    # the report is written beside --out and published whole: a run killed while writing
    # it left a new roc.png beside the last run's metrics.json (a committed report)
    with staged_output("--out", out) as staged:
        if cv["histories"]:
            _plot_fold_curves(cv["histories"], staged / report.PLOTS[0])
        result = report.write_report(
            staged, {}, data.images, data.labels, scores, cv["threshold"],
            scope=scope, pred=pred,
            extra={"protocol": protocol
                   + ("" if fusion is None else "; fused with the geometry head ("
                      + ("each fold's own, corrected on its training frames" if fusion.house_head
                         else "the general model's") + ")"),
                   "dataset": str(Path(args.data).name), "preprocess": spec.to_dict(),
                   "frames_with_face": int(has_face.sum()),
                   "init": None if args.scratch else recorded_path(args.init),
                   "init_sha256": None if args.scratch else sha256_file(args.init),
                   "from_scratch_arch": args.scratch,
                   "adapt": None if args.scratch else getattr(args, "adapt", ADAPT_FINE_TUNE),
                   "fold_protocol": args.protocol, "inner_k": args.inner_k if args.protocol == "refit" else None,
                   "train_frames": n_train,
                   "fusion": None if stage is None else {
                       "rule": stage.spec.fusion, "weights": list(weights),
                       "head": ("each model's own: the general head corrected on the frames it "
                                "trained on (fit_house_head, L2 on the correction "
                                f"{HOUSE_L2:g})" if fusion.house_head else
                                "the general model's geometry head (not refitted)"),
                       "threshold": "each fold's, chosen on its fused out-of-fold scores"},
                   "epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
                   "seed": args.seed,  # training and inner folds; the outer folds are folds.json
                   "augment": args.augment, "max_false_open": args.max_false_open,
                   "folds": folds,
                   "interpolate": None if not getattr(args, "interpolate", None) else {
                       "alphas": list(args.interpolate),
                       "rule": "each fold: the alpha whose inner out-of-fold fused scores are most "
                               "accurate at their own threshold (ties: the larger alpha)",
                       "by_alpha_at_its_fold_thresholds": cv["by_alpha"]},
                   "general_model_untuned_at_0.5": base and {k: base[k] for k in (
                       "accuracy", "errors", "false_opens", "roc_auc")},
                   "predictions": [{"index": i, "label": int(data.labels[i]), "fold": int(fold[i]),
                                    "score": round(float(scores[i]), 5), "pred": int(pred[i]),
                                    **({} if geo is None else {
                                        "classifier": round(float(cv["classifier"][i]), 5),
                                        "geometry": None if np.isnan(cv["geometry"][i])
                                        else round(float(cv["geometry"][i]), 5)})}
                                   for i in range(len(data))]})
    return result


def _plot_fold_curves(histories, path: Path) -> None:
    plt = report._plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for f, h in histories.items():
        epochs = np.arange(1, len(h["loss"]) + 1)
        axes[0].plot(epochs, h["loss"], "-", color=f"C{f}", label=f"fold {f} train")
        axes[0].plot(epochs, h["val_loss"], "--", color=f"C{f}", label=f"fold {f} val")
        axes[1].plot(epochs, h["val_accuracy"], "o-", ms=3, color=f"C{f}", label=f"fold {f}")
    axes[0].set_title("loss (solid train, dashed fold-internal validation)", fontsize=9)
    axes[1].set_title("fold-internal validation accuracy", fontsize=9)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(plt, fig, path, dpi=110)


def work_folder(given: Optional[Path]) -> Path:
    """Where a run's fold models go: ``given``, or a new temporary folder of its own.

    Training reloads each fold's best checkpoint from there, so a folder shared by two
    runs at once (a fixed default) would let one score the other's models."""
    import tempfile

    return Path(given) if given else Path(tempfile.mkdtemp(prefix="happyhouse-house-cv."))


@contextmanager
def fold_models_folder(given: Optional[Path]):
    """:func:`work_folder` for the length of a run: a temporary one it made is removed
    afterwards, however the run ends (each run left one in /tmp, a learning curve one
    per point); a ``--work`` folder that was given stays for the caller to read."""
    folder = work_folder(given)
    try:
        yield folder
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)


def _alphas(text: str) -> tuple:
    from .interpolate import parse_alphas

    try:
        return parse_alphas(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The protocol's arguments (argparse's usage error, exit 2, for a malformed one)."""
    root = data_root()
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.house_cv", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=path_arg, default=(root / "happy-house" / "test_happy.h5") if root else None,
                   help="the Happy House frames (default $HAPPYHOUSE_DATA/happy-house/test_happy.h5)")
    p.add_argument("--init", type=path_arg, default=GENERAL_MODEL,
                   help="the general model to adapt (default: this checkout's models/general)")
    p.add_argument("--out", type=path_arg, default=Path("reports/house-cv"))
    p.add_argument("--work", type=path_arg,
                   help="where the per-fold models go (not committed; default: a new temporary "
                        "folder for each run, so two runs never score each other's checkpoints)")
    p.add_argument("--k", type=int, help=f"folds (default: as many as an existing --folds "
                                          f"file holds, else {DEFAULT_K})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=100, help="at most; early stopping on the "
                   "fold's own validation frames")
    p.add_argument("--patience", type=int, default=30)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--scratch", choices=("happymodel", "default"),
                   help="baseline: train this architecture from scratch per fold instead of "
                        "fine-tuning --init (the tutorial's approach)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--augment", default="light", choices=("door", "light", "none"),
                   help="a fixed door camera varies less than faces in the wild")
    p.add_argument("--max-false-open", type=float, default=0.01)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="refit",
                   help="per fold: split (80%% of its training frames train, 20%% validate) or refit "
                        "(inner CV, then one model on all of them)")
    p.add_argument("--inner-k", type=int, default=4,
                   help="refit: inner folds over each fold's training frames")
    p.add_argument("--crop", choices=("face", "frame"), default="face",
                   help="face: the door's own gate and face crop (default); frame: whole frames")
    p.add_argument("--train-frames", type=int, metavar="N",
                   help="keep N of each fold's training frames (stratified, seeded): the "
                        "learning curve")
    p.add_argument("--folds", type=path_arg, help="folds file (default OUT/folds.json)")
    p.add_argument("--scores-out", type=path_arg, metavar="FILE.npz",
                   help="also save every score (per frame, and each fold's inner out-of-fold "
                        "scores) for studying threshold rules offline")
    p.add_argument("--geometry-head", choices=("house", "general"), default="house",
                   help="house: each fold corrects the general geometry head on its own training "
                        "frames (default); general: the general head as it is")
    p.add_argument("--adapt", choices=sorted(ADAPT_METHODS), default=ADAPT_FINE_TUNE,
                   help="fine-tune (default): fine-tune the network per fold; last-layer: "
                        "re-estimate its BatchNorm statistics on the fold's frames and correct "
                        "its final layer (seconds, deterministic)")
    p.add_argument("--interpolate", type=_alphas, metavar="A,B,...",
                   help="refit protocol: also blend each adapted model's weights with the general "
                        "model's (alpha * adapted + (1 - alpha) * general) and let each fold's "
                        "inner out-of-fold scores choose alpha among these (train/interpolate.py)")
    p.add_argument("--no-geometry", action="store_true",
                   help="score the CNN alone even if the general model has a geometry stage")
    args = p.parse_args(argv)
    if args.train_frames is not None and args.train_frames < 8:
        p.error("--train-frames must be at least 8")
    if args.interpolate and (args.protocol != "refit" or args.scratch or args.adapt != ADAPT_FINE_TUNE):
        p.error("--interpolate needs the refit protocol, fine-tuning and a general model (--init)")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    args = parse_args(argv)
    return run_main(PROG, lambda: run_house_cv(args))


def check_protocol_numbers(args: argparse.Namespace) -> None:
    """One line for a number the protocol cannot use, before any frame is read or folds
    file written (``--k 1`` once wrote a folds file every later run then failed on)."""
    refuse_unless((
        (args.k is None or args.k >= 2, f"--k must be at least 2, got {args.k}"),
        (args.inner_k >= 2, f"--inner-k must be at least 2, got {args.inner_k}"),
        (args.epochs >= 1 and args.batch_size >= 1,
         "--epochs and --batch-size must be at least 1"),
        (args.patience >= 0, f"--patience must be 0 or more, got {args.patience}"),
        (0 < args.lr <= 1, f"--lr must be more than 0 and at most 1, got {args.lr}"),
        (0 <= args.max_false_open < 1,
         f"--max-false-open must be in [0, 1), got {args.max_false_open}"),
        seed_check("--seed", args.seed),
    ))


def check_inputs(args: argparse.Namespace) -> None:
    """One line for an input or output the run cannot use, before any frame is read or a
    fold trained (a wrong --out once failed after the data was read, a missing --init
    was reported as its train_meta.json)."""
    if args.data is None:
        raise ConfigError("give --data or set HAPPYHOUSE_DATA")
    if not args.scratch and not Path(args.init).is_file():
        raise ModelError(f"--init: the model {args.init} "
                         + ("is not a file" if Path(args.init).exists() else "does not exist"))
    check_creatable(args.out, "--out")
    if getattr(args, "scores_out", None):  # a folder there failed after the whole run
        check_file_creatable(args.scores_out, "--scores-out")
    # unreadable, or other than --k folds: refused before the frames are read
    read_folds(Path(getattr(args, "folds", None) or Path(args.out) / FOLDS_FILE), args.k)


def run_house_cv(args: argparse.Namespace) -> int:
    """The protocol from parsed arguments, as ``main`` runs it; a project error or
    Ctrl-C propagates (``main`` and the learning curve map it to one line)."""
    check_protocol_numbers(args)
    check_inputs(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.monotonic()
    given = args.work
    with fold_models_folder(given) as work:
        args.work = work
        log.info("per-fold models in %s%s", work, "" if given else " (removed after the run)")
        r = run(args)
    sys.stdout.write(f"house CV: n={r['n']} accuracy={r['accuracy']:.4f} errors={r['errors']} "
                     f"false_opens={r['false_opens']} auc={r['roc_auc']:.4f} "
                     f"({time.monotonic() - started:.0f}s)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
