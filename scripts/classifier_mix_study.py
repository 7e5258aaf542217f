#!/usr/bin/env python3
"""Does the classifier, too, gain from learning on fewer gray faces? (issue 15, a study)

The geometry head learns from GENKI-4K and 1,500 SMILEsmileD faces since the mix study
(``reports/README.md``, ``geometry-alignment/``): colour faces in the wild are the nearer
kind to a door. This judges classifiers fine-tuned from the shipped one with the same
recipe on a capped training part (``happyhouse-train --source-cap``), each fused 0.7:0.3
with the shipped geometry head, against the shipped classifier: per source and pooled, on
the general validation split and its three door copies, by the datasets' and the audited
labels. The rule, written before the run, is quoted in ``reports/README.md``. Never reads
door frames.

``--weights A:B`` (repeatable) judges each classifier at other fusion weights as well
(the fusion-weights study of issue 15): its rows are named ``MODEL @ A:B``.

::

    happyhouse-train ... --source-cap smilesmiled=1500 --out runs/classifier-mix/model   # 5 min
    python scripts/classifier_mix_study.py --model runs/classifier-mix/model/model.keras \\
        --json reports/classifier-mix/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from aligned_crop_study import by_source_auc, data_paths  # noqa: E402  (sibling study scripts)
from ensemble_study import AUDITS, COPIES, SHIPPED, classifier_scores, faces_and_geometry  # noqa: E402

CACHE = Path("runs/classifier-mix")
WEIGHTS = (0.7, 0.3)


def parse_weights(text: str) -> tuple:
    """``"0.6:0.4"`` -> (0.6, 0.4): the classifier's and the geometry head's weights."""
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights {text!r}: expected CLASSIFIER:GEOMETRY, e.g. 0.6:0.4")
    if a < 0 or b < 0 or a + b <= 0:
        raise argparse.ArgumentTypeError(f"weights {text!r}: both >= 0, not both 0")
    return a, b


def judged(names, labels, copies, classifier: dict, geometry: dict, audit, weights=WEIGHTS) -> dict:
    from happyhouse.daemon.geometry import fuse
    from happyhouse.train.label_audit import audited_figures

    row = {}
    for copy in COPIES:
        which = copies[copy][0]
        n, y = [names[i] for i in which], labels[which]
        fused = fuse(classifier[copy], geometry[copy], weights)
        pooled = audited_figures(n, y, fused, audit)
        row[copy] = {"by_source": by_source_auc(n, y, fused, audit),
                     "pooled": {"auc": pooled["dataset_labels"]["roc_auc"],
                                "auc_audited": pooled["audited_labels"]["roc_auc"],
                                "recall": pooled["dataset_labels"]["recall"],
                                "recall_audited": pooled["audited_labels"]["recall"]}}
    doors = [c for c in COPIES if c != "validation"]
    for key in ("auc", "auc_audited"):
        row["genki_door_mean_" + key] = round(float(np.mean(
            [row[c]["by_source"]["genki4k-train"][key] for c in doors])), 4)
    for key in ("auc", "auc_audited", "recall", "recall_audited"):
        row["door_mean_" + key] = round(float(np.mean([row[c]["pooled"][key] for c in doors])), 4)
    return row


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, action="append", required=True,
                   help="a candidate classifier (model.keras); repeatable")
    p.add_argument("--weights", type=parse_weights, action="append", default=[],
                   help="CLASSIFIER:GEOMETRY fusion weights to judge besides 0.7:0.3; repeatable")
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    from happyhouse.train.audits import load_audits

    args.cache.mkdir(parents=True, exist_ok=True)
    names, labels, copies, geometry = faces_and_geometry(data_paths(), args.cache)
    audit = load_audits([Path(a) for a in AUDITS])
    rows = {}
    weights = [WEIGHTS] + [w for w in args.weights if w != WEIGHTS]
    for model in dict.fromkeys([SHIPPED] + args.model):
        scores = classifier_scores(model, copies, args.cache)
        for w in weights:
            name = str(model) if w == WEIGHTS else f"{model} @ {w[0]:g}:{w[1]:g}"
            rows[name] = r = judged(names, labels, copies, scores, geometry, audit, w)
            print(name, json.dumps({
                "genki door mean": [r["genki_door_mean_auc"], r["genki_door_mean_auc_audited"]],
                "door mean": [r["door_mean_" + k] for k in ("auc", "auc_audited", "recall", "recall_audited")],
                "validation pooled": r["validation"]["pooled"]}), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "classifiers fine-tuned on a capped training part, fused 0.7:0.3 (or the weights "
                    "a row's name gives) with the shipped geometry head, per source and pooled, on "
                    "the general validation split and its door copies, by the datasets' and the "
                    "audited labels",
            "models": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
