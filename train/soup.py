"""Average fine-tuned classifiers into one model of the same size (a uniform "model soup").

Fine-tunes of one model, started from the same weights with a low rate and
differing only in their training seed, land near each other; the mean of their
weights (BatchNorm statistics included) is one network that often ranks like
their ensemble at a single model's cost. The shipped general classifier is such
a soup (``reports/README.md``, ``classifier-mix/``)::

    python -m happyhouse.train.soup --model runs/classifier-mix/model/model.keras \\
        --model runs/classifier-mix-s2/model/model.keras \\
        --data $D/genki4k-train --data $D/smilesmiled --out models/general --report reports/general

Every member must have the same architecture, preprocessing contract and
validation split (their ``train_meta.json`` and ``split.json``), or nothing is
written. The soup's threshold is chosen on that validation split by the
training rule (<= 1% false opens), and the report is training's (metrics.json,
ROC, confusion matrix, misclassified faces), so the geometry head and the
converter read the soup as they read a trained model.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from happyhouse.daemon.cli_errors import run_main
from happyhouse.daemon.errors import ConfigError, DataError, ModelError
from happyhouse.daemon.filesafety import a_path, path_arg

log = logging.getLogger("happyhouse.train.soup")
#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-train-soup"


def average(members: Sequence[Sequence[np.ndarray]]) -> List[np.ndarray]:
    """The uniform mean of several models' weight lists, array by array, in their own dtypes."""
    first = members[0]
    for other in members[1:]:
        if len(other) != len(first) or any(a.shape != b.shape for a, b in zip(first, other)):
            raise ModelError("the models to average do not have the same architecture "
                             "(a soup needs fine-tunes of one model)")
    return [np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype) for arrays in zip(*members)]


def _validation_ids(model: Path) -> List[str]:
    from .trainer import SPLIT_FILE

    split = model.parent / SPLIT_FILE
    if not split.is_file():
        raise ModelError(f"{split} is missing: a soup's members need the split they validated on")
    return sorted(json.loads(split.read_text())["validation_ids"])


def check_members(models: Sequence[Path]) -> List[dict]:
    """Each member's ``train_meta.json``; ModelError unless all share contract and split."""
    from .trainer import read_meta

    if len(models) < 2:
        raise ConfigError("a soup needs at least two models (--model twice or more)")
    if len(set(Path(m).resolve() for m in models)) != len(models):
        raise ConfigError("the same model is given twice: a soup averages different fine-tunes")
    from happyhouse.daemon.filesafety import require_file

    # a folder given as --model read "train_meta.json is missing"
    metas = [read_meta(require_file(m, "--model", ModelError)) for m in models]
    first, ids = metas[0], _validation_ids(Path(models[0]))
    for model, meta in zip(models[1:], metas[1:]):
        for key in ("preprocess", "input", "output", "labels", "mirror_average"):
            if meta.get(key) != first.get(key):
                raise ModelError(f"{model}: its {key} differs from {models[0]}'s: "
                                 "a soup averages fine-tunes of one model with one contract")
        if _validation_ids(Path(model)) != ids:
            raise ModelError(f"{model}: it validated on other faces than {models[0]}: "
                             "a soup's threshold needs the split its members share")
    return metas


def run(args) -> dict:
    from happyhouse.daemon.filesafety import check_creatable
    from happyhouse.daemon.preprocess import Preprocess

    from . import report
    from .label_audit import split_faces
    from .outputs import MODEL_FILE, staged_outputs
    from .trainer import load_model, normalize_batch, predict

    started = time.monotonic()
    models = [Path(m) for m in args.model]
    metas = check_members(models)
    out = Path(args.out)
    report_dir = Path(args.report or out)
    if out.resolve() in {m.parent.resolve() for m in models}:
        raise ConfigError(f"--out {out} holds one of the models being averaged: choose another folder")
    folders = (("the model folder (--out)", out), ("the report folder (--report)", report_dir))
    for what, folder in folders:
        check_creatable(folder, what)

    nets = [load_model(m) for m in models]
    soup = nets[0]
    soup.set_weights(average([n.get_weights() for n in nets]))

    _, labels, crops = split_faces(models[0], [Path(d) for d in args.data])
    wanted = len(_validation_ids(models[0]))
    if len(labels) < wanted:
        # the threshold was chosen on 425 faces (GENKI-4K alone) while the metadata and the
        # report said the split's 2,395: every member's source is needed
        raise DataError(f"--data holds {len(labels)} of the {wanted} faces of the members' "
                        f"validation split: give all the data they were trained on")
    spec = Preprocess.from_dict(metas[0]["preprocess"])
    images = normalize_batch(crops, spec)
    scores = predict(soup, images)
    threshold = report.choose_threshold(labels, scores, metas[0]["max_false_open"])

    # staged beside --out and --report and published whole: an interrupted soup left an
    # empty model.keras, or a new one beside the old train_meta.json and geometry stage
    made = Soup(soup, models, metas, images, labels, scores, threshold, started)
    with staged_outputs(folders) as (staged, staged_report, out, report_dir):
        result = _write(made, staged, staged_report, out / MODEL_FILE)
    log.info("soup of %d models -> %s: validation AUC %.4f, recall %.3f at threshold %.3f",
             len(models), out / MODEL_FILE, result["roc_auc"], result["recall"], threshold)
    return result


@dataclass(frozen=True)
class Soup:
    """An averaged model and what its report says of it: its members (files and metadata),
    the validation faces it was scored on, its scores and threshold there."""
    model: Any
    members: List[Path]
    metas: List[dict]
    images: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    threshold: float
    started: float


def _write(made: Soup, out: Path, report_dir: Path, model_file: Path) -> dict:
    """The soup's model, split, metadata and report, into ``out`` and ``report_dir``;
    ``model_file`` is where the model will be once published (the report names it)."""
    from happyhouse.daemon.bundle import sha256_file

    from . import report
    from .report import recorded_path
    from .trainer import META_FILE, MODEL_FILE, SPLIT_FILE, write_meta

    soup, models, metas, threshold = made.model, made.members, made.metas, made.threshold

    soup.save(out / MODEL_FILE)
    shutil.copyfile(models[0].parent / SPLIT_FILE, out / SPLIT_FILE)
    meta = dict(metas[0])
    meta.update({
        "threshold": float(threshold),
        "soup": {"rule": "uniform mean of every weight array (BatchNorm statistics included)",
                 "training": "the first member's (every member's seed and best epoch below)",
                 # repo-relative (or the file's name) and sha256: the report and the
                 # metadata are committed, the build machine's folders are not
                 "members": [{"model": recorded_path(m), "sha256": sha256_file(m),
                              "seed": meta_m.get("training", {}).get("seed"),
                              "best_epoch": meta_m.get("training", {}).get("best_epoch")}
                             for m, meta_m in zip(models, metas)]},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    })
    result = report.write_report(
        report_dir, {}, made.images, made.labels, made.scores, threshold,
        extra={"max_false_open": meta["max_false_open"], "split": meta["split"],
               "data": {**meta["data"], "sources": [Path(p).name for p in meta["data"]["sources"]]},
               "model": recorded_path(model_file), "soup": meta["soup"],
               "seconds": round(time.monotonic() - made.started, 1)})
    report.write_architecture(report_dir, soup)
    meta["validation"] = {k: result[k] for k in ("n", "accuracy", "precision", "recall", "f1",
                                                 "roc_auc", "false_open_rate")}
    write_meta(out / META_FILE, meta)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m happyhouse.train.soup", description=__doc__.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, type=path_arg,
                   help="a fine-tuned model.keras (with its train_meta.json and split.json); twice or more")
    p.add_argument("--data", type=a_path, action="append", required=True, metavar="PATH",
                   help="the members' training data, as given to training (for the validation split)")
    p.add_argument("--out", required=True, type=path_arg, help="folder for the soup's model.keras + metadata")
    p.add_argument("--report", type=path_arg, help="folder for metrics.json and plots (default: --out)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def body() -> int:
        run(args)
        return 0

    return run_main(PROG, body)


if __name__ == "__main__":
    raise SystemExit(main())
