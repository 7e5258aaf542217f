"""Train the geometry head and the fusion threshold for a trained classifier.

``python -m happyhouse.train.geometry --data D1 --data D2 --model models/general/model.keras``

Uses exactly the split the classifier was trained with (its ``split.json``):
the head learns on the training images only, and the fused score's threshold
is chosen on the validation images (lowest threshold with a false-open rate
<= ``--max-false-open``, never below 0.5), the same rule as training's. Each
face goes through the door's own steps (``happyhouse.daemon.geometry``): the
contract's crop before normalisation, MediaPipe's face mesh, eye-corner
alignment, the aligned x, y features.

Writes next to the model: ``geometry_head.npz`` (the head) and
``geometry.json`` (the recipe, the threshold and the validation figures of
the classifier alone, the head alone and the fusion), which
``happyhouse-convert`` reads to put the stage into the bundle.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from happyhouse.daemon.bundle import sha256_file

from .data import DEFAULT_CAP_SEED
from .logistic import fit_logistic
from happyhouse.daemon.errors import DataError, ModelError, refuse_unless, seed_check
from happyhouse.daemon.filesafety import check_creatable, make_folder
from happyhouse.train.augment import Augment, augment_batch
from happyhouse.daemon.geometry import (ASSET_DIR, HEAD_FILE, LEVEL_BEYOND, LEVEL_BY,
                                        LEVEL_DETECTOR_BEYOND, MESH_FILE, MESH_PAD, MESH_SHA256,
                                        FaceMesh, GeometryHead, GeometrySpec, features, fuse,
                                        fusion_weights_valid)
from happyhouse.daemon.filesafety import a_path, path_arg

log = logging.getLogger("happyhouse.train")

SIDECAR = "geometry.json"
FORMAT = "happyhouse-geometry"
#: L2 penalty on the standardised features: measured on the general split,
#: 1e-3 and 1e-2 ranked validation faces alike (AUC 0.948 / 0.944); the
#: smaller one is kept
DEFAULT_L2 = 1e-3
#: classifier : geometry weights of the fused logit. Chosen on the general
#: validation split and its door-shifted copy (:func:`door_shift`), never on
#: door frames: with the CLAHE classifier (models/general-stage3), 0.7:0.3 ranked best on both
#: (AUC 0.979 clean, 0.969 shifted; 0.5:0.5 gave 0.977 and 0.967; the
#: classifier alone 0.978 and 0.966)
DEFAULT_WEIGHTS = (0.7, 0.3)
#: each training face is also learnt from a down- and up-sampled copy: a door
#: camera's face is small, and the mesh's points move on a soft face (the
#: head's shifted-validation AUC rose from 0.904 to 0.913 with the copies)
LOWRES_COPY = Augment(flip=0.0, shift=0.0, zoom=0.0, rotate=0.0, brightness=0.0, contrast=0.0,
                      gamma=0.0, blur=0.0, lowres=1.0, lowres_min=0.28, noise=0.0, gray=0.0)


def door_shift(crops_rgb: np.ndarray, seed: int = 123) -> np.ndarray:
    """A door-camera version of face crops: small (20-32 px), dark (gamma 1.4-2.4), soft.

    The general validation faces are sharp and well lit; a door is neither.
    This copy is how stages and fusions are compared for a door none of them
    has seen, without looking at any door's frames.
    """
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty_like(crops_rgb)
    for i, im in enumerate(crops_rgb):
        side, gamma = int(rng.integers(20, 33)), float(rng.uniform(1.4, 2.4))
        small = cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
        im = cv2.resize(small, im.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        im = (np.power(im / 255.0, gamma) * 255.0).astype(np.uint8)
        out[i] = cv2.GaussianBlur(im, (0, 0), 0.6)
    return out


def mesh_features(crops_rgb: np.ndarray, mesh: FaceMesh, pad: float = MESH_PAD) -> np.ndarray:
    """(N, 936) aligned features of uint8 RGB face crops (before normalisation)."""
    out = np.zeros((len(crops_rgb), 936), np.float64)
    for i, crop in enumerate(crops_rgb):
        out[i] = features(mesh.points(crop, pad))
    return out


def fit_head(x: np.ndarray, labels: np.ndarray, l2: float = DEFAULT_L2) -> GeometryHead:
    """Class-balanced L2 logistic regression; standardisation folded into the weights."""
    if len(np.unique(labels)) != 2:
        raise DataError("the geometry head needs faces of both classes")
    coef, bias = fit_logistic(x, labels, l2)
    return GeometryHead(weights=coef, bias=bias)


#: L2 on a house's correction of the general head (standardised features): 120 frames
#: against 936 features, so the correction stays small. Fixed a priori, not tuned.
HOUSE_L2 = 0.1


def fit_house_head(general: GeometryHead, x: np.ndarray, labels: np.ndarray,
                   l2: float = HOUSE_L2) -> GeometryHead:
    """The general head corrected on one house's frames, folded into one head.

    Logistic regression on the house's standardised features with the general
    head's logit as a fixed offset: the house learns only what its door and
    its people add, and with few frames the correction stays near zero.
    """
    if len(np.unique(labels)) != 2:
        raise DataError("the house's geometry head needs frames of both classes")
    coef, bias = fit_logistic(x, labels, l2, offset=x @ general.weights + general.bias)
    return GeometryHead(weights=general.weights + coef, bias=general.bias + bias)


def validation_mask(data_ids: Sequence[str], split_path: Path) -> np.ndarray:
    from happyhouse.convert.metadata import normalise_id

    try:
        ids = json.loads(split_path.read_text(encoding="utf-8"))["validation_ids"]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ModelError(f"{split_path}: cannot read the classifier's validation split ({exc})") from None
    wanted = {normalise_id(i) for i in ids}
    return np.array([normalise_id(i) in wanted for i in data_ids])


def check_numbers(args) -> None:
    """One line, before any face is read, for numbers a head cannot be fitted or fused with
    (a NaN L2 or weight once wrote a head; weights 0 0 one no bundle can serve)."""
    refuse_unless((
        (0 <= args.l2 < float("inf"), f"--l2 must be a finite number >= 0, got {args.l2}"),
        (fusion_weights_valid(args.weights),
         f"--weights must be two finite non-negative numbers, not both 0, "
         f"got {' '.join(f'{w:g}' for w in args.weights)}"),
        (0 <= args.max_false_open < 1,
         f"--max-false-open must be in [0, 1), got {args.max_false_open}"),
        (args.limit is None or args.limit >= 1, f"--limit must be at least 1, got {args.limit}"),
        seed_check("--seed", args.seed),
        seed_check("--cap-seed", args.cap_seed),
    ))


def run(args) -> dict:
    from happyhouse.convert.metadata import find_metadata, read_metadata

    from . import report
    from .data import capped, load_training_data, parse_source_caps
    from .trainer import load_model, predict

    check_numbers(args)
    started = time.monotonic()
    model_path = Path(args.model)
    spec = read_metadata(find_metadata(model_path, flag=None)).preprocess
    out = Path(args.out or model_path.parent)
    check_creatable(out, "--out")  # before the work
    from happyhouse.daemon.bundle import MODEL_FILE as BUNDLE_MODEL

    if (out / BUNDLE_MODEL).exists():  # its head over a sealed one: the bundle no longer loads
        raise ModelError(f"--out {out} is a model bundle ({BUNDLE_MODEL}): the geometry stage goes "
                         f"beside the model.keras it was fitted to; happyhouse-convert puts it "
                         f"in a bundle")
    caps = parse_source_caps(args.source_cap)  # so is a mistyped cap
    if spec.crop != "face":
        raise ModelError("the geometry stage needs a face-crop model (crop mode 'face')")
    data = load_training_data(args.data, spec.geometric(), args.limit)
    is_val = validation_mask(data.ids, model_path.parent / "split.json")
    if is_val.sum() < 20 or (~is_val).sum() < 20:
        raise DataError(f"the classifier's split matches {int(is_val.sum())} validation and "
                        f"{int((~is_val).sum())} training images of --data: give the data it "
                        f"was trained on")
    train_images, train_ids = data.images[~is_val], [data.ids[i] for i in np.flatnonzero(~is_val)]
    learn = capped(train_ids, caps, args.cap_seed)
    mesh = FaceMesh(ASSET_DIR / MESH_FILE)
    # validation faces are measured in the loop below, once per version of them
    train_x, train_y = mesh_features(train_images[learn], mesh), data.labels[~is_val][learn]
    if args.lowres_copies:
        # drawn for every training face, then capped: a face's copy does not depend on the caps
        soft = augment_batch(train_images, LOWRES_COPY, np.random.default_rng(args.seed))[learn]
        train_x = np.concatenate([train_x, mesh_features(soft, mesh)])
        train_y = np.concatenate([train_y, train_y])
    head = fit_head(train_x, train_y, args.l2)
    y = data.labels[is_val]
    classifier = load_model(model_path)
    figures, threshold = {}, None
    for part, crops in (("validation", data.images[is_val]),
                        ("door_shifted_validation", door_shift(data.images[is_val]))):
        geo = np.array([head.score(f) for f in mesh_features(crops, mesh)])
        cnn = predict(classifier, crops, spec)
        fused = fuse(cnn, geo, args.weights)
        if threshold is None:  # chosen on the clean split only, as the door's would be
            threshold = report.choose_threshold(y, fused, args.max_false_open)
            own = {"classifier": report.choose_threshold(y, cnn, args.max_false_open),
                   "geometry": report.choose_threshold(y, geo, args.max_false_open),
                   "fused": threshold}
        figures[part] = {}
        for name, scores in (("classifier", cnn), ("geometry", geo), ("fused", fused)):
            m = report.metrics(y, scores, own[name])
            figures[part][name] = {k: m[k] for k in ("n", "threshold", "accuracy", "recall",
                                                     "false_open_rate", "roc_auc")}
    make_folder(out, "--out")
    head.save(out / HEAD_FILE)
    geometry = GeometrySpec(mesh_file=MESH_FILE, mesh_sha256=MESH_SHA256, head_file=HEAD_FILE,
                            head_sha256=sha256_file(out / HEAD_FILE),
                            weights=tuple(args.weights), level_beyond=LEVEL_BEYOND,
                            level_by=LEVEL_BY, level_detector_beyond=LEVEL_DETECTOR_BEYOND)
    sidecar = {"format": FORMAT, "version": 1, "model_file": model_path.name,
               # the fused threshold holds for this classifier only: stage_beside checks it
               "model_sha256": sha256_file(model_path),
               "geometry": geometry.to_dict(), "threshold": float(threshold),
               "threshold_rule": f"lowest fused threshold >= 0.5 with validation false-open "
                                 f"rate <= {args.max_false_open}",
               "l2": args.l2, "lowres_copies": bool(args.lowres_copies),
               "source_caps": caps, "cap_seed": args.cap_seed if caps else None,
               "door_shift": "door_shift(): 20-32 px, gamma 1.4-2.4, blur 0.6 px, seed 123",
               # the data by folder name, as the trainer's report and the converter name it:
               # a committed sidecar carries no build machine's paths
               "data": {**data.summary(), "sources": [Path(p).name for p in data.sources]},
               "split": {"n_train": int((~is_val).sum()), "n_val": int(is_val.sum()),
                         "n_head_train": int(learn.sum()),
                         "from": "split.json of the classifier"},
               "validation": figures["validation"],
               "door_shifted_validation": figures["door_shifted_validation"], "seconds": round(time.monotonic() - started, 1)}
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return sidecar


def stage_beside(model_path: Path):
    """(Geometry, sidecar) from ``geometry.json`` beside a model, or None without one.

    What the converter ships and what the house protocol and ``happyhouse-adapt``
    fuse with: the head and its recipe as trained for the general model.
    """
    path = Path(model_path).parent / SIDECAR
    if not path.is_file():
        return None
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
        spec = GeometrySpec.from_dict(sidecar["geometry"], str(path))
        threshold = float(sidecar["threshold"])
    except KeyError as exc:
        raise ModelError(f"{path} is not a readable geometry sidecar: it has no {exc}: fit "
                         f"the geometry stage again") from None
    except (OSError, TypeError, ValueError) as exc:
        raise ModelError(f"{path} is not a readable geometry sidecar: {exc}") from None
    if not 0.0 < threshold < 1.0:  # NaN too: the bundle's seal refused it after the whole run
        raise ModelError(f"{path}: its fused threshold {sidecar['threshold']!r} is not a number "
                         f"between 0 and 1: fit the geometry stage again")
    fitted_to = sidecar.get("model_sha256")  # sidecars before 2026-11-29 do not say
    if fitted_to is not None and fitted_to != sha256_file(model_path):
        raise ModelError(f"{path} was fitted to another {Path(model_path).name} (its fused "
                         f"threshold would be wrong for this one): fit the geometry stage "
                         f"again (python -m happyhouse.train.geometry --model {model_path} ...) "
                         f"or remove {path.name}")
    from happyhouse.daemon.geometry import Geometry

    return Geometry.load(spec, Path(model_path).parent), sidecar


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.geometry",
                                description=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=a_path, action="append", required=True, metavar="PATH",
                   help="the classifier's training data (class folders), as given to training")
    p.add_argument("--model", required=True, type=path_arg, help="the trained model.keras")
    p.add_argument("--out", type=path_arg, help="folder for geometry_head.npz + geometry.json "
                                            "(default: the model's folder)")
    p.add_argument("--l2", type=float, default=DEFAULT_L2)
    p.add_argument("--weights", type=float, nargs=2, default=DEFAULT_WEIGHTS,
                   metavar=("CLASSIFIER", "GEOMETRY"), help="fusion weights of the two logits")
    p.add_argument("--no-lowres-copies", dest="lowres_copies", action="store_false",
                   help="learn the head from the faces as they are only")
    p.add_argument("--source-cap", action="append", default=[], metavar="SOURCE=N",
                   help="the head learns from at most N training faces of this source (the "
                        "data folder's name), picked at random; repeatable. The shipped head: "
                        "smilesmiled=1500 (its gray, tightly cropped faces outnumber the "
                        "colour ones 4 to 1 and taught the head less about a door)")
    p.add_argument("--cap-seed", type=int, default=DEFAULT_CAP_SEED,
                   help="which faces a --source-cap keeps")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-false-open", type=float, default=0.01)
    p.add_argument("--limit", type=int, help="at most this many images per class and source")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.cli_errors import run_main

    # the shared mapping: a fixable error or Ctrl-C is one line, never a traceback
    return run_main("happyhouse-train-geometry", lambda: _main(argv))


def _main(argv: Optional[List[str]]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = run(args)
    for part in ("validation", "door_shifted_validation"):
        v = result[part]
        sys.stdout.write(f"{part.replace('_', ' ')}:\n" + "".join(
            f"  {name:10s} AUC {v[name]['roc_auc']:.4f}, recall {v[name]['recall']:.3f} at "
            f"threshold {v[name]['threshold']:.3f} (false opens {v[name]['false_open_rate']:.2%})\n"
            for name in ("classifier", "geometry", "fused")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
