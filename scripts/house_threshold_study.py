#!/usr/bin/env python3
"""How should a small house choose its threshold? Studied on pseudo-houses, not on a door.

A house adapts on ~120 of its own frames, and its threshold comes from their
out-of-fold scores. This study runs the house protocol (``happyhouse.train.house_cv``,
refit) on *pseudo-houses* made from the general validation split (faces no model
here trained on), each with one consistent door look, saves every score, and
compares threshold and fusion rules on them. The Happy House frames are not read.

    python scripts/house_threshold_study.py pseudo --house 0 --out runs/pseudo   # ~8 min each
    python scripts/house_threshold_study.py analyse runs/pseudo/house*.npz

``analyse`` works on any ``--scores-out`` file of house_cv as well. ``deployed`` scores
the door a pseudo-house ships on fresh faces of its look; ``either`` opens when the
adapted door or the general bundle would (from the saved scores and ``features``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from happyhouse.train import house_rules

N_HAPPY, N_NOT = 84, 66  # the Happy House frames' class sizes


def door_look(crops: np.ndarray, seed: int) -> np.ndarray:
    """One door's look for every face: one size, one gamma, one softness, one colour cast."""
    import cv2

    rng = np.random.default_rng(seed)
    side, gamma = int(rng.integers(20, 33)), float(rng.uniform(1.4, 2.4))
    cast = rng.uniform(0.85, 1.15, size=3)
    out = np.empty_like(crops)
    for i, im in enumerate(crops):
        small = cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
        im = cv2.resize(small, im.shape[1::-1], interpolation=cv2.INTER_LINEAR) / 255.0
        im = np.clip(np.power(im, gamma) * cast, 0.0, 1.0)
        out[i] = cv2.GaussianBlur((im * 255.0).astype(np.uint8), (0, 0), 0.6)
    return out


def build_house(args, look: Optional[int] = None):
    """Pseudo-house ``args.house``: 84 smiling and 66 (``args.not_smiling`` if set) not-smiling
    validation faces with one door look (deterministic).

    ``look``: another house's look for these faces (fresh faces of that house's door)."""
    from happyhouse.convert.metadata import find_metadata, read_metadata
    from happyhouse.train.data import load_training_data
    from happyhouse.train.geometry import validation_mask

    init = Path(args.init)
    spec = read_metadata(find_metadata(init)).preprocess
    data = load_training_data([str(d) for d in args.data], spec.geometric())
    val = np.flatnonzero(validation_mask(data.ids, init.parent / "split.json"))
    rng = np.random.default_rng(args.sample_seed)  # one permutation: houses are disjoint
    happy = rng.permutation(val[data.labels[val] == 1])
    nothappy = rng.permutation(val[data.labels[val] == 0])
    h, n_not = args.house, getattr(args, "not_smiling", None) or N_NOT
    pick = np.concatenate([happy[h * N_HAPPY:(h + 1) * N_HAPPY],
                           nothappy[h * n_not:(h + 1) * n_not]])
    if len(pick) != N_HAPPY + n_not:
        raise SystemExit(f"house {h}: the validation split has too few faces")
    house = data.subset(pick)
    house.images = door_look(house.images, 2000 + (h if look is None else look))
    return house


def pseudo(args) -> int:
    from happyhouse.train import house_cv
    from happyhouse.train.data import stratified_folds
    from happyhouse.train.geometry import stage_beside

    init, h = Path(args.init), args.house
    house = build_house(args)
    stage = stage_beside(init)[0]
    geo = np.array([stage.score(im) for im in house.images])
    has_face = np.ones(len(house), bool)
    fold = stratified_folds(house.labels, 5, h)
    pargs = argparse.Namespace(
        data=Path(f"pseudo-house-{h}"), init=init, work=Path(args.work) / f"house{h}", k=5,
        seed=args.seed, epochs=100, patience=30, lr=2e-3, scratch=None, batch_size=16,
        augment="light", max_false_open=0.01, protocol="refit", inner_k=4, crop="face",
        train_frames=None, no_geometry=False)
    # the general head here: the study fits house heads itself, from the saved scores
    cv = house_cv.cross_validate(pargs, house, has_face, fold,
                                 house_cv.Fusion(geo, stage.spec.weights, general_head=stage.head))
    out = Path(args.out) / f"house{h}-seed{args.seed}.npz"
    house_cv.save_scores(out, house.labels, has_face, fold, geo, cv, stage.spec.weights)
    sys.stdout.write(f"{out}: {json.dumps([{k: x[k] for k in ('fold', 'errors', 'false_opens', 'threshold')} for x in cv['folds']])}\n")
    return 0


def deployed(args) -> int:
    """What a pseudo-house's deployed door does on fresh faces of its own door.

    The protocol's refit, as ``happyhouse-adapt`` ships it: one model on all the
    house's faces, its fused threshold from its 4 inner folds, the house-corrected
    geometry head. Then as many faces it never saw (the next house's) given this
    house's look are scored by that door: false opens and recall at the shipped
    threshold. ``--not-smiling N``: houses that collected N not-smiling faces.
    """
    from happyhouse.daemon.datasets import Dataset
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train import house_cv
    from happyhouse.train.trainer import inherited_normalize, predict

    init, h = Path(args.init), args.house
    house = build_house(args)
    fresh = build_house(argparse.Namespace(**{**vars(args), "house": (h + 1) % 4}), look=h)
    both = Dataset(np.concatenate([house.images, fresh.images]),
                   np.concatenate([house.labels, fresh.labels]), house.ids + fresh.ids)
    has_face = np.ones(len(both), bool)
    rest, test = np.arange(len(house)), np.arange(len(house), len(both))
    pargs = argparse.Namespace(
        data=Path(f"pseudo-house-{h}"), init=init, work=Path(args.work) / f"deployed{h}", k=5,
        seed=args.seed, epochs=100, patience=30, lr=2e-3, scratch=None, batch_size=16,
        augment="light", max_false_open=0.01, protocol="refit", inner_k=4, crop="face",
        train_frames=None, no_geometry=False, geometry_head="house")
    _, fusion = house_cv.fusion_for(pargs, both.images, has_face, both.labels)
    model, threshold, info, _ = house_cv.refit_fold(pargs, both, rest, 0, test, fusion)
    raw = predict(model, fresh.images, Preprocess(normalize=inherited_normalize(init)))
    scores = fusion(rest, test, raw)
    inner = info[house_cv.OOF_KEY]["fused"]
    y = fresh.labels
    opened = scores >= threshold
    row = {"house": h, "seed": args.seed, "house_not_smiling": int(np.sum(house.labels == 0)),
           "threshold": round(float(threshold), 5),
           "inner_not_smiling_max": round(float(np.max(inner[house.labels == 0])), 5),
           "inner_recall": round(float(np.mean(inner[house.labels == 1] >= threshold)), 4),
           "fresh_false_opens": int(np.sum(opened & (y == 0))), "fresh_not_smiling": int(np.sum(y == 0)),
           "fresh_recall": round(float(np.mean(opened[y == 1])), 4),
           "fresh_accuracy": round(float(np.mean(opened == (y == 1))), 4),
           "fresh_scores": [round(float(v), 5) for v in scores], "fresh_labels": y.tolist()}
    more = f"-not{args.not_smiling}" if args.not_smiling else ""
    out = Path(args.out) / f"deployed-house{h}-seed{args.seed}{more}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row) + "\n")
    sys.stdout.write(json.dumps({k: v for k, v in row.items() if not k.startswith("fresh_s")
                                 and k != "fresh_labels"}) + "\n")
    return 0


def features(args) -> int:
    """The 936 mesh features of every frame of a pseudo-house or of the Happy House frames."""
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh
    from happyhouse.train.geometry import mesh_features

    mesh = FaceMesh(ASSET_DIR / MESH_FILE)
    if args.happy_house:
        from happyhouse.daemon.preprocess import Preprocess
        from happyhouse.train.data import door_face_crops, load_training_data

        data = load_training_data([str(args.happy_house)], Preprocess(crop="frame", size=64))
        crops, has_face = door_face_crops(data.images, Preprocess(crop="face", margin=0.0, size=64))
        x = np.full((len(data), 936), np.nan)
        x[has_face] = mesh_features(crops[has_face], mesh)
        labels = data.labels
    else:
        house = build_house(args)
        x, labels = mesh_features(house.images, mesh), house.labels
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, features=x, labels=labels)
    sys.stdout.write(f"{args.out}: {x.shape}\n")
    return 0


def soup(args) -> int:
    """Score each fold's test frames with the weight average of its 5 models (4 inner + refit)."""
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train.soup import average
    from happyhouse.train.trainer import inherited_normalize, load_model, predict

    saved = dict(np.load(args.scores))
    if args.happy_house:
        from happyhouse.train.data import door_face_crops, load_training_data

        data = load_training_data([str(args.happy_house)], Preprocess(crop="frame", size=64))
        crops, _ = door_face_crops(data.images, Preprocess(crop="face", margin=0.0, size=64))
    else:
        crops = build_house(args).images
    normalized = Preprocess(normalize=inherited_normalize(Path(args.init)))
    soup_scores = saved["classifier"].copy()
    fold = saved["fold"]
    for f in range(int(fold.max()) + 1):
        folder = Path(args.work) / f"fold{f}"
        paths = sorted(folder.glob("inner*/model.keras")) + [folder / "refit" / "model.keras"]
        models = [load_model(p) for p in paths]
        base = models[0]
        base.set_weights(average([m.get_weights() for m in models]))
        test = np.flatnonzero(fold == f)
        raw = predict(base, crops[test], normalized)
        soup_scores[test] = np.where(saved["has_face"][test], raw, 0.0)
        check = predict(models[-1], crops[test], normalized)  # the refit alone, as saved
        gap = float(np.abs(np.where(saved["has_face"][test], check, 0.0) - saved["classifier"][test]).max())
        sys.stdout.write(f"fold {f}: {len(paths)} models averaged; refit re-scored within {gap:.4f}\n")
    saved["classifier"] = soup_scores
    np.savez_compressed(args.out, **saved)
    sys.stdout.write(f"{args.out}\n")
    return 0


def probe(args) -> int:
    """The house protocol with a last-layer correction (``train/house_probe.py``) on pseudo-houses.

    Seconds per house once its faces are embedded; every L2 and inner-fold seed
    is run on the same faces and folds as ``pseudo`` (outer folds seeded by the
    house, inner by ``--seed`` + fold).
    """
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train import house_cv, house_probe
    from happyhouse.train.data import stratified_folds
    from happyhouse.train.geometry import stage_beside
    from happyhouse.train.trainer import inherited_normalize, load_model

    init = Path(args.init)
    stage = stage_beside(init)[0]
    model = load_model(init)
    normalized = Preprocess(normalize=inherited_normalize(init))
    rows = []
    for h in args.houses:
        args.house = h
        feats = dict(np.load(Path(args.features_dir) / f"house{h}-features.npz"))
        house = build_house(args)
        if not np.array_equal(feats["labels"], house.labels):
            raise SystemExit(f"house {h}: the features file is of other frames")
        if args.door_statistics:  # AdaBN: statistics re-estimated on each training set
            faces = house_probe.door_statistics_embedding(model, house.images, normalized)
        else:
            faces = house_probe.embed(model, house.images, normalized)
        x = feats["features"]
        general = np.array([stage.head.score(v) for v in x])
        fusion = house_cv.Fusion(general, stage.spec.weights, x, stage.head, house.labels)
        has_face = np.ones(len(house), bool)
        fold = stratified_folds(house.labels, 5, h)
        for seed in args.seeds:
            for l2 in args.l2:
                cv = house_probe.cross_validate(faces, house.labels, has_face, fold, fusion,
                                                l2=l2, seed=seed)
                wrong = cv["pred"] != house.labels
                row = {"house": h, "seed": seed, "l2": l2, "n": len(house),
                       "correct": int((~wrong).sum()),
                       "false_opens": int((wrong & (house.labels == 0)).sum()),
                       "missed": int((wrong & (house.labels == 1)).sum()),
                       "thresholds": [round(x["threshold"], 4) for x in cv["folds"]]}
                rows.append(row)
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
    table = []
    for l2 in args.l2:
        res = [r for r in rows if r["l2"] == l2]
        name = ("adabn-" if args.door_statistics else "") + f"probe-l2-{l2:g}"
        table.append({**pooled(name, res), "house_seeds": len(res), "runs": res})
    write_table(table, args.json)
    return 0


def pooled(variant: str, res: List[dict]) -> dict:
    """One variant's figures summed over its houses (each row: n, correct, false_opens, missed)."""
    n = sum(r["n"] for r in res)
    return {"variant": variant, "accuracy": sum(r["correct"] for r in res) / n,
            "false_opens": sum(r["false_opens"] for r in res),
            "max_false_opens_one_house": max(r["false_opens"] for r in res),
            "missed_smiles": sum(r["missed"] for r in res)}


def write_table(table: List[dict], json_path: Optional[str]) -> None:
    for t in table:
        sys.stdout.write(f"{t['variant']:<14} acc {100 * t['accuracy']:.1f}%  false opens "
                         f"{t['false_opens']} (max {t['max_false_opens_one_house']} in a house)  "
                         f"missed {t['missed_smiles']}\n")
    if json_path:
        Path(json_path).write_text(json.dumps(table, indent=1) + "\n")


def analyse(args) -> int:
    from happyhouse.train.geometry import stage_beside

    general = stage_beside(Path(args.init))[0].head if args.features else None
    if args.features and len(args.features) not in (1, len(args.scores)):
        raise SystemExit("give one --features file, or one per scores file")
    rows: Dict[str, List[dict]] = {}
    for i, path in enumerate(args.scores):
        saved = dict(np.load(path))
        x = None
        if args.features:
            f = dict(np.load(args.features[min(i, len(args.features) - 1)]))
            if not np.array_equal(f["labels"], saved["labels"]):
                raise SystemExit(f"{path}: the features file is of other frames")
            x = f["features"]
        for name, result in house_rules.study(saved, x, general, args.only).items():
            rows.setdefault(name, []).append({"file": Path(path).name, **result})
    table = [{**pooled(name, res), "houses": len(res),
              "per_house": [(r["file"], r["correct"], r["false_opens"]) for r in res]}
             for name, res in rows.items()]
    write_table(table, args.json)
    return 0


def either(args) -> int:
    """Open when the adapted door (GFR0) or the general bundle would open, on pseudo-houses.

    The adapted door misses faint smiles (its threshold sits above every not-smiling
    out-of-fold score); the general bundle opens rarely, with few false opens. Decided
    from the saved scores of ``pseudo`` (every seed given) and the general model's own
    fused score of the same faces at its bundle threshold; never reads door frames.
    """
    from happyhouse.daemon.bundle import load_bundle
    from happyhouse.daemon.geometry import fuse
    from happyhouse.train.geometry import stage_beside
    from happyhouse.train.label_audit import model_contract
    from happyhouse.train.trainer import load_model, predict

    init = Path(args.init)
    stage = stage_beside(init)[0]
    net, spec = load_model(init), model_contract(init)
    threshold = load_bundle(args.bundle).threshold
    rows, pooled = [], {}
    for h in args.houses:
        args.house = h
        house = build_house(args)
        x = dict(np.load(Path(args.scores_dir) / f"house{h}-features.npz"))["features"]
        general = fuse(predict(net, house.images, spec),
                       np.array([stage.head.score(v) for v in x]), stage.spec.weights) >= threshold
        y = house.labels == 1
        for seed in args.seeds:
            saved = dict(np.load(Path(args.scores_dir) / f"house{h}-seed{seed}.npz"))
            if not np.array_equal(saved["labels"], house.labels):
                raise SystemExit(f"house {h}, seed {seed}: the scores file is of other frames")
            adapted = house_rules.study(saved, x, stage.head, ["GFR0"], decisions=True)["GFR0"]["opened"]
            row = {"house": h, "seed": seed}
            for name, opened in (("GFR0", adapted), ("general bundle", general),
                                 ("GFR0 or general bundle", adapted | general)):
                row[name] = {"correct": int((opened == y).sum()), "false_opens": int((opened & ~y).sum())}
                total = pooled.setdefault(name, {"n": 0, "correct": 0, "false_opens": 0,
                                                 "not_smiling": 0})
                total["n"] += len(y)
                total["not_smiling"] += int((~y).sum())
                for k in ("correct", "false_opens"):
                    total[k] += row[name][k]
            rows.append(row)
            sys.stdout.write(json.dumps(row) + "\n")
    for total in pooled.values():
        total["accuracy"] = round(total["correct"] / total["n"], 4)
    sys.stdout.write(json.dumps(pooled) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"general_threshold": threshold, "pooled": pooled,
                                               "per_house": rows}, indent=1) + "\n")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pseudo", help="run the house protocol on one pseudo-house")
    a.add_argument("--house", type=int, required=True)
    a.add_argument("--data", type=Path, action="append",
                   help="the general model's training data (default GENKI-4K and SMILEsmileD "
                        "under $HAPPYHOUSE_DATA)")
    a.add_argument("--init", default="models/general/model.keras")
    a.add_argument("--out", default="runs/pseudo-houses")
    a.add_argument("--work", default="/tmp/happyhouse-pseudo-houses")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--sample-seed", type=int, default=77)
    f = sub.add_parser("deployed", help="the door a pseudo-house deploys, on fresh faces of "
                       "its own look")
    f.add_argument("--house", type=int, required=True)
    f.add_argument("--not-smiling", type=int, metavar="N",
                   help=f"not-smiling faces per house (default {N_NOT}, the Happy House's)")
    f.add_argument("--data", type=Path, action="append")
    f.add_argument("--init", default="models/general/model.keras")
    f.add_argument("--out", default="runs/pseudo-houses")
    f.add_argument("--work", default="/tmp/happyhouse-pseudo-houses")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--sample-seed", type=int, default=77)
    b = sub.add_parser("analyse", help="compare threshold/fusion rules on saved scores")
    b.add_argument("scores", nargs="+")
    b.add_argument("--features", action="append", help="mesh features (the `features` "
                   "command): adds the house-head variants")
    b.add_argument("--only", nargs="+", help="compute only these variants")
    b.add_argument("--init", default="models/general/model.keras")
    b.add_argument("--json")
    g = sub.add_parser("either", help="open when the adapted door or the general bundle would "
                       "(saved scores of `pseudo` and `features`)")
    g.add_argument("--houses", type=int, nargs="+", default=[0, 1, 2, 3])
    g.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    g.add_argument("--scores-dir", default="runs/pseudo-houses")
    g.add_argument("--data", type=Path, action="append")
    g.add_argument("--init", default="models/general/model.keras")
    g.add_argument("--bundle", default="daemon/models/default", help="whose threshold")
    g.add_argument("--sample-seed", type=int, default=77)
    g.add_argument("--json")
    d = sub.add_parser("soup", help="a scores file whose fold scores come from each fold's "
                       "weight-averaged models (needs the run's --work folder)")
    d.add_argument("--scores", required=True)
    d.add_argument("--work", required=True)
    d.add_argument("--house", type=int)
    d.add_argument("--happy-house", type=Path)
    d.add_argument("--data", type=Path, action="append")
    d.add_argument("--init", default="models/general/model.keras")
    d.add_argument("--sample-seed", type=int, default=77)
    d.add_argument("--out", required=True)
    c = sub.add_parser("features", help="mesh features of a pseudo-house or the Happy House frames")
    c.add_argument("--house", type=int)
    c.add_argument("--happy-house", type=Path, help="test_happy.h5: the door's frames, gated")
    c.add_argument("--data", type=Path, action="append")
    c.add_argument("--init", default="models/general/model.keras")
    c.add_argument("--sample-seed", type=int, default=77)
    c.add_argument("--out", required=True)
    e = sub.add_parser("probe", help="the house protocol with a last-layer correction, "
                       "on pseudo-houses (needs their `features` files)")
    e.add_argument("--houses", type=int, nargs="+", default=[0, 1, 2, 3])
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    e.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    e.add_argument("--features-dir", default="runs/pseudo-houses")
    e.add_argument("--data", type=Path, action="append")
    e.add_argument("--init", default="models/general/model.keras")
    e.add_argument("--sample-seed", type=int, default=77)
    e.add_argument("--door-statistics", action="store_true",
                   help="re-estimate the BatchNorm statistics on each training set (AdaBN)")
    e.add_argument("--json")
    args = p.parse_args(argv)
    if args.cmd in ("pseudo", "features", "soup", "probe", "deployed", "either") and \
            not getattr(args, "happy_house", None):
        if not args.data:
            from happyhouse.daemon.datasets import data_root
            root = data_root()
            if root is None:
                p.error("give --data or set HAPPYHOUSE_DATA")
            args.data = [root / "genki4k-train", root / "smilesmiled"]
    if args.cmd == "features":
        return features(args)
    if args.cmd == "soup":
        return soup(args)
    if args.cmd == "pseudo":
        return pseudo(args)
    if args.cmd == "deployed":
        return deployed(args)
    if args.cmd == "probe":
        return probe(args)
    if args.cmd == "either":
        return either(args)
    return analyse(args)


if __name__ == "__main__":
    sys.exit(main())
