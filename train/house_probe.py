"""Adapting to a house by correcting only the classifier's last layer.

Fine-tuning the whole network on a house's ~120 frames moves ~73k weights on
a few dozen faces per class, and two runs of it on the same frames differ by
several errors. This is the small alternative: the general classifier's
pooled features (the 128 numbers its final ``Dense`` layer reads) are kept as
they are, and a class-balanced L2 logistic regression fits a *correction* of
that layer on the house's frames, with the general classifier's own logit as
a fixed offset (the same idea as the house's geometry head,
:func:`happyhouse.train.geometry.fit_house_head`). It takes seconds, is
deterministic, and the result is the general model with new final-layer
weights: the same architecture, bundle and daemon.

Mirror averaging is kept: a face and its mirror image are two samples of the
fit, and the corrected model averages their two probabilities as before.
Desktop-only (Keras).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from happyhouse.daemon.preprocess import Preprocess, normalize_batch, to_model_input

from .logistic import fit_logistic

#: the final layer a correction replaces, and the features it reads
LAST_LAYER, FEATURES_LAYER = "happy", "flatten"
#: L2 on the correction (standardised features): the best of 0.01/0.1/1 on pseudo-houses
#: (reports/house-cv/threshold-rules/), chosen by a rule written before measuring
PROBE_L2 = 1.0


def classifier_of(model):
    """The plain classifier inside a mirror-averaged model (or the model itself)."""
    inner = [layer for layer in model.layers if hasattr(layer, "layers")]
    return inner[0] if inner else model


@dataclass(frozen=True)
class Embedded:
    """A batch of faces as the final layer sees them: features of each face and of its mirror."""

    features: np.ndarray  # (n, k)
    mirrored: np.ndarray  # (n, k)
    weights: np.ndarray   # (k,) the general final layer's
    bias: float

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, idx) -> "Embedded":
        return Embedded(self.features[idx], self.mirrored[idx], self.weights, self.bias)

    def logits(self, dw: Optional[np.ndarray] = None, db: float = 0.0):
        w = self.weights if dw is None else self.weights + dw
        b = self.bias + db
        return self.features @ w + b, self.mirrored @ w + b


def _embedded(features, last, x: np.ndarray) -> Embedded:
    """Model inputs ``x`` and their mirror images through ``features`` (a model up to the
    final layer ``last``), with that layer's weights."""
    feats = np.asarray(features([x], training=False), np.float64)
    mirrored = np.asarray(features([np.ascontiguousarray(x[:, :, ::-1])], training=False),
                          np.float64)
    w, b = last.get_weights()
    return Embedded(feats, mirrored, np.asarray(w, np.float64).reshape(-1),
                    float(np.asarray(b).reshape(-1)[0]))


def _features_model(plain):
    from . import models

    return models.keras().Model(plain.inputs, plain.get_layer(FEATURES_LAYER).output)


def embed(model, crops: np.ndarray, spec: Optional[Preprocess] = None) -> Embedded:
    """``crops`` (the contract's geometric crops) through the classifier up to its final layer."""
    plain = classifier_of(model)
    return _embedded(_features_model(plain), plain.get_layer(LAST_LAYER), model_input(crops, spec))


class DoorStatistics:
    """The classifier with its BatchNorm statistics re-estimated on a house's frames (AdaBN).

    A door's frames share one look (light, size, softness) that shifts every
    layer's activations away from the statistics the general model learnt on
    photo collections. Re-estimating each BatchNorm layer's mean and variance
    on the house's own frames (no labels; each face and its mirror), layer by
    layer in forward order, moves the features back to where the final layer
    expects them. The result is the same architecture with new statistics.
    One working copy of the model is kept and reset before every estimate.
    """

    def __init__(self, model) -> None:
        from . import models

        keras = models.keras()
        self.general = model
        self.work = keras.models.clone_model(model)
        self.work.set_weights(model.get_weights())
        plain = classifier_of(self.work)
        self._plain = plain
        self._norms = [layer for layer in plain.layers
                       if isinstance(layer, keras.layers.BatchNormalization)]
        self._inputs = [keras.Model(plain.inputs, layer.input) for layer in self._norms]
        self._features = _features_model(plain)

    def reset(self) -> None:
        self.work.set_weights(self.general.get_weights())

    def estimate(self, x: np.ndarray) -> None:
        """Re-estimate every BatchNorm layer's statistics on model inputs ``x`` (faces and mirrors)."""
        self.reset()
        for norm, upto in zip(self._norms, self._inputs):
            a = np.asarray(upto([x], training=False), np.float64)
            axes = tuple(range(a.ndim - 1))
            gamma, beta, _, _ = norm.get_weights()
            norm.set_weights([gamma, beta, a.mean(axis=axes).astype(gamma.dtype),
                              a.var(axis=axes).astype(gamma.dtype)])

    def embed(self, x: np.ndarray) -> Embedded:
        """Model inputs ``x`` as the final layer of the adapted network sees them."""
        return _embedded(self._features, self._plain.get_layer(LAST_LAYER), x)


def model_input(crops: np.ndarray, spec: Optional[Preprocess] = None) -> np.ndarray:
    """The classifier's input for the contract's geometric crops (normalised by ``spec``)."""
    return to_model_input(normalize_batch(crops, spec) if spec is not None else crops)


def with_mirrors(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ascontiguousarray(x[:, :, ::-1])])


def _sigmoid(z):
    from scipy.special import expit

    return expit(z)


def scores(faces: Embedded, correction=None) -> np.ndarray:
    """P(happy) of each face, averaged with its mirror's, as the model computes it."""
    dw, db = correction if correction is not None else (None, 0.0)
    a, m = faces.logits(dw, db)
    return 0.5 * (_sigmoid(a) + _sigmoid(m))


def fit_correction(faces: Embedded, labels: np.ndarray, l2: float = PROBE_L2):
    """(dw, db): the final layer's correction on a house's faces (each face and its mirror)."""
    from happyhouse.daemon.errors import DataError

    labels = np.asarray(labels)
    if len(np.unique(labels)) != 2:
        raise DataError("a house's correction needs frames of both classes")
    a, m = faces.logits()
    x = np.concatenate([faces.features, faces.mirrored])
    return fit_logistic(x, np.concatenate([labels, labels]), l2, offset=np.concatenate([a, m]))


def corrected(model, correction):
    """A copy of ``model`` whose final layer carries ``correction`` (the rest shared in value)."""
    from . import models

    keras = models.keras()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    last = classifier_of(clone).get_layer(LAST_LAYER)
    w, b = last.get_weights()
    dw, db = correction
    last.set_weights([(w + np.asarray(dw).reshape(w.shape)).astype(w.dtype),
                      (b + db).astype(b.dtype)])
    return clone


def cross_validate(faces, labels: np.ndarray, has_face: np.ndarray, fold: np.ndarray,
                   fusion=None, l2: float = PROBE_L2, seed: int = 0, inner_k: int = 4,
                   max_false_open: float = 0.01, select=None) -> dict:
    """The house protocol (``refit``) with a last-layer correction in place of fine-tuning.

    Per outer fold: an inner ``inner_k``-fold CV over the fold's training frames
    gives each of them an out-of-fold door score, the threshold for
    ``max_false_open`` is chosen on those, and one correction fitted on all of
    them scores the fold's test frames. ``fusion`` (a
    :class:`happyhouse.train.house_cv.Fusion`) makes the door's score the
    classifier's fused with the geometry head corrected on the same frames.
    A frame without a face scores 0 and never trains. ``faces`` is the frames'
    :class:`Embedded`, or a callable that gives it for the frames a correction
    trains on (statistics re-estimated on them: :class:`DoorStatistics`).
    ``select(f, rest)`` may keep a part of fold ``f``'s training frames.
    Returns per-frame ``scores`` (the door's), ``classifier``, ``geometry``
    and ``pred`` (each fold's threshold), and the per-fold figures.
    """
    from happyhouse.daemon.geometry import fuse

    from . import report
    from .data import stratified_folds

    embedded = faces if callable(faces) else (lambda trained_on: faces)

    def door(trained_on, idx):
        every = embedded(trained_on)
        correction = fit_correction(every.subset(trained_on), labels[trained_on], l2)
        cls = scores(every.subset(idx), correction)
        if fusion is None:
            return cls, np.full(len(idx), np.nan), cls
        geo = fusion.geometry(trained_on, idx)
        return cls, geo, fuse(cls, geo, fusion.weights)

    labels, has_face = np.asarray(labels), np.asarray(has_face, bool)
    n = len(labels)
    out = {key: np.full(n, np.nan) for key in ("scores", "classifier", "geometry")}
    pred = np.full(n, -1, np.int64)
    folds = []
    for f in range(int(fold.max()) + 1):
        test = np.flatnonzero(fold == f)
        rest = np.flatnonzero((fold != f) & has_face)
        if select is not None:
            rest = select(f, rest)
        inner = stratified_folds(labels[rest], inner_k, seed + f)
        oof = np.full(len(rest), np.nan)
        for g in range(inner_k):
            oof[inner == g] = door(rest[inner != g], rest[inner == g])[2]
        threshold = float(report.choose_threshold(labels[rest], oof, max_false_open))
        cls, geo, s = door(rest, test)
        face = has_face[test]
        out["scores"][test] = np.where(face, s, 0.0)  # no face, no unlock
        out["classifier"][test] = np.where(face, cls, 0.0)
        out["geometry"][test] = np.where(face, geo, np.nan)
        pred[test] = (out["scores"][test] >= threshold).astype(np.int64)
        wrong = pred[test] != labels[test]
        folds.append({"fold": f, "n_test": int(len(test)), "n_train": int(len(rest)),
                      "threshold": threshold, "accuracy": float(1.0 - wrong.mean()),
                      "errors": int(wrong.sum()),
                      "false_opens": int((wrong & (labels[test] == 0)).sum())})
    return {**out, "pred": pred, "folds": folds}


def door_statistics_embedding(model, crops: np.ndarray, spec: Optional[Preprocess] = None):
    """A ``faces`` callable for :func:`cross_validate`: statistics re-estimated per training set.

    Each distinct training set's estimate is cached (the inner and refit fits of
    a fold ask for it once each).
    """
    stats, x, cache = DoorStatistics(model), model_input(crops, spec), {}

    def faces(trained_on: np.ndarray) -> Embedded:
        key = tuple(np.asarray(trained_on).tolist())
        if key not in cache:
            stats.estimate(with_mirrors(x[trained_on]))
            cache[key] = stats.embed(x)
        return cache[key]

    return faces
