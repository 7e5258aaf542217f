"""How far would averaging several general classifiers go? (a study, not the product)

The bundle holds one classifier (the cost goals: one ``.tflite`` of <= 150 KB, the
door's per-frame time), so an ensemble is never shipped; what it measures is how
much a distilled single model could gain at most. Every model named is scored on
the general validation split (the same for all: seed 1, 15%) and on its three door
copies (``label_audit.door_copies``), fused 0.7:0.3 with the shipped geometry head
as the bundle fuses, by the datasets' labels and by the audited ones. Scores are
cached per model in ``--cache``, so adding a model costs only its own predictions.
Never reads door frames.

::

    python scripts/ensemble_study.py --model models/general/model.keras \\
        --model runs/gpu8/wide-framing-audited/model.keras [...] \\
        --ensemble all --ensemble 0,1 --json runs/ensemble/metrics.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

AUDITS = ["reports/label-audit/validation-audit.json", "reports/label-audit/validation-audit-round2.json"]
SHIPPED = Path("models/general/model.keras")
COPIES = ("validation", "door-shifted", "door-framed", "door-framed door-shifted")


def faces_and_geometry(data: List[Path], cache: Path):
    """The split's faces, their door copies and the shipped geometry head's scores (cached)."""
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.train.geometry import stage_beside
    from happyhouse.train.label_audit import door_copies, split_faces

    names, labels, crops = split_faces(SHIPPED, data)
    copies = {"validation": (np.arange(len(crops)), crops)}
    copies.update(door_copies(crops))
    # keyed by the head's content: a refitted head must not reuse the old one's scores
    file = cache / f"geometry-{sha256_file(SHIPPED.parent / 'geometry_head.npz')[:12]}.npz"
    if file.is_file():
        geometry = dict(np.load(file))
    else:
        stage = stage_beside(SHIPPED)[0]
        geometry = {c: np.array([stage.score(f) for f in faces]) for c, (_, faces) in copies.items()}
        np.savez(file, **geometry)
    return names, labels, copies, geometry


def classifier_scores(model: Path, copies, cache: Path) -> Dict[str, np.ndarray]:
    from happyhouse.daemon.bundle import sha256_file
    from happyhouse.train.label_audit import model_contract
    from happyhouse.train.trainer import load_model, predict

    # keyed by the file's content too: a path such as models/general/model.keras names
    # another model once the shipped one is replaced, and must not reuse its scores
    key = str(model).replace(os.sep, "_").replace(".keras", "")
    file = cache / f"{key}-{sha256_file(model)[:12]}.npz"
    if file.is_file():
        return dict(np.load(file))
    net, spec = load_model(model), model_contract(model)
    out = {c: predict(net, faces, spec) for c, (_, faces) in copies.items()}
    np.savez(file, **out)
    return out


def judged(names, labels, copies, fused: Dict[str, np.ndarray], audit) -> dict:
    from happyhouse.train.label_audit import audited_figures

    row = {}
    for c, (which, _) in copies.items():
        f = audited_figures([names[i] for i in which], labels[which], fused[c], audit)
        row[c] = {"auc": f["dataset_labels"]["roc_auc"], "auc_audited": f["audited_labels"]["roc_auc"],
                  "recall_audited": f["audited_labels"]["recall"]}
    doors = [c for c in COPIES if c != "validation"]
    row["door_mean_auc"] = round(float(np.mean([row[c]["auc"] for c in doors])), 4)
    row["door_mean_auc_audited"] = round(float(np.mean([row[c]["auc_audited"] for c in doors])), 4)
    return row


def main(argv: Optional[List[str]] = None) -> int:
    from happyhouse.daemon.geometry import fuse, logit, sigmoid
    from happyhouse.train.audits import load_audits

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", type=Path, required=True)
    p.add_argument("--ensemble", action="append", default=[],
                   help="comma-separated indices into --model (or 'all'): mean classifier logit")
    p.add_argument("--data", action="append", type=Path)
    p.add_argument("--weights", type=float, nargs=2, default=(0.7, 0.3))
    p.add_argument("--cache", type=Path, default=Path("runs/ensemble"))
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    root = Path(os.environ.get("HAPPYHOUSE_DATA", "../shared/datasets"))
    data = args.data or [root / "genki4k-train", root / "smilesmiled"]
    args.cache.mkdir(parents=True, exist_ok=True)
    audit = load_audits([Path(a) for a in AUDITS])
    names, labels, copies, geometry = faces_and_geometry(data, args.cache)
    probs = [classifier_scores(m, copies, args.cache) for m in args.model]
    rows = {}
    for i, m in enumerate(args.model):
        fused = {c: fuse(probs[i][c], geometry[c], args.weights) for c in copies}
        rows[str(m)] = judged(names, labels, copies, fused, audit)
    for spec in args.ensemble:
        idx = list(range(len(args.model))) if spec == "all" else [int(x) for x in spec.split(",")]
        fused = {}
        for c in copies:
            mean = sigmoid(np.mean([logit(probs[i][c]) for i in idx], axis=0))
            fused[c] = fuse(mean, geometry[c], args.weights)
        rows["ensemble " + "+".join(args.model[i].parent.name for i in idx)] = \
            judged(names, labels, copies, fused, audit)
    for name, row in rows.items():
        print(f"{row['validation']['auc']:.4f} {row['validation']['auc_audited']:.4f} "
              f"{row['validation']['recall_audited']:.3f} | doors {row['door_mean_auc']:.4f} "
              f"{row['door_mean_auc_audited']:.4f}  {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"weights": list(args.weights), "audits": AUDITS,
                                         "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
