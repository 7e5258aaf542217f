#!/usr/bin/env python3
"""Would a stronger geometry head help the fused score at a door? (issue 15, a study)

The geometry head is a logistic regression over the 936 aligned mesh
coordinates. This compares it with a small MLP (64 ReLU units beside the
linear term) and with an extra door-strong augmented copy of the training
faces, each fused with the shipped classifier at 0.7:0.3, 0.6:0.4 and 0.5:0.5,
on the general validation split (V), its door-shifted copy (S), the door-framed
copy (F) and both (FS). The rule, written before measuring: the highest mean
fused AUC over S, F and FS, adopted only if it beats the shipped head by
>= 0.003 without losing clean AUC (> 0.001) or recall (> 1 point).

    python scripts/geometry_head_study.py features --out runs/geometry-heads/features.npz   # 2 min
    python scripts/geometry_head_study.py compare runs/geometry-heads/features.npz          # 1 min

Desktop-only (Keras); the Happy House frames are not read.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GENERAL = REPO / "models" / "general" / "model.keras"
WEIGHTS = ((0.7, 0.3), (0.6, 0.4), (0.5, 0.5))


def features(args):
    from happyhouse.daemon.datasets import data_root
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh
    from happyhouse.train import label_audit as la
    from happyhouse.train.augment import PRESETS, augment_batch
    from happyhouse.train.data import load_training_data
    from happyhouse.train.geometry import LOWRES_COPY, mesh_features, validation_mask
    from happyhouse.train.trainer import load_model, predict

    root = data_root()
    spec = la.model_contract(GENERAL)
    data = load_training_data([str(root / "genki4k-train"), str(root / "smilesmiled")], spec.geometric())
    is_val = validation_mask(data.ids, GENERAL.parent / "split.json")
    mesh, train = FaceMesh(ASSET_DIR / MESH_FILE), data.images[~is_val]
    out = {"y_train": data.labels[~is_val], "y_val": data.labels[is_val],
           "x_train": mesh_features(train, mesh),
           "x_lowres": mesh_features(augment_batch(train, LOWRES_COPY, np.random.default_rng(0)), mesh),
           "x_door": mesh_features(augment_batch(train, PRESETS["door-strong"], np.random.default_rng(0)), mesh)}
    model = load_model(GENERAL)
    crops = data.images[is_val]
    copies = {"V": (np.arange(len(crops)), crops)}
    copies.update(zip(("S", "F", "FS"), la.door_copies(crops).values()))
    for name, (which, faces) in copies.items():
        out["which_" + name], out["x_" + name] = which, mesh_features(faces, mesh)
        out["cls_" + name] = predict(model, faces, spec)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **out)


def fit_mlp(x, y, hidden=64, wd=1e-3, lr=1e-3, epochs=200, patience=15, seed=0):
    """Class-balanced logistic loss, a linear term plus one ReLU layer, Adam, early stopping
    on a tenth of the training faces. Returns a scoring function."""
    rng = np.random.default_rng(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-8
    z = (x - mu) / sd
    idx = rng.permutation(len(z))
    held, fit = idx[:len(z) // 10], idx[len(z) // 10:]
    d = z.shape[1]
    p = {"W": rng.normal(0, 1 / np.sqrt(d), (d, hidden)), "c": np.zeros(hidden),
         "v": rng.normal(0, 0.1 / np.sqrt(hidden), hidden), "w": np.zeros(d), "b": np.zeros(1)}
    cw = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    m1 = {k: np.zeros_like(v) for k, v in p.items()}
    m2 = {k: np.zeros_like(v) for k, v in p.items()}

    def forward(zz):
        h = np.maximum(zz @ p["W"] + p["c"], 0)
        return zz @ p["w"] + p["b"][0] + h @ p["v"], h

    def loss(ii):
        s, _ = forward(z[ii])
        return float((cw[ii] * (np.logaddexp(0, s) - y[ii] * s)).mean())

    best, step = (np.inf, None, 0), 0
    for epoch in range(epochs):
        order = rng.permutation(fit)
        for k in range(0, len(order), 256):
            ii = order[k:k + 256]
            s, h = forward(z[ii])
            g = cw[ii] * (1 / (1 + np.exp(-s)) - y[ii]) / len(ii)
            gh = np.outer(g, p["v"]) * (h > 0)
            grads = {"v": h.T @ g + wd * p["v"], "w": z[ii].T @ g + wd * p["w"], "b": np.array([g.sum()]),
                     "W": z[ii].T @ gh + wd * p["W"], "c": gh.sum(0)}
            step += 1
            for key, grad in grads.items():
                m1[key] = 0.9 * m1[key] + 0.1 * grad
                m2[key] = 0.999 * m2[key] + 0.001 * grad ** 2
                p[key] -= lr * (m1[key] / (1 - 0.9 ** step)) / (np.sqrt(m2[key] / (1 - 0.999 ** step)) + 1e-8)
        held_loss = loss(held)
        if held_loss < best[0] - 1e-5:
            best = (held_loss, {k: v.copy() for k, v in p.items()}, epoch)
        elif epoch - best[2] >= patience:
            break
    p.update(best[1])
    return lambda xx: 1 / (1 + np.exp(-forward((xx - mu) / sd)[0]))


def fit_linear(x, y):
    from happyhouse.train.geometry import DEFAULT_L2
    from happyhouse.train.logistic import fit_logistic

    coef, bias = fit_logistic(x, y, DEFAULT_L2)
    return lambda xx: 1 / (1 + np.exp(-(xx @ coef + bias)))


def compare(args):
    from happyhouse.daemon.geometry import fuse
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train.framing import recall_at

    f = np.load(args.features)
    y = f["y_train"]
    sets = {"clean+lowres": (np.concatenate([f["x_train"], f["x_lowres"]]), np.concatenate([y, y])),
            "clean+lowres+door": (np.concatenate([f["x_train"], f["x_lowres"], f["x_door"]]),
                                  np.concatenate([y, y, y]))}
    heads = {"H0 logistic, clean+lowres (shipped)": fit_linear(*sets["clean+lowres"]),
             "H1 logistic, +door-strong copy": fit_linear(*sets["clean+lowres+door"]),
             "H2 MLP, clean+lowres": fit_mlp(*sets["clean+lowres"]),
             "H3 MLP, +door-strong copy": fit_mlp(*sets["clean+lowres+door"])}
    rows = {}
    for head, score in heads.items():
        for w in WEIGHTS:
            row = {}
            for part in ("V", "S", "F", "FS"):
                labels = f["y_val"][f["which_" + part]]
                geo = score(f["x_" + part])
                fused = fuse(f["cls_" + part], geo, w)
                row[part] = {"fused_auc": round(roc_auc(labels, fused), 4),
                             "fused_recall": round(recall_at(labels, fused), 3),
                             "geometry_auc": round(roc_auc(labels, geo), 4)}
            row["proxy"] = round(float(np.mean([row[p]["fused_auc"] for p in ("S", "F", "FS")])), 4)
            rows[f"{head} {w[0]}:{w[1]}"] = row
            print(f"{head} {w[0]}:{w[1]}", json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("features")
    q.add_argument("--out", required=True)
    q = sub.add_parser("compare")
    q.add_argument("features")
    q.add_argument("--json")
    args = p.parse_args(argv)
    {"features": features, "compare": compare}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
