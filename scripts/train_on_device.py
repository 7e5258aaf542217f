"""Train several variants of the general smile model at once on a GPU machine.

Optional: nothing in the product, its tests or CI depends on a GPU or on this
script. It runs the repository's own trainer (``happyhouse.train.trainer``:
the Keras PyDataset, the door augmentation and the one preprocessing contract
of ``daemon/preprocess.py``) on any Keras 3 backend, so it also runs where
there is no TensorFlow (JAX or torch on a GPU machine). Each variant is one
process; they share the GPU, and each one's batches are augmented by its own
worker processes.

::

    python scripts/train_on_device.py --data $HAPPYHOUSE_DATA/genki4k-train \\
        --data $HAPPYHOUSE_DATA/smilesmiled --out OUT --budget 400 [--variants a,b] \\
        [--init-model models/general/model.keras]

On a lent GPU machine that has no Keras and no datasets, ``scripts/prepare_device_run.sh``
packs the wheels and the data into an ignored folder that travels with the repository
and prints the whole device command.

For each variant, ``OUT/<variant>.tar.gz`` holds what ``happyhouse-train`` writes
(``model.keras`` with ``train_meta.json`` and ``split.json``, the report with
``history.csv``) and ``eval.json``: the classifier's validation figures and
those of the door-shifted validation copy (``train.geometry.door_shift``), at
the threshold chosen on the clean split. The archives are rewritten every
``--snapshot`` seconds while training runs (the checkpoint is the best epoch
on validation so far), so a run cut short still returns its best model.
``OUT/summary.json`` lists every variant's figures. Choose among variants on
these figures only; never on door frames.

Backend: the first of ``--backends`` whose smoke test (a two-step fit) runs on
an accelerator; with none, the first that runs at all.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

#: the blind review of 300 training faces (happyhouse.train.label_audit), relative to the repo
AUDIT = "reports/label-audit/training-audit.json"
#: both rounds of that review (460 training faces)
AUDITS = [AUDIT, "reports/label-audit/training-audit-round2.json"]

#: name -> TrainConfig fields (all: the contract's CLAHE, mirror averaging; the
#: general split: val_fraction 0.15, seed 1; a variant's own "seed" is its training seed,
#: with "split_seed": 1 keeping the split). ``init: "shipped"`` fine-tunes --init-model.
VARIANTS: Dict[str, Dict] = {
    "default-door": {"arch": "default", "augment": "door", "epochs": 80, "patience": 20},
    "wide-door": {"arch": "smilenet-wide", "augment": "door", "epochs": 80, "patience": 20},
    "default-strong": {"arch": "default", "augment": "door-strong", "epochs": 80, "patience": 20},
    "wide-strong": {"arch": "smilenet-wide", "augment": "door-strong", "epochs": 80,
                    "patience": 20},
    # the FER2013-pretrained mini-Xception (train/expression.py): 9 epochs on two CPU cores
    # reached validation AUC 0.979 (reports/README.md); a GPU can give it the epochs
    "expression-strong": {"arch": "expression", "augment": "door-strong", "epochs": 40,
                          "lr": 1e-3, "patience": 12},
    "shipped-strong": {"init": "shipped", "augment": "door-strong", "epochs": 30, "lr": 5e-4,
                       "patience": 30, "freeze_bn": False},
    # from scratch with the door's framing (zoom out to 0.75), without and with the blind
    # training-label audit (reports/label-audit/training-audit.json: 114 faces relabelled,
    # 13 non-faces left out; the split and the validation labels do not move)
    "default-framing": {"arch": "default", "augment": "door-framing", "epochs": 80,
                        "patience": 20},
    "default-framing-audited": {"arch": "default", "augment": "door-framing", "epochs": 80,
                                "patience": 20, "label_audits": [AUDIT]},
    "wide-framing-audited": {"arch": "smilenet-wide", "augment": "door-framing", "epochs": 80,
                             "patience": 20, "label_audits": [AUDIT]},
    # the same two with another training seed on the same split: how much of a difference
    # between them one seed alone makes
    "default-framing-seed2": {"arch": "default", "augment": "door-framing", "epochs": 80,
                              "patience": 20, "seed": 2, "split_seed": 1},
    "default-framing-audited-seed2": {"arch": "default", "augment": "door-framing",
                                      "epochs": 80, "patience": 20, "seed": 2, "split_seed": 1,
                                      "label_audits": [AUDIT]},
    "expression-framing-audited": {"arch": "expression", "augment": "door-framing",
                                   "epochs": 40, "lr": 1e-3, "patience": 12,
                                   "label_audits": [AUDIT]},
    "wide-framing-audited-seed2": {"arch": "smilenet-wide", "augment": "door-framing",
                                   "epochs": 80, "patience": 20, "seed": 2, "split_seed": 1,
                                   "label_audits": [AUDIT]},
    "expression-framing-audited-seed2": {"arch": "expression", "augment": "door-framing",
                                         "epochs": 40, "lr": 1e-3, "patience": 12, "seed": 2,
                                         "split_seed": 1, "label_audits": [AUDIT]},
    # the recipe of scripts/aligned_crop_study.py's from-scratch runs (the shipped model's
    # parent: door-strong, lr 2e-3) with both audit rounds, two training seeds: meant for the
    # landmark-aligned crops (aligned_crop_study.py export), which 40 CPU epochs left 0.003
    # short on clean faces (reports/README.md, aligned-crops)
    "default-strong-audited": {"arch": "default", "augment": "door-strong", "epochs": 80,
                               "lr": 2e-3, "patience": 20, "label_audits": AUDITS},
    "default-strong-audited-seed2": {"arch": "default", "augment": "door-strong", "epochs": 80,
                                     "lr": 2e-3, "patience": 20, "seed": 2, "split_seed": 1,
                                     "label_audits": AUDITS},
}
COMMON = {"normalize": "clahe", "mirror_average": True, "val_fraction": 0.15, "seed": 1}

SMOKE = """
import numpy as np, keras
from happyhouse.train import models
from happyhouse.train.mirror import mirror_average
m = mirror_average(models.build("default"))
m.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=keras.backend.backend() == "jax")
m.fit(np.random.rand(16, 64, 64, 3).astype("float32"), (np.arange(16) % 2).astype("float32"),
      batch_size=8, epochs=1, verbose=0)
b = keras.backend.backend()
if b == "jax":
    import jax; dev = jax.devices()[0].platform
elif b == "torch":
    import torch; dev = "gpu" if torch.cuda.is_available() else "cpu"
else:
    import tensorflow as tf; dev = "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
print("SMOKE", b, dev)
"""


def choose_backend(backends: List[str], log) -> str:
    ran = []
    for backend in backends:
        env = {**os.environ, "KERAS_BACKEND": backend}
        try:
            proc = subprocess.run([sys.executable, "-c", SMOKE], env=env, capture_output=True,
                                  text=True, timeout=180)
        except subprocess.TimeoutExpired:
            log(f"backend {backend}: smoke test timed out")
            continue
        line = [x for x in proc.stdout.splitlines() if x.startswith("SMOKE")]
        if proc.returncode or not line:
            log(f"backend {backend}: smoke test failed (rc {proc.returncode}): "
                f"{proc.stderr.strip()[-1500:]}")
            continue
        log(f"backend {backend}: {line[0]}")
        if line[0].split()[-1] in ("gpu", "cuda"):
            return backend
        ran.append(backend)
    if ran:
        return ran[0]
    raise SystemExit("no Keras backend ran the smoke test")


def snapshot(work: Path, out: Path, names: List[str]) -> None:
    """Each variant's folder as OUT/<name>.tar.gz, replaced whole (never half-written)."""
    for name in names:
        src = work / name
        if not (src / "model.keras").is_file():
            continue
        tmp = out / f".{name}.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(src, arcname=name)
        os.replace(tmp, out / f"{name}.tar.gz")


def drive(args) -> int:
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log_file = open(out / "driver.log", "a")

    def log(msg: str) -> None:
        line = f"[{time.monotonic() - started:6.1f}s] {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    names = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    backend = choose_backend(args.backends.split(","), log)
    # the variants train inside what is left of the budget, and finish (report, door-shift
    # figures) before the hard stop
    train_limit = max(30.0, args.budget - (time.monotonic() - started) - args.finish)
    hard_stop = started + args.budget + 60
    procs = {}
    for name in names:
        (work / name).mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, __file__, "--one", name, "--out", str(work / name),
               "--time-limit", str(train_limit), "--workers", str(args.workers)]
        for d in args.data:
            cmd += ["--data", d]
        if args.init_model:
            cmd += ["--init-model", args.init_model]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        if args.epochs:
            cmd += ["--epochs", str(args.epochs)]
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONUNBUFFERED": "1",
               "OMP_NUM_THREADS": "2", "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
               "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs[name] = subprocess.Popen(cmd, env=env, stdout=open(work / name / "log.txt", "w"),
                                       stderr=subprocess.STDOUT)
        log(f"started {name} (pid {procs[name].pid}), fitting at most {train_limit:.0f} s")

    stop = threading.Event()

    def snapshots():
        while not stop.wait(args.snapshot):
            try:
                snapshot(work, out, names)
            except Exception as exc:  # a snapshot must never stop the training
                log(f"snapshot failed: {exc}")

    thread = threading.Thread(target=snapshots, daemon=True)
    thread.start()
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < hard_stop:
        time.sleep(2)
    for name, p in procs.items():
        if p.poll() is None:
            log(f"{name} still running at the hard stop: terminated")
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    stop.set()
    thread.join()
    snapshot(work, out, names)
    summary = {"backend": backend, "seconds": round(time.monotonic() - started, 1), "variants": {}}
    for name, p in procs.items():
        entry = {"rc": p.returncode, "config": {**COMMON, **VARIANTS[name]}}
        ev = work / name / "eval.json"
        if ev.is_file():
            entry.update(json.loads(ev.read_text()))
        tail = (work / name / "log.txt").read_text(errors="replace").splitlines()[-6:]
        entry["log_tail"] = tail
        summary["variants"][name] = entry
        figs = entry.get("figures", {})
        log(f"{name}: rc {p.returncode} " + " ".join(
            f"{part} auc {v['roc_auc']:.4f} recall {v['recall']:.3f}"
            for part, v in figs.items()))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def one(args) -> int:
    """Train one variant with the repository's trainer; write eval.json beside it."""
    import logging

    import numpy as np

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from happyhouse.train import report
    from happyhouse.train.data import load_training_data
    from happyhouse.train.geometry import door_shift
    from happyhouse.train.trainer import (TrainConfig, apply_label_audits, contract, predict,
                                          split_for, train_split)

    fields = {**COMMON, **VARIANTS[args.one]}
    if fields.get("init") == "shipped":
        if not args.init_model:
            raise SystemExit(f"{args.one} fine-tunes --init-model, which was not given")
        fields["init"] = Path(args.init_model)
    if args.epochs:
        fields["epochs"] = args.epochs
    repo = Path(__file__).resolve().parent.parent
    fields["label_audits"] = [repo / a for a in fields.get("label_audits", ())]
    cfg = TrainConfig(data=list(args.data), out=Path(args.out),
                      report_dir=Path(args.out) / "report", limit=args.limit,
                      workers=args.workers, time_limit=args.time_limit, verbose=2,
                      extra_meta={"variant": args.one}, **fields)
    started = time.monotonic()
    spec = contract(cfg)
    data = load_training_data(cfg.data, spec.geometric(), cfg.limit)
    tr, va = split_for(cfg, data.labels)
    if cfg.label_audits:  # the training part only: validation keeps the datasets' labels
        cfg, data, tr = apply_label_audits(cfg, data, tr)
    result = train_split(cfg, data, tr, va)
    model, y = result["keras_model"], data.labels[va]
    clean = predict(model, data.images[va], spec)
    threshold = report.choose_threshold(y, clean, cfg.max_false_open)  # clean split only
    shifted = predict(model, door_shift(data.images[va]), spec)
    figures = {}
    for part, scores in (("validation", clean), ("door_shifted_validation", shifted)):
        m = report.metrics(y, scores, threshold)
        figures[part] = {k: m[k] for k in ("n", "threshold", "accuracy", "recall",
                                           "false_open_rate", "roc_auc")}
    meta = result["meta"]
    ev = {"variant": args.one, "params": meta["params"], "versions": meta["versions"],
          "epochs_run": meta["training"]["epochs_run"], "best_epoch": meta["training"]["best_epoch"],
          "seconds": round(time.monotonic() - started, 1), "figures": figures}
    (Path(args.out) / "eval.json").write_text(json.dumps(ev, indent=2) + "\n")
    np.savez_compressed(Path(args.out) / "val_scores.npz", clean=clean, shifted=shifted, labels=y)
    print("EVAL", json.dumps(ev), flush=True)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True)
    p.add_argument("--out", required=True, help="results folder (a variant's folder with --one)")
    p.add_argument("--work", default="/tmp/happyhouse-device-work",
                   help="where the variants train (archived into --out)")
    p.add_argument("--variants", help=f"comma-separated, of {sorted(VARIANTS)} (default: all)")
    p.add_argument("--backends", default="jax,torch,tensorflow")
    p.add_argument("--budget", type=float, default=400.0,
                   help="seconds from the start to the end of the last variant's fitting "
                        "plus --finish")
    p.add_argument("--finish", type=float, default=45.0,
                   help="seconds kept for each variant's report and door-shift figures")
    p.add_argument("--snapshot", type=float, default=45.0)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--init-model", help="the model a fine-tuning variant starts from")
    p.add_argument("--limit", type=int, help="images per class and source (a quick check)")
    p.add_argument("--epochs", type=int, help="override every variant's epochs (a quick check)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--time-limit", type=float, help=argparse.SUPPRESS)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    return one(args) if args.one else drive(args)


if __name__ == "__main__":
    sys.exit(main())
