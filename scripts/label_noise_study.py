#!/usr/bin/env python3
"""Does training without the faces the labels most likely get wrong help? (issue 15, a study)

The label audit (``reports/label-audit/``) found most of the highest-scoring
``not_happy`` validation faces smiling. The training split has the same kind
of faces. This study drops the training faces the shipped model disputes most
and fine-tunes, against a control fine-tuned identically on every face:

    python scripts/label_noise_study.py flag --out runs/label-noise/flagged.json
    python scripts/label_noise_study.py train --out runs/label-noise/cleaned --drop runs/label-noise/flagged.json
    python scripts/label_noise_study.py train --out runs/label-noise/control
    python scripts/label_noise_study.py compare models/general/model.keras \\
        runs/label-noise/control/model.keras runs/label-noise/cleaned/model.keras

``flag``: the shipped model's fused score on its own training faces (in-sample);
``not_happy`` faces at >= 0.6 and ``happy`` faces at <= 0.05 are flagged.
``train``: session 6's recipe (door-framing augmentation, lr 5e-4, BatchNorm
trained, mirror averaging, seed 1) from ``models/general``, 8 epochs, the
validation split unchanged; flagged faces leave the training part only.
``compare``: each classifier fused with the shipped geometry head, on the
validation split and its door copies, with the datasets' and the audited labels.
Desktop-only (Keras); about 12 minutes per fine-tune on two cores.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GENERAL = REPO / "models" / "general" / "model.keras"
AUDITS = [REPO / "reports" / "label-audit" / "validation-audit.json",
          REPO / "reports" / "label-audit" / "validation-audit-round2.json"]
FLAG_NOT_HAPPY_AT, FLAG_HAPPY_AT = 0.6, 0.05


def data_paths(args):
    from happyhouse.daemon.datasets import data_root

    root = Path(args.data_root) if args.data_root else data_root()
    if root is None:
        sys.exit("give --data-root or set HAPPYHOUSE_DATA")
    return [root / "genki4k-train", root / "smilesmiled"]


def flag(args):
    from happyhouse.train import label_audit as la
    from happyhouse.train.data import load_training_data
    from happyhouse.train.geometry import validation_mask

    data = load_training_data([str(p) for p in data_paths(args)], la.model_contract(GENERAL).geometric())
    train = np.flatnonzero(~validation_mask(data.ids, GENERAL.parent / "split.json"))
    scores = la.fused_scorer(GENERAL)(data.images[train])
    labels = data.labels[train]
    flagged = ((labels == 0) & (scores >= FLAG_NOT_HAPPY_AT)) | ((labels == 1) & (scores <= FLAG_HAPPY_AT))
    names = sorted(la.face_name(data.ids[i]) for i in train[flagged])
    out = {"rule": f"training faces: not_happy scored >= {FLAG_NOT_HAPPY_AT}, happy <= {FLAG_HAPPY_AT} "
                   f"(the shipped model's fused score, in-sample)",
           "not_happy": int(np.sum(flagged & (labels == 0))), "happy": int(np.sum(flagged & (labels == 1))),
           "faces": names}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"flagged {len(names)} of {len(train)} training faces -> {args.out}")


def train(args):
    from happyhouse.train import label_audit as la
    from happyhouse.train.data import load_training_data, stratified_split
    from happyhouse.train.trainer import TrainConfig, contract, train_split

    out = Path(args.out)
    cfg = TrainConfig(data=[str(p) for p in data_paths(args)], out=out, report_dir=out / "report",
                      init=GENERAL, epochs=args.epochs, batch_size=64, lr=5e-4, seed=1, patience=args.epochs,
                      augment="door-framing", freeze_bn=False, mirror_average=True, workers=args.workers)
    data = load_training_data(cfg.data, contract(cfg).geometric())
    tr, va = stratified_split(data.labels, cfg.val_fraction, cfg.seed)  # the shipped model's split
    if args.drop:
        drop = set(json.loads(Path(args.drop).read_text())["faces"])
        keep = np.array([la.face_name(data.ids[i]) not in drop for i in tr])
        print(f"dropping {int((~keep).sum())} training faces")
        tr = tr[keep]
    train_split(cfg, data, tr, va)


def compare(args):
    from happyhouse.daemon.roc import roc_auc
    from happyhouse.train import label_audit as la
    from happyhouse.train.framing import recall_at

    names, labels, crops = la.split_faces(GENERAL, data_paths(args))
    audited, keep = la.apply_audit(names, labels, la.load_audits(AUDITS))
    copies = {"validation": (np.arange(len(crops)), crops)}
    copies.update(la.door_copies(crops))
    rows = {}
    for model in args.models:
        score = la.fused_scorer(Path(model), geometry_from=GENERAL)
        row = {}
        for name, (which, faces) in copies.items():
            s, k = score(faces), keep[which]
            row[name] = {"auc": round(roc_auc(labels[which], s), 4), "recall": round(recall_at(labels[which], s), 3),
                         "auc_audited": round(roc_auc(audited[which][k], s[k]), 4),
                         "recall_audited": round(recall_at(audited[which][k], s[k]), 3)}
        doors = [n for n in copies if n != "validation"]
        row["door_proxy_auc"] = round(float(np.mean([row[n]["auc"] for n in doors])), 4)
        row["door_proxy_auc_audited"] = round(float(np.mean([row[n]["auc_audited"] for n in doors])), 4)
        rows[model] = row
        print(model, json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", help="the datasets folder (default $HAPPYHOUSE_DATA)")
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("flag")
    q.add_argument("--out", required=True)
    q = sub.add_parser("train")
    q.add_argument("--out", required=True)
    q.add_argument("--drop", help="a flag file: its faces leave the training part")
    q.add_argument("--epochs", type=int, default=8)
    q.add_argument("--workers", type=int, default=1)
    q = sub.add_parser("compare")
    q.add_argument("models", nargs="+")
    q.add_argument("--json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    {"flag": flag, "train": train, "compare": compare}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
