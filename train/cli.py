"""``happyhouse-train``: labelled face images -> Keras model + metadata + report.

Examples::

    # one training run on the general data (the shipped general model is several runs,
    # a soup and a geometry head: README.md, "happyhouse-train", and reports/README.md)
    happyhouse-train --data $HAPPYHOUSE_DATA/genki4k-train --data $HAPPYHOUSE_DATA/smilesmiled \\
        --init models/general/model.keras --train-bn --mirror-average --augment door-framing \\
        --lr 5e-4 --epochs 10 --patience 10 --source-cap smilesmiled=1500 --out runs/fine-tune
    # a house's own door frames (happyhouse-adapt does this, and proves and converts it)
    happyhouse-train --data my_house/ --door-frames --init models/general/model.keras \\
        --augment light --out models/my_house
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from happyhouse.daemon.cli_errors import run_main
from happyhouse.daemon.errors import HappyHouseError
from happyhouse.daemon.filesafety import a_path, path_arg

from . import models
from .augment import PRESETS


def parser() -> argparse.ArgumentParser:
    from .data import DEFAULT_CAP_SEED

    p = argparse.ArgumentParser(prog="happyhouse-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, metavar="PATH", type=a_path,
                   help="class-folder root (happy/, not_happy/) or course .h5; repeat to combine")
    p.add_argument("--out", required=True, type=path_arg, help="folder for model.keras + train_meta.json")
    p.add_argument("--report", type=path_arg, help="folder for metrics.json and plots (default: --out)")
    p.add_argument("--arch", choices=sorted(models.ARCHS),
                   help=f"network to build (default: {models.DEFAULT_ARCH}); not with --init, which "
                        f"fine-tunes the given model's own network")
    p.add_argument("--init", type=path_arg, metavar="MODEL",
                   help="fine-tune this .keras model (e.g. the general model on a house's images)")
    p.add_argument("--train-bn", action="store_true",
                   help="with --init: also update BatchNorm (default: frozen; right for small data)")
    p.add_argument("--mirror-average", action="store_true",
                   help="score each face and its mirror image and average the two, inside the "
                        "model (trained that way; a model fine-tuned from such a model keeps it)")
    p.add_argument("--epochs", type=int, default=36, help="most epochs to train (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="faces per training step (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    p.add_argument("--val-fraction", type=float, default=0.15,
                   help="share of the faces held out to validate and choose the threshold "
                        "(default %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="training seed (and the split's; default %(default)s)")
    p.add_argument("--split-seed", type=int,
                   help="the split's own seed (default --seed): another training seed, same split")
    p.add_argument("--patience", type=int, default=12, help="early-stopping patience (epochs; default %(default)s)")
    p.add_argument("--max-false-open", type=float, default=0.01,
                   help="target false-open rate for the validation-chosen threshold "
                        "(default %(default)s)")
    p.add_argument("--crop", choices=("face", "frame"), default="face",
                   help="preprocessing crop mode recorded with the model (default %(default)s)")
    p.add_argument("--door-frames", action="store_true",
                   help="--data holds whole door-camera frames: run each through the door's own "
                        "face gate and face crop first (frames with no face are skipped and counted); "
                        "how a house adapts the model to its camera")
    p.add_argument("--normalize", choices=("none", "clahe"),
                   help="light normalisation of each face crop, recorded in the contract "
                        "(clahe: local contrast of the luminance; default: the --init model's, "
                        "else none)")
    p.add_argument("--margin", type=float, default=0.0, help="face-crop margin (face mode; default %(default)s)")
    p.add_argument("--size", type=int, default=64,
                   help="side of the square crop the network sees (default %(default)s)")
    p.add_argument("--limit", type=int, help="at most this many images per class and source")
    p.add_argument("--augment", default="door", choices=tuple(PRESETS) + ("none",),
                   help="augmentation strength (door: from scratch; light: refining; "
                        "door-strong: smaller, darker, softer faces more often; "
                        "door-framing: door-strong, zoomed out as the door's gate frames a face; "
                        "default %(default)s)")
    p.add_argument("--cover", type=float, default=0.0, metavar="FRACTION",
                   help="hide the mouth of this fraction of the training faces (a scarf, a mask, "
                        "a hand) and label them not smiling, so a covered mouth does not open "
                        "the door (default 0)")
    p.add_argument("--cover-not-smiling-only", action="store_true",
                   help="with --cover: cover only faces labelled not smiling (no smile relabelled)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes that augment the batches (the same batches as 1; default "
                        "%(default)s)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after the epoch that passes this many seconds of fitting "
                        "(the best checkpoint so far is the model)")
    p.add_argument("--label-audit", type=path_arg, action="append", metavar="AUDIT",
                   help="a label audit (python -m happyhouse.train.label_audit) applied to the "
                        "training part: smiles relabelled, faces that are none left out; "
                        "validation keeps the datasets' labels (repeatable)")
    p.add_argument("--source-cap", action="append", default=[], metavar="SOURCE=N",
                   help="learn from at most N training faces of this source (the data folder's "
                        "name), picked at random; validation keeps every face (repeatable)")
    p.add_argument("--cap-seed", type=int, default=DEFAULT_CAP_SEED,
                   help="which faces a --source-cap keeps (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch Keras progress")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    return run_main("happyhouse-train", lambda: _train(argv))


def _train(argv: Optional[List[str]]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .data import parse_source_caps
    from .trainer import TrainConfig, train

    if not 0.0 <= args.max_false_open < 1.0:
        raise HappyHouseError("--max-false-open must be in [0, 1)")
    if args.init is not None and args.arch is not None:
        # the --init model's own network is fine-tuned: --arch was ignored without a word
        raise HappyHouseError(f"--arch {args.arch} does not apply with --init (which fine-tunes "
                              f"{args.init}'s own network): leave out one of them")
    cfg = TrainConfig(data=args.data, out=args.out, report_dir=args.report,
                      arch=args.arch or models.DEFAULT_ARCH,
                      init=args.init, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, val_fraction=args.val_fraction, seed=args.seed,
                      split_seed=args.split_seed,
                      patience=args.patience, max_false_open=args.max_false_open,
                      crop=args.crop, margin=args.margin, size=args.size, limit=args.limit,
                      augment=args.augment, cover=args.cover,
                      cover_smiles=not args.cover_not_smiling_only, freeze_bn=not args.train_bn,
                      door_frames=args.door_frames, mirror_average=args.mirror_average,
                      normalize=args.normalize, workers=args.workers,
                      time_limit=args.time_limit, label_audits=tuple(args.label_audit or ()),
                      source_caps=parse_source_caps(args.source_cap), cap_seed=args.cap_seed,
                      verbose=0 if args.quiet else 2)
    result = train(cfg)
    r = result["report"]
    sys.stdout.write(
        f"model {result['model']}\nreport {result['report_dir']}\n"
        f"validation n={r['n']} accuracy={r['accuracy']:.4f} (at 0.5: {r['at_0.5']['accuracy']:.4f}) "
        f"auc={r['roc_auc']:.4f} threshold={r['threshold']:.3f} "
        f"false_open_rate={r['false_open_rate']:.4f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
