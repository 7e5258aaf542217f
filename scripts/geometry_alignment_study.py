#!/usr/bin/env python3
"""How should the face mesh's points be aligned, and what should the geometry head learn from? (issue 15, a study)

The shipped head aligns each face by its two outer eye corners (mesh points 33 and
263): level, centred, unit distance. On a small, soft door face every landmark is
noisy, and one noisy eye corner moves the rotation, scale and centre of all 936
features; a head turned a little also moves every point. The variants align by
least squares over all 468 points instead (Procrustes, to the training faces' mean
shape), in 2D or in 3D (the mesh gives a depth per point, so a 3D rotation takes out
yaw and pitch too), and one adds each training face's mirror image.

Every head is the shipped one's recipe (class-balanced L2 logistic, ``DEFAULT_L2``,
the training split plus its low-res copies). Judged on the general validation split
and its three door copies, by the datasets' labels and the audited ones: the head
alone and fused 0.7:0.3 with the shipped classifier.

``mix`` keeps the shipped alignment and changes what the head learns from: without
the low-res copies, GENKI-4K with only 1,500 SMILEsmileD faces (the issue's first
probe), or each source weighted to half; judged on the GENKI-4K faces (colour, in the
wild: the nearer proxy for a door) and pooled.

The rules, written before each run, are quoted in ``reports/README.md``
(``geometry-alignment/``). Never reads door frames.

::

    python scripts/geometry_alignment_study.py points    # mesh points of every face, 2 min on 2 cores
    python scripts/geometry_alignment_study.py compare --json reports/geometry-alignment/metrics.json
    python scripts/geometry_alignment_study.py mix --json reports/geometry-alignment/training-mix.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aligned_crop_study import data_paths  # noqa: E402  (sibling study scripts)
from ensemble_study import AUDITS, COPIES, SHIPPED, classifier_scores, faces_and_geometry  # noqa: E402

CACHE = Path("runs/geometry-alignment")
#: the seed the shipped head's low-res copies were drawn with (train/geometry.py --seed)
LOWRES_SEED = 1
#: the issue's first probe: GENKI-4K and this many SMILEsmileD faces
PROBE_SMILESMILED, PROBE_SEED = 1500, 0
#: generalised Procrustes: rounds of "align every face to the mean, re-take the mean"
GPA_ROUNDS = 5


def mesh_points(crops: np.ndarray, mesh) -> np.ndarray:
    """(N, 468, 3) float32 mesh points of uint8 RGB face crops (the head's own mesh input)."""
    return np.stack([mesh.points(c) for c in crops]).astype(np.float32)


def points(args) -> None:
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh
    from happyhouse.train.augment import augment_batch
    from happyhouse.train.geometry import LOWRES_COPY
    from happyhouse.train.label_audit import split_faces

    args.cache.mkdir(parents=True, exist_ok=True)
    mesh = FaceMesh(ASSET_DIR / MESH_FILE)
    _, y_train, train = split_faces(SHIPPED, data_paths(), "training")
    soft = augment_batch(train, LOWRES_COPY, np.random.default_rng(LOWRES_SEED))
    names, labels, copies, _ = faces_and_geometry(data_paths(), args.cache)
    out = {"y_train": y_train, "train": mesh_points(train, mesh), "lowres": mesh_points(soft, mesh)}
    for copy, (which, faces) in copies.items():
        out["which " + copy], out["points " + copy] = which, mesh_points(faces, mesh)
        print(copy, len(faces), flush=True)
    np.savez(args.cache / "points.npz", **out)


# --- alignments ----------------------------------------------------------------------------

def eye_corners(p: np.ndarray) -> np.ndarray:
    """(N, 468, 3) -> (N, 936): the shipped alignment, face by face."""
    from happyhouse.daemon.geometry import features

    return np.stack([features(q) for q in p])


def _similarity(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``src`` (468, d) moved onto ``ref`` (centred, unit size) by rotation, scale, shift."""
    a = src - src.mean(0)
    u, s, vt = np.linalg.svd(a.T @ ref)
    d = np.ones(len(s))
    d[-1] = np.sign(np.linalg.det(u @ vt))  # a rotation, never a reflection
    rot = (u * d) @ vt
    scale = float((s * d).sum() / (a ** 2).sum())
    return scale * a @ rot


def mean_shape(p: np.ndarray, dims: int) -> np.ndarray:
    """Generalised Procrustes mean of the first ``dims`` coordinates: centred, unit norm."""
    ref = p[0, :, :dims].astype(np.float64)
    ref = ref - ref.mean(0)
    ref /= np.linalg.norm(ref)
    for _ in range(GPA_ROUNDS):
        ref = np.mean([_similarity(q[:, :dims].astype(np.float64), ref) for q in p], axis=0)
        ref = ref - ref.mean(0)
        ref /= np.linalg.norm(ref)
    return ref


def procrustes(p: np.ndarray, ref: np.ndarray, keep: int) -> np.ndarray:
    """(N, 468, 3) -> (N, 468 * keep): each face aligned to ``ref``, its first ``keep`` coordinates."""
    dims = ref.shape[1]
    return np.stack([_similarity(q[:, :dims].astype(np.float64), ref)[:, :keep].reshape(-1)
                     for q in p])


def mirror_order(ref: np.ndarray) -> np.ndarray:
    """Each point's left-right partner on the (near-symmetric) mean shape.

    The mean shape comes out in an arbitrary frame; it is first turned so its
    eye-corner line is the x axis and centred on its mean x (the midline of a
    symmetric face), so that negating x mirrors it; each point's partner is the
    nearest point of that mirror image.
    """
    from happyhouse.daemon.geometry import EYE_OUTER

    axis = ref[EYE_OUTER[1]] - ref[EYE_OUTER[0]]
    axis = axis / np.linalg.norm(axis)
    # a rotation taking the eye line onto x: complete it to an orthonormal basis
    basis = np.linalg.qr(np.column_stack([axis, np.eye(len(axis))[:, 1:]]))[0]
    basis *= np.sign(basis[:, 0] @ axis)
    level = ref @ basis
    level[:, 0] -= level[:, 0].mean()
    flipped = level * np.array([-1.0] + [1.0] * (level.shape[1] - 1))
    d = ((flipped[:, None, :] - level[None, :, :]) ** 2).sum(-1)
    return d.argmin(1)


def mirrored(p: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The mesh a mirror image of the face would give: x negated, points renumbered."""
    q = p[:, order].copy()
    q[..., 0] = -q[..., 0]
    return q


# --- judging -------------------------------------------------------------------------------

def variants(train: np.ndarray) -> Dict[str, Callable[[np.ndarray], np.ndarray]]:
    ref2, ref3 = mean_shape(train, 2), mean_shape(train, 3)
    return {"A0 eye-corners xy (shipped)": eye_corners,
            "A1 procrustes-2d xy": lambda p: procrustes(p, ref2, 2),
            "A2 procrustes-3d xy": lambda p: procrustes(p, ref3, 2),
            "A3 procrustes-3d xyz": lambda p: procrustes(p, ref3, 3)}


def judge(names, labels, which_by_copy, geo: Dict[str, np.ndarray], cls: Dict[str, np.ndarray],
          audit) -> dict:
    from happyhouse.daemon.geometry import fuse
    from happyhouse.train.label_audit import audited_figures

    row: Dict[str, dict] = {}
    for copy in COPIES:
        which = which_by_copy[copy]
        n = [names[i] for i in which]
        g = audited_figures(n, labels[which], geo[copy], audit)
        f = audited_figures(n, labels[which], fuse(cls[copy], geo[copy], (0.7, 0.3)), audit)
        row[copy] = {"geometry_auc": g["dataset_labels"]["roc_auc"],
                     "geometry_auc_audited": g["audited_labels"]["roc_auc"],
                     "fused_auc": f["dataset_labels"]["roc_auc"],
                     "fused_auc_audited": f["audited_labels"]["roc_auc"],
                     "fused_recall_audited": f["audited_labels"]["recall"]}
    doors = [c for c in COPIES if c != "validation"]
    for key in ("geometry_auc", "geometry_auc_audited", "fused_auc", "fused_auc_audited"):
        row["door_mean_" + key] = round(float(np.mean([row[c][key] for c in doors])), 4)
    return row


def compare(args) -> None:
    from happyhouse.train.audits import load_audits
    from happyhouse.train.geometry import DEFAULT_L2
    from happyhouse.train.logistic import fit_logistic

    f = np.load(args.cache / "points.npz")
    names, labels, copies, _ = faces_and_geometry(data_paths(), args.cache)
    cls = classifier_scores(SHIPPED, copies, args.cache)
    audit = load_audits([Path(a) for a in AUDITS])
    which = {c: f["which " + c] for c in COPIES}
    train = np.concatenate([f["train"], f["lowres"]])
    y = np.concatenate([f["y_train"], f["y_train"]])

    def head_scores(feature: Callable, x_train: np.ndarray, y_train: np.ndarray) -> Dict[str, np.ndarray]:
        coef, bias = fit_logistic(feature(x_train), y_train, DEFAULT_L2)
        return {c: 1.0 / (1.0 + np.exp(-(feature(f["points " + c]) @ coef + bias))) for c in COPIES}

    rows = {}
    for name, feature in variants(f["train"]).items():
        rows[name] = judge(names, labels, which, head_scores(feature, train, y), cls, audit)
        print(name, json.dumps(rows[name]), flush=True)
    best = max((n for n in rows if not n.startswith("A0")),
               key=lambda n: rows[n]["door_mean_geometry_auc"])
    order = mirror_order(mean_shape(f["train"], 3))
    feature = variants(f["train"])[best]
    name = "A4 " + best[3:] + " + mirrored faces"
    rows[name] = judge(names, labels, which,
                       head_scores(feature, np.concatenate([train, mirrored(train, order)]),
                                   np.concatenate([y, y])), cls, audit)
    print(name, json.dumps(rows[name]), flush=True)
    print("mirror order: an involution on", int(np.sum(order[order] == np.arange(len(order)))),
          "of", len(order), "points", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "geometry heads (the shipped recipe) over differently aligned face-mesh points, "
                    "alone and fused 0.7:0.3 with the shipped classifier, on the general validation "
                    "split and its door copies, by the datasets' and the audited labels",
            "commands": ["python scripts/geometry_alignment_study.py points",
                         "python scripts/geometry_alignment_study.py compare --json "
                         "reports/geometry-alignment/metrics.json"],
            "variants": rows}, indent=1) + "\n")

def source_of(names) -> np.ndarray:
    return np.array([n.split("/")[0] for n in names])


def mix(args) -> None:
    """The shipped alignment; heads learnt from different mixes of the training faces."""
    from aligned_crop_study import by_source_auc

    from happyhouse.daemon.geometry import fuse
    from happyhouse.train.audits import load_audits
    from happyhouse.train.geometry import DEFAULT_L2
    from happyhouse.train.label_audit import split_faces
    from happyhouse.train.logistic import fit_logistic

    f = np.load(args.cache / "points.npz")
    names, labels, copies, _ = faces_and_geometry(data_paths(), args.cache)
    cls = classifier_scores(SHIPPED, copies, args.cache)
    audit = load_audits([Path(a) for a in AUDITS])
    train_names, y, _ = split_faces(SHIPPED, data_paths(), "training")
    if not np.array_equal(y, f["y_train"]):
        raise SystemExit("the cached points are not of these training faces: run `points` again")
    source = source_of(train_names)
    x, x_soft = eye_corners(f["train"]), eye_corners(f["lowres"])
    x_both, y_both, source_both = np.concatenate([x, x_soft]), np.concatenate([y, y]), \
        np.concatenate([source, source])
    smile = np.flatnonzero(source == "smilesmiled")
    picked = np.zeros(len(y), bool)
    picked[source == "genki4k-train"] = True
    picked[np.random.default_rng(PROBE_SEED).choice(smile, PROBE_SMILESMILED, replace=False)] = True
    half = {s: 0.5 * len(source_both) / np.sum(source_both == s) for s in set(source_both)}
    heads = {"H0 all faces + low-res copies (shipped)": (x_both, y_both, None),
             "H1 all faces, no low-res copies": (x, y, None),
             "H2 GENKI-4K + 1,500 SMILEsmileD + low-res copies":
                 (x_both, y_both, np.concatenate([picked, picked]).astype(float)),
             "H3 all faces + low-res copies, each source weighted to half":
                 (x_both, y_both, np.array([half[s] for s in source_both]))}
    rows = {}
    doors = [c for c in COPIES if c != "validation"]
    for name, (xx, yy, weight) in heads.items():
        coef, bias = fit_logistic(xx, yy, DEFAULT_L2, sample_weight=weight)
        row = {}
        for copy in COPIES:
            which = f["which " + copy]
            n = [names[i] for i in which]
            geo = 1.0 / (1.0 + np.exp(-(eye_corners(f["points " + copy]) @ coef + bias)))
            row[copy] = {"geometry": by_source_auc(n, labels[which], geo, audit),
                         "fused": by_source_auc(n, labels[which], fuse(cls[copy], geo, (0.7, 0.3)), audit)}
            pooled = judge_pooled(n, labels[which], geo, fuse(cls[copy], geo, (0.7, 0.3)), audit)
            row[copy].update(pooled)
        for stage in ("geometry", "fused"):
            for key in ("auc", "auc_audited"):
                row[f"genki_door_mean_{stage}_{key}"] = round(float(np.mean(
                    [row[c][stage]["genki4k-train"][key] for c in doors])), 4)
        rows[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k.startswith("genki")}),
              json.dumps({"validation pooled": row["validation"]["pooled"]}), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "geometry heads (eye-corner alignment, the shipped recipe otherwise) learnt from "
                    "different mixes of the training faces, alone and fused 0.7:0.3 with the shipped "
                    "classifier, per source and pooled, on the general validation split and its "
                    "door copies, by the datasets' and the audited labels",
            "command": "python scripts/geometry_alignment_study.py mix --json "
                       "reports/geometry-alignment/training-mix.json",
            "probe": {"smilesmiled_faces": PROBE_SMILESMILED, "seed": PROBE_SEED},
            "variants": rows}, indent=1) + "\n")


def judge_pooled(names, labels, geo, fused, audit) -> dict:
    from happyhouse.train.label_audit import audited_figures

    out = {}
    for stage, scores in (("geometry", geo), ("fused", fused)):
        f = audited_figures(names, labels, scores, audit)
        out[stage] = {"auc": f["dataset_labels"]["roc_auc"], "auc_audited": f["audited_labels"]["roc_auc"]}
    return {"pooled": out}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, default=CACHE)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("points")
    for name in ("compare", "mix"):
        sub.add_parser(name).add_argument("--json", type=Path)
    args = p.parse_args(argv)
    {"points": points, "compare": compare, "mix": mix}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
