"""Training loop: data -> split -> model -> fit with the usual safeguards -> report.

Safeguards a practitioner expects: seeds, class weights, a learning-rate
schedule (warm-up then cosine decay), early stopping and the best checkpoint
picked on validation loss, augmentation on training images only, and the
decision threshold chosen on validation for a target false-open rate.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from happyhouse.daemon.datasets import CLASSES, Dataset
from happyhouse.daemon.errors import ConfigError, ModelError, refuse_unless, seed_check
from happyhouse.daemon.preprocess import Preprocess, normalize_batch, to_model_input

from . import models, report
from .outputs import MODEL_FILE, staged_outputs
from .mirror import all_layers, is_mirror_averaged, mirror_average
from .augment import PRESETS, Augment, augment_labelled
from .data import DEFAULT_CAP_SEED, load_door_frames, load_training_data, stratified_split

log = logging.getLogger("happyhouse.train")

META_FILE = "train_meta.json"
META_FORMAT = "happyhouse-train-meta"
SPLIT_FILE = "split.json"


@dataclass
class TrainConfig:
    data: List[str]
    out: Path
    report_dir: Optional[Path] = None  # defaults to ``out``
    arch: str = models.DEFAULT_ARCH
    init: Optional[Path] = None  # fine-tune this model instead of building ``arch``
    epochs: int = 36
    batch_size: int = 64
    lr: float = 2e-3
    val_fraction: float = 0.15
    seed: int = 1
    #: the train/validation split's seed (None: ``seed``), so that a run can change its
    #: training seed and keep the split every general model here is compared on
    split_seed: Optional[int] = None
    patience: int = 12
    max_false_open: float = 0.01
    crop: str = "face"
    margin: float = 0.0
    size: int = 64
    limit: Optional[int] = None  # images per class and source (quick runs, tests)
    augment: str = "door"  # a name in augment.PRESETS, or "none"
    #: the fraction of training faces whose mouth is hidden and relabelled not smiling
    cover: float = 0.0
    #: False: only faces labelled not smiling are covered (no smile is relabelled)
    cover_smiles: bool = True
    door_frames: bool = False  # data are whole door frames: gate and face-crop them first
    freeze_bn: bool = True  # when fine-tuning (``init``): BatchNorm keeps its statistics
    mirror_average: bool = False  # score face and mirror image, averaged (train/mirror.py)
    #: the contract's light normalisation; None: the ``init`` model's, else "none"
    normalize: Optional[str] = None
    verbose: int = 2
    #: processes that augment batches (Keras PyDataset workers); 1: in the training process
    workers: int = 1
    #: stop after the epoch that passes this many seconds of fitting (None: no limit);
    #: the best checkpoint so far is the model, as after early stopping
    time_limit: Optional[float] = None
    #: label audits (``happyhouse.train.label_audit``) applied to the training part only
    label_audits: Sequence[Path] = ()
    #: at most this many training faces of a source (its data folder's name), picked at
    #: random with ``cap_seed``; the training part only, so the split never moves
    source_caps: Mapping[str, int] = field(default_factory=dict)
    cap_seed: int = DEFAULT_CAP_SEED
    extra_meta: Dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # every number a command line can hand in, checked before hours of training
        # (a NaN rate once trained a NaN model)
        refuse_unless((
            (self.epochs >= 1 and self.batch_size >= 1,
             "epochs and batch size must be at least 1"),
            (0 < self.lr <= 1, f"the learning rate must be more than 0 and at most 1, got {self.lr}"),
            (0 < self.val_fraction < 1,
             f"the validation fraction must be between 0 and 1, got {self.val_fraction}"),
            (0 <= self.max_false_open < 1,
             f"the false-open rate must be in [0, 1), got {self.max_false_open}"),
            (0 <= self.margin <= 1, f"the face-crop margin must be 0 to 1, got {self.margin}"),
            (self.patience >= 0, f"patience must be 0 or more epochs, got {self.patience}"),
            (self.workers >= 1, f"workers must be at least 1, got {self.workers}"),
            # 0 once read as "this folder holds no images"
            (self.limit is None or self.limit >= 1,
             f"the limit of images per class and source must be at least 1, got {self.limit}"),
            (self.time_limit is None or self.time_limit >= 0,  # 0: stop after one epoch
             f"the time limit must be 0 or more seconds, got {self.time_limit}"),
            (0 <= self.cover < 1, f"the covered fraction (--cover) must be in [0, 1), got {self.cover}"),
            (self.cover == 0 or self.augment != "none",
             "--cover is part of the augmentation: it needs an --augment preset, not 'none'"),
            (self.cover_smiles or self.cover > 0,
             "--cover-not-smiling-only says which faces --cover hides: give --cover too"),
            seed_check("the training seed (--seed)", self.seed),
            seed_check("the split's seed (--split-seed)", self.split_seed),
            seed_check("the source caps' seed (--cap-seed)", self.cap_seed),
        ))

    @property
    def split_seed_used(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed


def set_seeds(seed: int) -> None:
    models.keras().utils.set_random_seed(seed)


def class_weights(labels: np.ndarray) -> Dict[int, float]:
    """Balanced weights n / (2 n_c) so the rarer class is not drowned out."""
    counts = np.bincount(np.asarray(labels), minlength=2).astype(float)
    return {c: float(len(labels) / (2.0 * counts[c])) for c in (0, 1)}


def contract(cfg: TrainConfig) -> Preprocess:
    """The preprocessing contract this run trains (and records) the model with.

    A fine-tuned model keeps the normalisation it was trained with unless told
    otherwise: a house model fed other pixels than its parent would lose what
    the parent learnt.
    """
    normalize = cfg.normalize if cfg.normalize is not None else inherited_normalize(cfg.init)
    return Preprocess(crop=cfg.crop, margin=cfg.margin, size=cfg.size, normalize=normalize)


def inherited_normalize(init: Optional[Path]) -> str:
    """The ``normalize`` step ``init`` was trained with ("none" without a model or sidecar)."""
    if init is None:
        return "none"
    try:
        return Preprocess.from_dict(read_meta(init)["preprocess"]).normalize
    except (ModelError, KeyError, ValueError, OSError) as exc:
        # a copy of a model without its sidecar: say so, the pixels may not be its parent's
        log.warning("--init %s: its training metadata cannot be read (%s); fine-tuning with "
                    "normalize 'none' unless --normalize says otherwise", init, exc)
        return "none"


def augmentation(cfg: TrainConfig) -> Optional[Augment]:
    """The run's augmentation: its preset, with ``cfg.cover`` of the faces covered (None: none)."""
    if cfg.augment == "none":
        return None
    return replace(PRESETS[cfg.augment], cover=cfg.cover, cover_smiles=cfg.cover_smiles)


def _worker_ignores_ctrl_c(trainer_pid: int) -> None:
    """In a ``--workers`` batch process: leave Ctrl-C to the trainer.

    The terminal's Ctrl-C reaches the whole process group. It killed the workers too, the
    batches they held were never delivered, and the trainer, after saying "interrupted",
    waited for them for good (Keras drains its queue on the way out). Ignored here, the
    workers finish their batches and end with the trainer's pool.
    """
    if os.getpid() != trainer_pid and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _batches(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig):
    """A Keras PyDataset of augmented, shuffled batches (seeded).

    The order is drawn once per epoch and each batch's augmentation from its
    own generator (seed, epoch, batch), so a batch is the same whichever
    worker makes it and in whichever order: ``cfg.workers`` processes give
    the same batches as one.

    ``images`` are crops before the contract's normalisation; it runs here,
    after augmentation, as it runs at the door after the camera's light.
    """
    spec = contract(cfg)
    k = models.keras()
    aug = augmentation(cfg)
    trainer_pid = os.getpid()

    class Batches(k.utils.PyDataset):
        def __init__(self):
            workers = max(1, int(cfg.workers))
            super().__init__(workers=workers, use_multiprocessing=workers > 1)
            self.epoch = 0
            self._shuffle()

        def _shuffle(self):
            self.order = np.random.default_rng([cfg.seed, self.epoch]).permutation(len(labels))

        def __len__(self):
            return int(np.ceil(len(labels) / cfg.batch_size))

        def __getitem__(self, i):
            _worker_ignores_ctrl_c(trainer_pid)
            idx = self.order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            batch, batch_labels = images[idx], labels[idx]
            if aug is not None:  # a covered mouth is relabelled "not smiling"
                batch, batch_labels = augment_labelled(
                    batch, batch_labels, aug, np.random.default_rng([cfg.seed, self.epoch, i]))
            return to_model_input(normalize_batch(batch, spec)), batch_labels.astype(np.float32)

        def on_epoch_end(self):
            self.epoch += 1
            self._shuffle()

    return Batches()


def load_model(path: Path):
    """A saved Keras model, with a clear error for a missing or unreadable file."""
    from happyhouse.daemon.filesafety import require_file

    path = require_file(path, "model", ModelError)
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        # Keras said "File not found: filepath=..." of a file cut short by a copy
        raise ModelError(f"model {path} is corrupt: a .keras file must be a zip archive")
    try:  # importing .mirror above registered the layers a mirror-averaged model needs
        return models.keras().models.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(f"{path} is not a readable Keras model: {exc}") from None


def _model(cfg: TrainConfig):
    if cfg.init is None:
        model = models.build(cfg.arch, (cfg.size, cfg.size, 3))
        return mirror_average(model) if cfg.mirror_average else model
    model = load_model(cfg.init)
    if cfg.mirror_average:
        model = mirror_average(model)  # unchanged if it already is
    if cfg.freeze_bn:
        # A few dozen steps of small batches cannot re-estimate BatchNorm's moving
        # statistics: training would normalise with batch statistics and inference
        # with half-updated moving ones, so the fine-tuned model fails on unseen
        # frames while reaching 100% on its training frames. Frozen, BN normalises
        # the same way in training and at the door; the convolutions adapt.
        for layer in all_layers(model):  # a mirror-averaged model nests the classifier
            if type(layer).__name__ == "BatchNormalization":
                layer.trainable = False
    want = (cfg.size, cfg.size, 3)
    if tuple(model.input_shape[1:]) != want:
        raise ModelError(f"{cfg.init} takes input {model.input_shape[1:]}, but the "
                         f"preprocessing gives {want}")
    return model


def _compile(model, cfg: TrainConfig, steps: int) -> None:
    k = models.keras()
    total = max(1, cfg.epochs * steps)
    warmup = min(steps, total // 4)
    # warm-up protects BatchNorm statistics (and a fine-tuned model's features)
    # from a full-size first step; cosine decay then settles into a minimum
    schedule = k.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / 10.0, decay_steps=max(1, total - warmup), alpha=0.02,
        warmup_target=cfg.lr, warmup_steps=warmup)
    model.compile(optimizer=k.optimizers.Adam(schedule),
                  loss=k.losses.BinaryCrossentropy(),
                  metrics=["accuracy", k.metrics.AUC(name="auc")],
                  jit_compile=_jit(k))


def _jit(k) -> bool:
    """Compile the train step only where an uncompiled one is unusably slow (JAX).

    On TensorFlow, XLA compilation costs more than it saves on tiny CPU runs;
    torch runs eagerly (its compiler is optional and slow to start).
    """
    return k.backend.backend() == "jax"


def time_limit(seconds: float):
    """A Keras callback: stop after the epoch that passes ``seconds`` of fitting."""
    k = models.keras()

    class TimeLimit(k.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if time.monotonic() - self.started >= seconds:
                self.model.stop_training = True
                log.info("time limit %.0f s reached after epoch %d", seconds, epoch + 1)

    return TimeLimit()


def predict(model, images: np.ndarray, spec: Optional[Preprocess] = None,
            batch_size: int = 256) -> np.ndarray:
    """Scores of crops prepared with ``spec.geometric()``; ``spec`` normalises them first."""
    if spec is not None:
        images = normalize_batch(images, spec)
    return model.predict(to_model_input(images), batch_size=batch_size, verbose=0).reshape(-1)


def train(cfg: TrainConfig) -> Dict[str, object]:
    """Load ``cfg.data``, split it, train (or fine-tune), save model + metadata + report."""
    from happyhouse.daemon.datasets import refuse_test_split
    from happyhouse.daemon.filesafety import require_file

    if cfg.init is not None:  # one line before anything: it warned twice and read all the data
        require_file(cfg.init, "--init model", ModelError)
    spec = contract(cfg).geometric()  # normalised per batch, after augmentation
    check_output_folders(cfg)  # before minutes of loading: a folder that cannot be is one line
    if not cfg.door_frames:  # a house's own door frames (the house protocol) are its to train on
        refuse_test_split(cfg.data, "training a general model")
    if cfg.door_frames:
        data = load_door_frames(cfg.data, spec, cfg.limit)
    else:
        data = load_training_data(cfg.data, spec, cfg.limit)
    tr, va = split_for(cfg, data.labels)
    if cfg.label_audits:
        cfg, data, tr = apply_label_audits(cfg, data, tr)
    if cfg.source_caps:
        cfg, tr = apply_source_caps(cfg, data, tr)
    return train_split(cfg, data, tr, va)


def _output_folders(cfg: "TrainConfig"):
    out = Path(cfg.out)
    return (("the model folder (--out)", out),
            ("the report folder (--report)", Path(cfg.report_dir or out)))


def check_output_folders(cfg: "TrainConfig") -> None:
    """DataError if the model or report folder plainly cannot be created (nothing is made),
    lies in a ``--data`` folder (its plots and model would be read as faces next time),
    or the model folder holds the ``--init`` model, which the run would replace; or a
    ``--data`` source is given twice."""
    from happyhouse.daemon.datasets import repeated_source
    from happyhouse.daemon.errors import DataError
    from happyhouse.daemon.filesafety import check_creatable, inside

    if cfg.init is not None and inside(cfg.init, cfg.out):
        # --init gm/model.keras --out gm overwrote the model it started from, and dropped
        # its geometry stage, with exit 0 and no copy kept
        raise DataError(f"--out {cfg.out} holds the --init model {cfg.init}, which this run "
                        f"would replace: give a new folder (and copy it over once it is better)")
    repeated = repeated_source(cfg.data)
    if repeated is not None:
        raise DataError(f"--data {repeated} is given twice: its images would be counted twice "
                        f"and fall on both sides of the validation split")
    for what, folder in _output_folders(cfg):
        for source in cfg.data:
            if Path(source).is_dir() and inside(folder, source):
                raise DataError(f"{what} {folder} is inside the training data {source}: its "
                                f"plots would be read as faces; give a folder outside it")
        check_creatable(folder, what)


def split_for(cfg: "TrainConfig", labels: np.ndarray):
    """(training, validation) indices of the run's split (``split_seed``, else ``seed``)."""
    return stratified_split(labels, cfg.val_fraction, cfg.split_seed_used)


def apply_label_audits(cfg: "TrainConfig", data: Dataset, tr: np.ndarray):
    """The training part with the label audits' verdicts: smiles relabelled, non-faces left out.

    The split is made first, on the datasets' labels, so an audit never moves a
    face between training and validation.
    """
    from happyhouse.daemon.bundle import sha256_file

    from .audits import audit_training_part, face_name, load_audits

    audit = load_audits(cfg.label_audits)
    labels, tr, summary = audit_training_part([face_name(i) for i in data.ids], data.labels, tr, audit)
    log.info("label audit: %d training faces relabelled, %d left out", summary["relabelled"],
             summary["left_out"])
    audited = replace(data, labels=labels)
    files = [{"file": Path(p).name, "sha256": sha256_file(Path(p))} for p in cfg.label_audits]
    cfg = replace(cfg, extra_meta={**cfg.extra_meta, "label_audit": {"files": files, **summary}})
    return cfg, audited, tr


def apply_source_caps(cfg: "TrainConfig", data: Dataset, tr: np.ndarray):
    """The training part with at most ``cfg.source_caps[source]`` faces of each capped source."""
    from .data import capped

    keep = capped([data.ids[i] for i in tr], cfg.source_caps, cfg.cap_seed)
    log.info("source caps %s: %d of %d training faces kept", dict(cfg.source_caps),
             int(keep.sum()), len(tr))
    summary = {"caps": dict(cfg.source_caps), "seed": cfg.cap_seed,
               "training_faces_before": int(len(tr)), "training_faces": int(keep.sum())}
    return replace(cfg, extra_meta={**cfg.extra_meta, "source_caps": summary}), tr[keep]


def train_split(cfg: TrainConfig, data: Dataset, tr: np.ndarray, va: np.ndarray) -> Dict[str, object]:
    """Train on ``data[tr]``, pick the checkpoint and threshold on ``data[va]``, save everything."""
    if cfg.augment != "none" and cfg.augment not in PRESETS:
        raise ConfigError(f"augmentation {cfg.augment!r} is not one of {sorted(PRESETS)} or 'none'")
    started = time.monotonic()
    set_seeds(cfg.seed)
    spec = contract(cfg)
    log.info("data %s; train %d, validation %d", data.summary(), len(tr), len(va))
    with staged_outputs(_output_folders(cfg)) as (out, report_dir, final_out, final_report):
        result = _train_into(cfg, data, tr, va, spec, started, out, report_dir, final_out)
    return {**result, "model": final_out / MODEL_FILE, "report_dir": final_report}


def _train_into(cfg: TrainConfig, data: Dataset, tr: np.ndarray, va: np.ndarray, spec, started: float,
                out: Path, report_dir: Path, final_out: Path) -> Dict[str, object]:

    model = _model(cfg)
    batches = _batches(data.images[tr], data.labels[tr], cfg)
    _compile(model, cfg, len(batches))
    k = models.keras()
    best_path = out / MODEL_FILE
    callbacks = [
        k.callbacks.ModelCheckpoint(best_path, monitor="val_loss", save_best_only=True),
        k.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                  restore_best_weights=True),
        # the per-epoch figures belong with the report the person reads
        k.callbacks.CSVLogger(str(report_dir / "history.csv")),
    ]
    if cfg.time_limit is not None:
        callbacks.append(time_limit(cfg.time_limit))
    val_images = normalize_batch(data.images[va], spec)
    val = (to_model_input(val_images), data.labels[va].astype(np.float32))
    fit = model.fit(batches, validation_data=val, epochs=cfg.epochs, verbose=cfg.verbose,
                    class_weight=class_weights(data.labels[tr]), callbacks=callbacks)
    history = report.history_lists(fit.history)
    model = load_model(best_path)  # the checkpoint with the lowest validation loss
    # saved again without the optimizer's moments (2/3 of the checkpoint's bytes):
    # the converter needs weights only, and fine-tuning compiles afresh
    model.save(best_path)
    scores = predict(model, val_images)
    threshold = report.choose_threshold(data.labels[va], scores, cfg.max_false_open)
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    meta = _meta(cfg, spec, data, tr, va, threshold, history, best_epoch, model)
    result = report.write_report(
        report_dir, history, val_images, data.labels[va], scores, threshold,
        extra={"max_false_open": cfg.max_false_open, "best_epoch": best_epoch,
               # a report is read on other machines: it names datasets, not this one's folders
               "epochs_run": len(history["loss"]), "split": meta["split"],
               "data": {**meta["data"], "sources": [Path(p).name for p in meta["data"]["sources"]]},
               "model": str(final_out / MODEL_FILE), "train_seconds": round(time.monotonic() - started, 1)})
    report.write_architecture(report_dir, model)
    meta["validation"] = {k_: result[k_] for k_ in ("n", "accuracy", "precision", "recall", "f1",
                                                   "roc_auc", "false_open_rate")}
    write_meta(out / META_FILE, meta)
    _write_split(out / SPLIT_FILE, data, tr, va)
    return {"model": best_path, "meta": meta, "report": result, "report_dir": report_dir,
            "keras_model": model, "history": history}


def fit_fixed(cfg: TrainConfig, data: Dataset, tr: np.ndarray):
    """Train on all of ``data[tr]`` for exactly ``cfg.epochs``, with nothing held out.

    The refit after cross-validation: the folds already chose the epoch count
    and the threshold, so every labelled image can now train. Returns the
    Keras model (also saved as ``cfg.out/model.keras``) and its history.
    """
    set_seeds(cfg.seed)
    model = _model(cfg)
    batches = _batches(data.images[tr], data.labels[tr], cfg)
    _compile(model, cfg, len(batches))
    fit = model.fit(batches, epochs=cfg.epochs, verbose=cfg.verbose,
                    class_weight=class_weights(data.labels[tr]))
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    model.save(Path(cfg.out) / MODEL_FILE)
    return model, report.history_lists(fit.history)


def _meta(cfg, spec, data: Dataset, tr, va, threshold, history, best_epoch, model) -> Dict:
    return {
        "format": META_FORMAT, "version": 1,
        "model_file": MODEL_FILE,
        "arch": cfg.arch if cfg.init is None else _init_arch(cfg.init),
        "init": str(cfg.init) if cfg.init else None,
        "params": int(model.count_params()),
        "mirror_average": is_mirror_averaged(model),
        "preprocess": spec.to_dict(),
        "input": {"shape": [1, spec.size, spec.size, 3], "dtype": "float32", "range": [0.0, 1.0]},
        "output": "sigmoid P(happy)",
        "labels": list(CLASSES),
        "threshold": float(threshold),
        "threshold_rule": f"lowest threshold >= 0.5 with validation false-open rate <= "
                          f"{cfg.max_false_open}",
        "max_false_open": cfg.max_false_open,
        "data": data.summary(),
        "split": {"val_fraction": cfg.val_fraction, "seed": cfg.split_seed_used,
                  "n_train": int(len(tr)),
                  "n_val": int(len(va)), "rule": "happyhouse.train.data.stratified_split"},
        "training": {"epochs": cfg.epochs, "epochs_run": len(history["loss"]),
                     "best_epoch": best_epoch, "batch_size": cfg.batch_size, "lr": cfg.lr,
                     "freeze_bn": bool(cfg.init and cfg.freeze_bn), "door_frames": cfg.door_frames,
                     "time_limit": cfg.time_limit, "seed": cfg.seed,
                     "augment": ({"preset": cfg.augment, **asdict(augmentation(cfg))}
                                 if cfg.augment != "none" else None),
                     "class_weights": class_weights(data.labels[tr])},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **cfg.extra_meta,
    }


def versions() -> Dict[str, str]:
    """The software a model was trained with: Keras, its backend and that backend's version.

    Training runs on any Keras 3 backend (TensorFlow here, torch or JAX on a
    GPU machine without TensorFlow); the backend is imported only to read its
    version, and a backend that cannot say records "unknown".
    """
    k = models.keras()
    backend = k.backend.backend()
    found = {"keras": k.__version__, "backend": backend,
             "python": platform.python_version(), "numpy": np.__version__}
    module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}.get(backend, backend)
    try:
        found[backend] = str(__import__(module).__version__)
    except Exception:  # an exotic or broken backend must not fail a finished training run
        found[backend] = "unknown"
    return found


def _init_arch(init: Path) -> str:
    """The architecture a fine-tuned model inherits (from its own sidecar, if any)."""
    try:
        return str(read_meta(init)["arch"])
    except (ModelError, KeyError, ValueError):
        return f"finetuned:{Path(init).name}"


def write_meta(path: Path, meta: Dict) -> None:
    with open(path, "w") as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")


def read_meta(model_path: Path) -> Dict:
    """The ``train_meta.json`` sidecar of a saved model (for the converter)."""
    path = Path(model_path).parent / META_FILE
    if not path.is_file():
        raise ModelError(f"{path} is missing: a trained model needs its metadata sidecar")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is not readable JSON ({exc}): copy the model's folder "
                         f"again, with its train_meta.json") from None
    if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
        raise ModelError(f"{path} is not {META_FORMAT} metadata")
    if not isinstance(meta.get("preprocess"), dict):
        raise ModelError(f"{path} lacks its preprocess contract: copy the model's folder again")
    Preprocess.from_dict(meta["preprocess"])  # validates
    return meta


def _write_split(path: Path, data: Dataset, tr, va) -> None:
    """Which files validated, next to the model: the converter's parity check
    holds these back. Ids are as loaded (paths under ``sources``, or
    ``file.h5#i``); strip a source prefix to reuse them on another machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"sources": data.sources, "n_train": int(len(tr)),
                   "validation_ids": [data.ids[i] for i in va]}, handle, indent=0)
