#!/usr/bin/env python3
"""Does a house-corrected head of the 15 smile measures help the house protocol? (issue 18,
study H; on pseudo-houses, never on the door's frames)

Study M (``smile_measures_study.py``) found that a head over 15 named smile measures carries
to faces of a source it never saw better than the 936-coordinate head. A house is such a
source, and its errors after adaptation include not-smiling frames with an open mouth
(talking), which is a question of corner lift more than of mouth shape. Variant ``GMFR0``:
the protocol as it is (``GFR0``: the house-corrected 936 head, fused 0.7:0.3, the R0
threshold on out-of-fold fused scores) plus the compact head, fitted on the general training
split by the shipped head's recipe and corrected on each model's own training frames exactly
as the 936 head is (``fit_house_head``), fused classifier : 936 head : compact head
0.6:0.2:0.2. Both are decided from the same saved scores of ``house_threshold_study.py
pseudo`` and the frames' mesh features (``features``). The rule, written before the houses
were run, is in ``reports/README.md`` (``house-cv/measures/``).

::

    python scripts/house_threshold_study.py pseudo --house H --out runs/pseudo-houses     # H = 0..3
    python scripts/house_threshold_study.py features --house H --out runs/pseudo-houses/houseH-features.npz
    python scripts/house_measures_study.py runs/pseudo-houses/house{0,1,2,3}-seed0.npz \\
        --json reports/house-cv/measures/pseudo-houses.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from house_threshold_study import pooled  # noqa: E402  (sibling study scripts)
from smile_measures_study import MEASURES, measures  # noqa: E402

WEIGHTS = (0.6, 0.2, 0.2)  # classifier : 936 head : compact head (study M's C2, not tuned here)
#: the rule's numbers (reports/README.md, house-cv/measures/)
MAX_FALSE_OPENS, MAX_IN_ONE_HOUSE, MIN_GAIN = 4, 2, 0.02


def compact_features(features936: np.ndarray) -> np.ndarray:
    """(N, 15) measures of frames given by their 936 aligned coordinates (NaN rows stay NaN:
    frames without a face). Aligning aligned points changes nothing, so the measures are
    those of the mesh points themselves."""
    out = np.full((len(features936), len(MEASURES)), np.nan)
    for i, x in enumerate(features936):
        if np.all(np.isfinite(x)):
            out[i] = measures(x.reshape(-1, 2))
    return out


def general_compact_head(training_cache: Path):
    """The compact head by the shipped head's recipe, from study M's cached training measures."""
    from happyhouse.daemon.geometry import GeometryHead
    from happyhouse.train.logistic import fit_logistic

    with np.load(training_cache) as z:
        coef, bias = fit_logistic(z["x"], z["y"], 1e-3)
    return GeometryHead(weights=coef, bias=bias)


def three_way(classifier, head936, compact, weights: Sequence[float] = WEIGHTS) -> np.ndarray:
    from happyhouse.daemon.geometry import logit, sigmoid

    w = np.asarray(weights, np.float64)
    return sigmoid((w[0] * logit(classifier) + w[1] * logit(head936) + w[2] * logit(compact)) / w.sum())


def gmfr0(saved: Dict[str, np.ndarray], x936: np.ndarray, general936, xc: np.ndarray, generalc,
          weights: Sequence[float] = WEIGHTS) -> dict:
    """Variant GMFR0 on one saved house, decided fold by fold as ``house_rules.study`` does:
    every threshold and every house correction from the fold's own training frames."""
    from happyhouse.train.house_cv import Fusion
    from happyhouse.train.house_rules import empirical

    labels, fold, has_face = saved["labels"], saved["fold"], saved["has_face"].astype(bool)
    heads = (Fusion(saved["geometry"], (0.7, 0.3), x936, general936, labels),
             Fusion(saved["geometry"], (0.7, 0.3), xc, generalc, labels))
    res = {"n": 0, "correct": 0, "false_opens": 0, "missed": 0, "thresholds": []}
    for f in range(int(fold.max()) + 1):
        rest, oof_cls, inner = saved[f"inner{f}_rest"], saved[f"inner{f}_classifier"], saved[f"inner{f}_inner"]
        test = np.flatnonzero(fold == f)
        oof, at_test = [], []
        for head in heads:
            o = np.full(len(rest), np.nan)
            for g in np.unique(inner):
                o[inner == g] = head.geometry(rest[inner != g], rest[inner == g])
            oof.append(o)
            at_test.append(head.geometry(rest, test))
        t = empirical(labels[rest], three_way(oof_cls, *oof, weights))
        score = np.where(has_face[test], three_way(saved["classifier"][test], *at_test, weights), 0.0)
        opened, y = score >= t, labels[test]
        res["n"] += len(test)
        res["correct"] += int((opened == (y == 1)).sum())
        res["false_opens"] += int((opened & (y == 0)).sum())
        res["missed"] += int((~opened & (y == 1)).sum())
        res["thresholds"].append(round(float(t), 4))
    return res


def decide(table: Dict[str, dict]) -> dict:
    """Study H's rule: GMFR0 within the false-open bound and >= 2 points over GFR0."""
    new, old = table["GMFR0"], table["GFR0"]
    safe = new["false_opens"] <= MAX_FALSE_OPENS and new["max_false_opens_one_house"] <= MAX_IN_ONE_HOUSE
    gain = new["accuracy"] - old["accuracy"]
    return {"within_false_open_bound": bool(safe), "accuracy_gain": round(gain, 4),
            "passes": bool(safe and gain >= MIN_GAIN)}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scores", nargs="+", type=Path, help="house_threshold_study.py pseudo's files")
    p.add_argument("--init", type=Path, default=Path("models/general/model.keras"))
    p.add_argument("--training-measures", type=Path,
                   help="study M's cached measures of the general training split (default: "
                        "runs/loso/cache/measures-general-training-<the model's sha>.npz)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.train import house_rules
    from happyhouse.train.geometry import stage_beside

    cache = args.training_measures or Path(
        f"runs/loso/cache/measures-general-training-{sha256_file(args.init)[:12]}.npz")
    general936, generalc = stage_beside(args.init)[0].head, general_compact_head(cache)
    rows: Dict[str, List[dict]] = {"GFR0": [], "GMFR0": []}
    for path in args.scores:
        saved = dict(np.load(path))
        features = dict(np.load(path.with_name(path.name.split("-seed")[0] + "-features.npz")))
        if not np.array_equal(features["labels"], saved["labels"]):
            raise SystemExit(f"{path}: the features file is of other frames")
        x936 = features["features"]
        rows["GFR0"].append({"file": path.name, **house_rules.study(saved, x936, general936, ["GFR0"])["GFR0"]})
        rows["GMFR0"].append({"file": path.name, **gmfr0(saved, x936, general936, compact_features(x936), generalc)})
    table = {name: {**pooled(name, res), "houses": len(res),
                    "per_house": [(r["file"], r["correct"], r["false_opens"], r["thresholds"]) for r in res]}
             for name, res in rows.items()}
    decision = decide(table)
    for t in table.values():
        sys.stdout.write(f"{t['variant']:<6} acc {100 * t['accuracy']:.1f}%  false opens {t['false_opens']} "
                         f"(max {t['max_false_opens_one_house']} in a house)  missed {t['missed_smiles']}\n")
    sys.stdout.write(json.dumps(decision) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"weights": list(WEIGHTS), "measures": list(MEASURES),
                                         "variants": table, "decision": decision}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
