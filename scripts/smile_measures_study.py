#!/usr/bin/env python3
"""Does a head over a dozen named smile measures carry to a new source better than the
936-coordinate head? (issue 15, study M; judged on the door proxy of ``loso_study.py``)

The shipped geometry head is a logistic regression over every aligned mesh coordinate. On a
source it never saw it ranks at 0.900 / 0.897 against 0.947 in domain: 936 weights have room
to fit the training source's face shapes and framing. A head over measures a person would
name (mouth width, corner lift, lip opening, eye aperture, ...) has little. Each direction of
``loso_study.py`` fits one on its own training split (plus the low-res copies, as the shipped
head's recipe) and judges it on every face of the other source and its three door copies,
fused with the direction's classifier and 936 head. The rule, written before the run, is in
``reports/README.md`` (``loso/``, study M). Never reads door frames.

::

    python scripts/smile_measures_study.py --direction A runs/loso/smilesmiled/model/model.keras $D/genki4k-train \\
        --direction B runs/loso/genki4k-train/model/model.keras $D/smilesmiled --json reports/loso/measures.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loso_study import held_out_scores, trained_on  # noqa: E402  (sibling study scripts)

#: names of the measures, in the order :func:`measures` returns them
MEASURES = ("mouth_width", "inner_mouth_width", "inner_lip_opening", "outer_lip_height",
            "corner_lift_outer", "corner_lift_inner", "corner_depth", "upper_lip_to_nose",
            "eye_aperture", "eyelid_to_corner", "lower_lip_below_nose", "chin_below_nose",
            "mouth_aspect", "nose_x", "nose_y")
L2 = 1e-3  # the shipped head's
#: the candidates (study M): name -> (classifier, 936 head, compact head) weights of the mean logit
CANDIDATES = {"shipped 0.7:0.3": (0.7, 0.3, 0.0), "C1 0.7:0:0.3": (0.7, 0.0, 0.3),
              "C2 0.6:0.2:0.2": (0.6, 0.2, 0.2), "compact alone": (0.0, 0.0, 1.0),
              "936 head alone": (0.0, 1.0, 0.0), "classifier alone": (1.0, 0.0, 0.0)}
MIN_GAIN_A = 0.005


def measures(points: np.ndarray) -> np.ndarray:
    """(15,) named smile measures of one face's mesh points (aligned: eyes level, unit apart)."""
    from happyhouse.daemon.geometry import align

    p = align(points)
    x, y = p[:, 0], p[:, 1]

    def dist(a: int, b: int) -> float:
        return float(np.hypot(*(p[a] - p[b])))

    corners_y = (y[61] + y[291]) / 2.0
    opening = dist(13, 14)
    width = dist(61, 291)
    return np.array([
        width, dist(78, 308), opening, dist(0, 17),
        (y[0] + y[17]) / 2.0 - corners_y, (y[13] + y[14]) / 2.0 - corners_y, corners_y,
        y[0] - y[2], (dist(159, 145) + dist(386, 374)) / 2.0, (dist(145, 61) + dist(374, 291)) / 2.0,
        y[17] - y[2], y[152] - y[2], opening / max(width, 1e-6), abs(x[1]), y[1]])


def joint_features(points: np.ndarray) -> np.ndarray:
    """Study J's (951,): the 936 aligned coordinates of the shipped head and the 15 measures."""
    from happyhouse.daemon.geometry import features

    return np.concatenate([features(points), measures(points)])


def measured(crops: np.ndarray, mesh) -> np.ndarray:
    return np.array([measures(mesh.points(c)) for c in crops]) if len(crops) else np.zeros((0, len(MEASURES)))


def cached(file: Path, make) -> dict:
    if file.is_file():
        with np.load(file, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = make()
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    return out


def training_measures(model: Path, cache: Path, mesh) -> dict:
    """The direction's own training split (and its low-res copies, seed 1 as the shipped head's)."""
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.train.augment import augment_batch
    from happyhouse.train.geometry import LOWRES_COPY
    from happyhouse.train.label_audit import split_faces

    def make():
        _, labels, crops = split_faces(model, [trained_on(model)], part="training")
        soft = augment_batch(crops, LOWRES_COPY, np.random.default_rng(1))
        x = np.concatenate([measured(crops, mesh), measured(soft, mesh)])
        print(f"{model}: {len(crops)} training faces measured (and their low-res copies)", flush=True)
        return {"x": x, "y": np.concatenate([labels, labels])}

    return cached(cache / f"measures-training-{sha256_file(model)[:12]}.npz", make)


def held_out_copies(model: Path, held_out: Path, scores: dict) -> Dict[str, np.ndarray]:
    """{copy: crops} of every held-out face, checked to be the faces and order of ``scores``."""
    from happyhouse.train.audits import face_name
    from happyhouse.train.data import load_training_data
    from happyhouse.train.label_audit import door_copies, model_contract

    data = load_training_data([str(held_out)], model_contract(model).geometric())
    if [face_name(i) for i in data.ids] != [str(n) for n in scores["names"]]:
        raise SystemExit(f"{held_out}: the faces differ from the cached scores'")
    copies = {"as-is": (np.arange(len(data.images)), data.images)}
    copies.update(door_copies(data.images))
    for c, (which, _) in copies.items():
        if not np.array_equal(which, scores[f"{c}/which"]):
            raise SystemExit(f"{held_out} {c}: the copy holds other faces than the cached scores'")
    return {c: images for c, (_, images) in copies.items()}


def held_out_measures(model: Path, held_out: Path, cache: Path, mesh, scores: dict) -> dict:
    """Per copy of every held-out face, the measures; the same faces and order as ``scores``."""
    def make():
        out = {}
        for c, images in held_out_copies(model, held_out, scores).items():
            out[c] = measured(images, mesh)
            print(f"{held_out.name} {c}: {len(images)} faces measured", flush=True)
        return out

    return cached(cache / f"measures-{held_out.name}.npz", make)


def fused(weights, classifier, head936, compact) -> np.ndarray:
    from happyhouse.daemon.geometry import logit, sigmoid

    w = np.asarray(weights, np.float64)
    z = w[0] * logit(classifier) + w[1] * logit(head936) + w[2] * logit(compact)
    return sigmoid(z / w.sum())


def direction(model: Path, held_out: Path, cache: Path, mesh) -> dict:
    from happyhouse.daemon.geometry import sigmoid
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train.logistic import fit_logistic

    scores = held_out_scores(model, held_out, cache)
    train = training_measures(model, cache, mesh)
    coef, bias = fit_logistic(train["x"], train["y"], L2)
    held = held_out_measures(model, held_out, cache, mesh, scores)
    rows: Dict[str, dict] = {}
    for name, w in CANDIDATES.items():
        row = {}
        for c, x in held.items():
            y = scores["labels"][scores[f"{c}/which"]]
            compact = sigmoid(x @ coef + bias)
            row[c] = round(float(roc_auc(y, fused(w, scores[f"{c}/classifier"], scores[f"{c}/geometry"], compact))), 4)
        row["mean_auc"] = round(float(np.mean([row[c] for c in held])), 4)
        rows[name] = row
    own = sigmoid(train["x"] @ coef + bias)
    return {"model": str(model), "held_out": held_out.name, "n_training": int(len(train["y"])),
            "compact_training_auc": round(float(roc_auc(train["y"], own)), 4),
            "compact_weights": {m: round(float(v), 4) for m, v in zip(MEASURES, coef)},
            "candidates": rows}


def decide(directions: Dict[str, dict]) -> dict:
    """Study M's rule (reports/README.md, loso/): >= +0.005 in A, >= 0 in B over the shipped fusion."""
    base = {d: directions[d]["candidates"]["shipped 0.7:0.3"]["mean_auc"] for d in directions}
    gains = {c: {d: round(directions[d]["candidates"][c]["mean_auc"] - base[d], 4) for d in directions}
             for c in ("C1 0.7:0:0.3", "C2 0.6:0.2:0.2")}
    passing = [c for c, g in gains.items() if g["A"] >= MIN_GAIN_A and g["B"] >= 0]
    best = max(passing, key=lambda c: gains[c]["A"] + gains[c]["B"]) if passing else None
    return {"gains": gains, "passing": passing, "chosen": best,
            "goes_on_to_the_in_domain_check": best is not None}


#: the in-domain floor (the same as study L's, reports/README.md loso/)
MAX_VALIDATION_AUC_DROP = 0.002
AUDITED_AUC_FLOOR = 0.985
AUDITED_RECALL_FLOOR = 0.90


def keeps_floor(shipped: dict, candidate: dict) -> bool:
    """The floor on the general validation split: the AUC (datasets' labels) at most 0.002 under
    the shipped fusion's, the audited AUC >= 0.985 and the audited recall at 1% >= 90%."""
    return bool(candidate["auc"] >= shipped["auc"] - MAX_VALIDATION_AUC_DROP
                and candidate["auc_audited"] >= AUDITED_AUC_FLOOR
                and candidate["recall_audited"] >= AUDITED_RECALL_FLOOR)


def in_domain(cache: Path, shipped_cache: Path, mesh) -> dict:
    """The shipped classifier and 936 head with a compact head fitted by the shipped head's
    recipe (its training faces: the general training split, SMILEsmileD capped as
    ``geometry.json`` says, plus the low-res copies), on the general validation split and
    its door copies, at every candidate's weights; and the floor's verdict per candidate."""
    from aligned_crop_study import data_paths
    from ensemble_study import AUDITS, SHIPPED, classifier_scores, faces_and_geometry, judged

    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.daemon.geometry import sigmoid
    from happyhouse.train.audits import load_audits
    from happyhouse.train.augment import augment_batch
    from happyhouse.train.data import capped
    from happyhouse.train.geometry import LOWRES_COPY
    from happyhouse.train.label_audit import split_faces
    from happyhouse.train.logistic import fit_logistic

    recipe = json.loads((SHIPPED.parent / "geometry.json").read_text())
    key = sha256_file(SHIPPED)[:12]

    def training():
        names, labels, crops = split_faces(SHIPPED, data_paths(), part="training")
        keep = capped(names, recipe["source_caps"], recipe["cap_seed"])
        crops, labels = crops[keep], labels[keep]
        soft = augment_batch(crops, LOWRES_COPY, np.random.default_rng(1))
        print(f"shipped split: {len(crops)} training faces measured (and their low-res copies)", flush=True)
        return {"x": np.concatenate([measured(crops, mesh), measured(soft, mesh)]),
                "y": np.concatenate([labels, labels])}

    train = cached(cache / f"measures-general-training-{key}.npz", training)
    coef, bias = fit_logistic(train["x"], train["y"], L2)
    names, labels, copies, geometry = faces_and_geometry(data_paths(), shipped_cache)
    classifier = classifier_scores(SHIPPED, copies, shipped_cache)
    held = cached(cache / f"measures-general-validation-{key}.npz",
                  lambda: {c: measured(faces, mesh) for c, (_, faces) in copies.items()})
    audit = load_audits([Path(a) for a in AUDITS])
    rows = {}
    for name, w in CANDIDATES.items():
        scores = {c: fused(w, classifier[c], geometry[c], sigmoid(held[c] @ coef + bias)) for c in copies}
        rows[name] = judged(names, labels, copies, scores, audit)
    base = rows["shipped 0.7:0.3"]["validation"]
    floor = {name: {"auc_drop": round(base["auc"] - rows[name]["validation"]["auc"], 4),
                    "keeps_floor": keeps_floor(base, rows[name]["validation"])}
             for name in ("C1 0.7:0:0.3", "C2 0.6:0.2:0.2")}
    return {"n_training": int(len(train["y"])), "source_caps": recipe["source_caps"],
            "compact_weights": {m: round(float(v), 4) for m, v in zip(MEASURES, coef)},
            "candidates": rows, "floor": floor}


def joint(crops: np.ndarray, mesh) -> np.ndarray:
    return np.array([joint_features(mesh.points(c)) for c in crops])


def fit_joint(crops: np.ndarray, labels: np.ndarray, mesh) -> Tuple[np.ndarray, float]:
    """Study J's head by the shipped head's recipe: the faces and their low-res copies (seed 1)."""
    from happyhouse.train.augment import augment_batch
    from happyhouse.train.geometry import LOWRES_COPY
    from happyhouse.train.logistic import fit_logistic

    soft = augment_batch(crops, LOWRES_COPY, np.random.default_rng(1))
    x = np.concatenate([joint(crops, mesh), joint(soft, mesh)])
    return fit_logistic(x, np.concatenate([labels, labels]), L2)


def joint_direction(model: Path, held_out: Path, cache: Path, mesh) -> dict:
    """Study J in one direction: the joint head replaces the 936 head, fused 0.7:0.3."""
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.daemon.geometry import fuse, sigmoid
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train.label_audit import split_faces

    scores = held_out_scores(model, held_out, cache)

    def make():
        _, labels, crops = split_faces(model, [trained_on(model)], part="training")
        coef, bias = fit_joint(crops, labels, mesh)
        print(f"{model}: joint head fitted on {len(crops)} training faces", flush=True)
        out = {}
        for c, images in held_out_copies(model, held_out, scores).items():
            out[c] = sigmoid(joint(images, mesh) @ coef + bias)
            print(f"{held_out.name} {c}: {len(images)} faces scored by the joint head", flush=True)
        return out

    head = cached(cache / f"joint-{held_out.name}-{sha256_file(model)[:12]}.npz", make)
    rows = {}
    for name, pick in (("shipped 0.7:0.3", lambda c: scores[f"{c}/geometry"]), ("J 0.7:0.3", lambda c: head[c]),
                       ("joint head alone", None)):
        row = {}
        for c in head:
            y = scores["labels"][scores[f"{c}/which"]]
            s = head[c] if pick is None else fuse(scores[f"{c}/classifier"], pick(c), (0.7, 0.3))
            row[c] = round(float(roc_auc(y, s)), 4)
        row["mean_auc"] = round(float(np.mean([row[c] for c in head])), 4)
        rows[name] = row
    return {"model": str(model), "held_out": held_out.name, "candidates": rows}


def joint_in_domain(cache: Path, shipped_cache: Path, mesh) -> dict:
    """Study J's floor: the joint head refit by the shipped recipe, on the general split."""
    from aligned_crop_study import data_paths
    from ensemble_study import AUDITS, SHIPPED, classifier_scores, faces_and_geometry, judged

    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.daemon.geometry import fuse, sigmoid
    from happyhouse.train.audits import load_audits
    from happyhouse.train.data import capped
    from happyhouse.train.label_audit import split_faces

    recipe = json.loads((SHIPPED.parent / "geometry.json").read_text())
    names, labels, copies, geometry = faces_and_geometry(data_paths(), shipped_cache)

    def make():
        t_names, t_labels, t_crops = split_faces(SHIPPED, data_paths(), part="training")
        keep = capped(t_names, recipe["source_caps"], recipe["cap_seed"])
        coef, bias = fit_joint(t_crops[keep], t_labels[keep], mesh)
        print(f"shipped split: joint head fitted on {int(keep.sum())} training faces", flush=True)
        return {c: sigmoid(joint(faces, mesh) @ coef + bias) for c, (_, faces) in copies.items()}

    head = cached(cache / f"joint-general-{sha256_file(SHIPPED)[:12]}.npz", make)
    classifier = classifier_scores(SHIPPED, copies, shipped_cache)
    audit = load_audits([Path(a) for a in AUDITS])
    rows = {"shipped 0.7:0.3": judged(names, labels, copies,
                                      {c: fuse(classifier[c], geometry[c], (0.7, 0.3)) for c in copies}, audit),
            "J 0.7:0.3": judged(names, labels, copies,
                                {c: fuse(classifier[c], head[c], (0.7, 0.3)) for c in copies}, audit),
            "joint head alone": judged(names, labels, copies, head, audit)}
    return {"candidates": rows,
            "keeps_floor": keeps_floor(rows["shipped 0.7:0.3"]["validation"], rows["J 0.7:0.3"]["validation"])}


def study_j(models: Dict[str, Tuple[Path, Path]], cache: Path, shipped_cache: Path, mesh) -> dict:
    """Study J (reports/README.md, loso/): study M's rule for the joint head."""
    directions = {label: joint_direction(m, h, cache, mesh) for label, (m, h) in models.items()}
    gains = {d: round(directions[d]["candidates"]["J 0.7:0.3"]["mean_auc"]
                      - directions[d]["candidates"]["shipped 0.7:0.3"]["mean_auc"], 4) for d in directions}
    first = gains.get("A", 0) >= MIN_GAIN_A and gains.get("B", 0) >= 0 and {"A", "B"} <= set(gains)
    shipped = joint_in_domain(cache, shipped_cache, mesh) if first else None
    return {"directions": directions, "gains": gains, "passes_cross_source_step": bool(first),
            "shipped_split": shipped, "adopt": bool(first and shipped["keeps_floor"])}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--direction", nargs=3, action="append", required=True, metavar=("NAME", "MODEL", "HELD_OUT"))
    p.add_argument("--cache", type=Path, default=Path("runs/loso/cache"))
    p.add_argument("--shipped-cache", type=Path, default=Path("runs/classifier-mix"),
                   help="where the shipped model's validation scores are cached")
    p.add_argument("--json", type=Path)
    p.add_argument("--joint", action="store_true",
                   help="study J instead: one head over the 936 coordinates and the 15 measures")
    args = p.parse_args(argv)

    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh

    mesh = FaceMesh(ASSET_DIR / MESH_FILE)
    if args.joint:
        result = study_j({label: (Path(m), Path(h)) for label, m, h in args.direction},
                         args.cache, args.shipped_cache, mesh)
        for label, d in result["directions"].items():
            for c, row in d["candidates"].items():
                print(f"{label} {c:>18}  mean {row['mean_auc']:.4f}  "
                      + "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "mean_auc"))
        for c, row in (result["shipped_split"] or {}).get("candidates", {}).items():
            v = row["validation"]
            print(f"shipped split {c:>18}  validation {v['auc']:.4f} / {v['auc_audited']:.4f}  "
                  f"recall {v['recall_audited']:.3f}  door copies {row['door_mean_auc']:.4f}")
        print(json.dumps({k: result[k] for k in ("gains", "passes_cross_source_step", "adopt")}, indent=1))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "what": "study J: one logistic head over the 936 aligned coordinates and the 15 measures, "
                        "replacing the 936 head in the 0.7:0.3 fusion; held-out ROC AUC (datasets' labels), "
                        "then the in-domain floor", "l2": L2, **result}, indent=1) + "\n")
        return 0
    directions = {label: direction(Path(m), Path(h), args.cache, mesh) for label, m, h in args.direction}
    for label, d in directions.items():
        for c, row in d["candidates"].items():
            print(f"{label} {c:>18}  mean {row['mean_auc']:.4f}  "
                  + "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "mean_auc"))
    decision = decide(directions) if {"A", "B"} <= set(directions) else None
    shipped = None
    if decision and decision["chosen"]:  # the rule's second step, for the candidates that passed
        shipped = in_domain(args.cache, args.shipped_cache, mesh)
        for c, row in shipped["candidates"].items():
            v = row["validation"]
            print(f"shipped split {c:>18}  validation {v['auc']:.4f} / {v['auc_audited']:.4f}  "
                  f"recall {v['recall_audited']:.3f}  door copies {row['door_mean_auc']:.4f} / "
                  f"{row['door_mean_auc_audited']:.4f}")
        decision["in_domain"] = shipped["floor"]
        decision["adopt"] = bool(shipped["floor"][decision["chosen"]]["keeps_floor"])
    print(json.dumps(decision, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "study M: a logistic head over 15 named smile measures, fitted on one source, judged with "
                    "the direction's classifier and 936-coordinate head on every face of the other source "
                    "and its door copies (held-out ROC AUC, the datasets' labels)",
            "measures": list(MEASURES), "l2": L2,
            "candidates": {c: list(w) for c, w in CANDIDATES.items()},
            "directions": directions, "shipped_split": shipped, "decision": decision}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
