#!/usr/bin/env python3
"""How should a small house choose its threshold? Studied on pseudo-houses, not on a door.

A house adapts on ~120 of its own frames, and its threshold comes from their
out-of-fold scores. This study runs the house protocol (``happyhouse.train.house_cv``,
refit) on *pseudo-houses* made from the general validation split (faces no model
here trained on), each with one consistent door look, saves every score, and
compares threshold and fusion rules on them. The Happy House frames are not read.

    python scripts/house_threshold_study.py pseudo --house 0 --out runs/pseudo   # ~8 min each
    python scripts/house_threshold_study.py analyse runs/pseudo/house*.npz

``analyse`` works on any ``--scores-out`` file of house_cv as well.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from happyhouse.daemon.geometry import fuse, logit, sigmoid
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


def pseudo(args) -> int:
    from happyhouse.convert.metadata import find_metadata, read_metadata
    from happyhouse.train import house_cv
    from happyhouse.train.data import load_training_data, stratified_folds
    from happyhouse.train.geometry import stage_beside, validation_mask

    init = Path(args.init)
    spec = read_metadata(find_metadata(init)).preprocess
    data = load_training_data([str(d) for d in args.data], spec.geometric())
    val = np.flatnonzero(validation_mask(data.ids, init.parent / "split.json"))
    rng = np.random.default_rng(args.sample_seed)  # one permutation: houses are disjoint
    happy = rng.permutation(val[data.labels[val] == 1])
    nothappy = rng.permutation(val[data.labels[val] == 0])
    h = args.house
    pick = np.concatenate([happy[h * N_HAPPY:(h + 1) * N_HAPPY],
                           nothappy[h * N_NOT:(h + 1) * N_NOT]])
    if len(pick) != N_HAPPY + N_NOT:
        raise SystemExit(f"house {h}: the validation split has too few faces")
    house = data.subset(pick)
    house.images = door_look(house.images, 2000 + h)
    stage = stage_beside(init)[0]
    geo = np.array([stage.score(im) for im in house.images])
    has_face = np.ones(len(house), bool)
    fold = stratified_folds(house.labels, 5, h)
    pargs = argparse.Namespace(
        data=Path(f"pseudo-house-{h}"), init=init, work=Path(args.work) / f"house{h}", k=5,
        seed=args.seed, epochs=100, patience=30, lr=2e-3, scratch=None, batch_size=16,
        augment="light", max_false_open=0.01, protocol="refit", inner_k=4, crop="face",
        train_frames=None, no_geometry=False)
    cv = house_cv.cross_validate(pargs, house, has_face, fold, geo, stage.spec.weights)
    out = Path(args.out) / f"house{h}-seed{args.seed}.npz"
    house_cv.save_scores(out, house.labels, has_face, fold, geo, cv, stage.spec.weights)
    sys.stdout.write(f"{out}: {json.dumps([{k: x[k] for k in ('fold', 'errors', 'false_opens', 'threshold')} for x in cv['folds']])}\n")
    return 0


def analyse(args) -> int:
    rows: Dict[str, List[dict]] = {}
    for path in args.scores:
        saved = dict(np.load(path))
        for name, result in house_rules.study(saved).items():
            rows.setdefault(name, []).append({"file": Path(path).name, **result})
    table = []
    for name, res in rows.items():
        n = sum(r["n"] for r in res)
        table.append({"variant": name, "houses": len(res),
                      "accuracy": sum(r["correct"] for r in res) / n,
                      "false_opens": sum(r["false_opens"] for r in res),
                      "max_false_opens_one_house": max(r["false_opens"] for r in res),
                      "missed_smiles": sum(r["missed"] for r in res),
                      "per_house": [(r["file"], r["correct"], r["false_opens"]) for r in res]})
    for t in table:
        sys.stdout.write(f"{t['variant']:<12} acc {100 * t['accuracy']:.1f}%  false opens "
                         f"{t['false_opens']} (max {t['max_false_opens_one_house']} in a house)  "
                         f"missed {t['missed_smiles']}   {t['per_house']}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")
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
    b = sub.add_parser("analyse", help="compare threshold/fusion rules on saved scores")
    b.add_argument("scores", nargs="+")
    b.add_argument("--json")
    args = p.parse_args(argv)
    if args.cmd == "pseudo":
        if not args.data:
            from happyhouse.daemon.datasets import data_root
            root = data_root()
            if root is None:
                p.error("give --data or set HAPPYHOUSE_DATA")
            args.data = [root / "genki4k-train", root / "smilesmiled"]
        return pseudo(args)
    return analyse(args)


if __name__ == "__main__":
    sys.exit(main())
