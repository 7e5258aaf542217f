"""Keras model + training metadata + data -> a verified int8 bundle.

Steps, each of which can refuse: load and check the model, load the data and
check it against the model input, split a hold-out, calibrate and convert,
prove parity on the hold-out, pick golden vectors, then write the bundle
atomically (``write_bundle``) so a refusal anywhere leaves nothing behind.
"""

from __future__ import annotations

import logging
import platform
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from happyhouse.daemon.bundle import MODEL_FILE, Bundle, sha256_file, write_bundle
from happyhouse.daemon.datasets import Dataset
from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.evidence import evidence_problems, roc_table
from happyhouse.daemon.filesafety import check_creatable, check_replaceable, inside, real_path
from happyhouse.daemon.geometry import HEAD_FILE, fuse
from happyhouse.daemon.preprocess import normalize_batch
from happyhouse.daemon.runtime import PROBABILITY, VIEW_LOGITS, Classifier

from . import parity as parity_mod
from .card import model_card
from .metadata import TrainingMeta, find_metadata, normalise_id, read_metadata
from .quantize import (DEFAULT_CALIBRATION_SIZE, calibration_sample, keras_scores, load_images,
                       load_keras_model, model_input_shape, to_int8_tflite, view_logits)

log = logging.getLogger(__name__)

GOLDEN_PER_CLASS = 3
#: (key in model.json, distributions that provide it: the first installed wins)
VERSIONED = (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("keras", ("keras",)),
             ("ai_edge_litert", ("ai-edge-litert",)), ("numpy", ("numpy",)),
             ("opencv", ("opencv-python-headless", "opencv-python")))


@dataclass(frozen=True)
class Options:
    model: Path
    calibration: Sequence[Path]
    out: Path
    holdout: Sequence[Path] = ()
    #: a hold-out the caller made in memory (happyhouse-adapt: a house's face crops and
    #: their mirror images), as ``load_images`` returns data: crops of the contract's
    #: geometric step at the model's input size; used instead of ``holdout`` or a split
    holdout_data: Optional[Dataset] = None
    #: what ``holdout_data`` is, in words (shipped: dataset or folder names, no paths)
    holdout_description: str = ""
    metadata: Optional[Path] = None
    metrics: Optional[Path] = None
    max_drop: float = parity_mod.DEFAULT_MAX_DROP
    calibration_size: int = DEFAULT_CALIBRATION_SIZE
    holdout_fraction: float = parity_mod.DEFAULT_HOLDOUT_FRACTION
    seed: int = 0
    notes: str = ""
    no_geometry: bool = False  # ignore a geometry.json beside the model
    #: False: the model lies in a temporary folder deleted after the conversion
    #: (happyhouse-adapt); the bundle names it by its file name and sha256, not that folder
    model_kept: bool = True
    #: what the int8 model outputs (runtime.SCORE_KINDS): logits by default, the
    #: sigmoid's 256 int8 levels only for a daemon older than bundle format 3
    score: str = VIEW_LOGITS


def versions() -> dict:
    found = {"python": platform.python_version()}
    for key, dists in VERSIONED:
        for dist in dists:
            try:
                found[key] = importlib_metadata.version(dist)
                break
            except importlib_metadata.PackageNotFoundError:
                continue
    return found


#: a folder holding one of these is that kind of output, replaced only by its own kind: a
#: report named as adapt's --report deleted a trained model's folder (its metrics.json,
#: training's report, passed as "an earlier report")
OUTPUT_KINDS = {"model.keras": "a trained model", MODEL_FILE: "a model bundle"}


def check_writable(out: Path, what: str = "a model bundle", marker: str = MODEL_FILE,
                   inputs: Iterable[Tuple[str, Optional[Path]]] = ()) -> None:
    """Fail before the slow work if ``what`` cannot be written where asked.

    The folder is replaced whole, so an existing one must be an earlier ``what`` (it
    holds ``marker``, and no other kind's file) or empty: never a model's own folder,
    a house's frames or notes, nor a folder holding one of ``inputs`` ((flag, path)
    pairs: replacing it deleted them, and exit 0).
    """
    check_replaceable(out)
    for name, kind in OUTPUT_KINDS.items():
        if kind != what and (out / name).exists():
            raise ModelError(f"output {out} holds {name}: it is {kind}, not {what}; it "
                             f"would be replaced whole: give a new folder")
    if out.is_dir() and not (out / marker).is_file() and any(out.iterdir()):
        raise ModelError(f"output {out} exists and is not {what} (no {marker}): it would be "
                         f"replaced whole with what is in it; give a new folder")
    for flag, path in inputs:
        if path is not None and inside(path, out):
            raise ModelError(f"{flag} {path} is inside the output {out}, which is replaced "
                             f"whole: it would be deleted; give an output folder elsewhere")
    parent = out.resolve().parent
    if not parent.is_dir():  # made when the bundle is written: a refused run leaves none
        check_creatable(out, "the output folder")
        return
    try:
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.probe.", dir=parent):
            pass
    except OSError as exc:
        raise ModelError(f"cannot write {what} to {out}: {exc.strerror or exc}") from None


def golden_indices(labels: np.ndarray, scores: np.ndarray, per_class: int = GOLDEN_PER_CLASS) -> np.ndarray:
    """Per class, images spread over the score range (low, middle, high).

    A spread catches a runtime that is off in one region of the output only,
    which a set of saturated outputs would hide.
    """
    chosen = []
    for label in (1, 0):
        members = np.flatnonzero(labels == label)
        if len(members) == 0:
            continue
        ordered = members[np.argsort(scores[members], kind="stable")]
        picks = np.linspace(0, len(ordered) - 1, num=min(per_class, len(ordered)))
        chosen.extend(ordered[np.round(picks).astype(int)])
    return np.asarray(list(dict.fromkeys(chosen)), dtype=np.int64)


def choose_holdout(opts: Options, train_meta: TrainingMeta, data: Dataset, spec, shape,
                   stage=None):
    """(calibration pool indices, hold-out data, description), best evidence first.

    0. the caller's in-memory hold-out (``Options.holdout_data``), checked against the
    model input like any data; every calibration image may then calibrate;
    1. ``--holdout`` data; 2. the images training validated on (``split.json``),
    so calibration sees training images only and parity is measured on unseen
    ones; 3. a seeded stratified split of the calibration data.
    """
    if opts.holdout_data is not None:
        got = opts.holdout_data.images.shape[1:]
        if got != tuple(shape):
            raise DataError(f"the hold-out images are {'x'.join(map(str, got))} but the model "
                            f"input is {'x'.join(map(str, shape))}")
        if opts.holdout or not opts.holdout_description:
            raise DataError("an in-memory hold-out needs its description and no --holdout")
        return np.arange(len(data)), opts.holdout_data, opts.holdout_description
    if opts.holdout:
        calibrating = {real_path(p) for p in opts.calibration}
        both = [p for p in opts.holdout if real_path(p) in calibrating]
        if both:
            # the parity proof was measured on the images that set the int8 ranges, and the
            # bundle said "--holdout" as if they were unseen
            raise DataError(f"--holdout {both[0]} is also --calibration data: give the parity "
                            f"proof images the calibration did not see")
        return (np.arange(len(data)),
                load_images(opts.holdout, spec.geometric(), shape, door_frames(train_meta),
                            level=stage[0] if stage else None),
                # shipped: the datasets' names, never the build machine's folders (portable)
                "--holdout " + ", ".join(Path(p).name for p in opts.holdout))
    if train_meta.validation_ids:
        is_val = np.array([normalise_id(i) in train_meta.validation_ids for i in data.ids])
        counts = [int(np.sum(is_val & (data.labels == c))) for c in (0, 1)]
        if min(counts) >= 2 and int(np.sum(~is_val)) > 0:
            return (np.flatnonzero(~is_val), data.subset(np.flatnonzero(is_val)),
                    f"the training validation split ({int(is_val.sum())} of "
                    f"{len(train_meta.validation_ids)} validation images found in the "
                    f"calibration data)")
        log.warning("the training validation split matches %s images of the calibration data; "
                    "using a seeded split instead", counts)
    pool, held = parity_mod.stratified_split(data.labels, opts.holdout_fraction, opts.seed)
    return (pool, data.subset(held),
            f"seeded stratified {opts.holdout_fraction:g} split of the calibration data")


def door_frames(train_meta: TrainingMeta) -> bool:
    """Whether training gated whole door frames (``happyhouse-train --door-frames``)."""
    training = train_meta.extra.get("training")
    return bool(isinstance(training, dict) and training.get("door_frames"))


def convert(opts: Options) -> Bundle:
    """Build, prove and write the bundle; raises a HappyHouseError on any refusal."""
    check_writable(opts.out, inputs=[("the model", opts.model), ("--metadata", opts.metadata),
                                     ("--metrics", opts.metrics)]
                   + [("--calibration", p) for p in opts.calibration]
                   + [("--holdout", p) for p in opts.holdout])
    train_meta = read_metadata(find_metadata(opts.model, opts.metadata), opts.metrics)
    stage = geometry_stage(opts)  # a broken geometry.json: one line now, not after the work
    model = load_keras_model(opts.model)
    shape = model_input_shape(model, opts.model)
    spec = train_meta.preprocess

    # crops before the contract's light normalisation: the geometry stage reads those,
    # the classifier reads them normalised (as the door's pipeline does)
    data = load_images(opts.calibration, spec.geometric(), shape, door_frames(train_meta),
                       level=stage[0] if stage else None)
    pool, held_data, holdout_source = choose_holdout(opts, train_meta, data, spec, shape, stage)
    calib_idx = calibration_sample(data.labels, pool, opts.calibration_size, opts.seed)
    calib = data.subset(calib_idx)
    log.info("calibrating on %d of %d images, hold-out %d", len(calib), len(data), len(held_data))

    served, score_kind = served_graph(model, opts.score)
    tflite = to_int8_tflite(served, normalize_batch(calib.images, spec))
    clf = Classifier(tflite, score=score_kind)
    held_input = normalize_batch(held_data.images, spec)
    float_scores = keras_scores(model, held_input)
    int8_scores = clf.scores(held_input)
    threshold = train_meta.threshold
    golden_extra, extra_files = {}, {}
    if stage is not None:
        geometry, sidecar = stage
        shape_scores = np.array([geometry.score(crop) for crop in held_data.images])
        float_scores = fuse(float_scores, shape_scores, geometry.spec.weights)
        int8_scores = fuse(int8_scores, shape_scores, geometry.spec.weights)
        threshold = float(sidecar["threshold"])
        extra_files[HEAD_FILE] = (opts.model.parent / HEAD_FILE).read_bytes()
    result = parity_mod.measure(float_scores, int8_scores, held_data.labels, threshold)
    log.info("%s", result.summary())
    parity_mod.require(result, opts.max_drop)

    pick = golden_indices(held_data.labels, int8_scores)
    golden_in = held_input[pick]
    golden_out = clf.raw_outputs(golden_in)
    if stage is not None:
        golden_extra = {"geometry_inputs": held_data.images[pick],
                        "geometry_scores": shape_scores[pick].astype(np.float64)}

    meta = bundle_meta(opts, train_meta, clf, calib, data, held_data, holdout_source, result,
                       tflite_size=len(tflite))
    if stage is not None:
        meta = {**meta, "threshold": threshold, "geometry": stage[0].spec.to_dict(),
                "metrics": {**meta["metrics"], "fusion": stage[1]["validation"]},
                "output": {**meta["output"], "meaning": meta["output"]["meaning"]
                           + "; the door fuses it with the geometry stage's score"}}
    meta = portable(meta)
    # the served scores' ROC on the hold-out (fused when there is a geometry stage):
    # the daemon's threshold floor comes from it
    meta["metrics"]["parity"]["roc"] = roc_table(int8_scores, held_data.labels)
    card = model_card(meta, opts.notes)
    bundle = write_bundle(opts.out, tflite, meta, golden_in, golden_out,
                          extra_files={"MODEL_CARD.md": card, **extra_files},
                          golden_extra=golden_extra, prove=prove)
    for problem in evidence_problems(bundle.meta):  # written, but no door tool arms it
        log.warning("%s: %s; no door will arm this bundle (the service, --verify-model and "
                    "--once refuse it, --check says NO-GO)", bundle.path, problem)
    return bundle


def prove(bundle: Bundle) -> None:
    """What a written bundle must pass before it replaces an earlier one: the golden
    self-tests (the classifier's and the geometry stage's), run in the written folder. They
    ran after the swap, so a bundle failing them had already deleted the one before."""
    # write_bundle's temporary folder is private (0700); the daemon may run as another user
    bundle.path.chmod(0o755)
    bundle.self_test(bundle.classifier())
    if bundle.geometry is not None:
        bundle.self_test_geometry(bundle.geometry_stage())


def served_graph(model, score: str):
    """(the Keras graph to quantize, what its output holds) for ``Options.score``."""
    if score == PROBABILITY:
        return model, PROBABILITY
    if score != VIEW_LOGITS:
        raise ModelError(f"unknown output kind {score!r}; choose {PROBABILITY} or {VIEW_LOGITS}")
    logits = view_logits(model)
    if logits is None:
        log.warning("the model does not end in one sigmoid unit: its int8 output stays the "
                    "probability (256 levels)")
        return model, PROBABILITY
    return logits, VIEW_LOGITS


#: model.json's words for each output kind
MEANINGS = {PROBABILITY: "happy score (sigmoid), quantized",
            VIEW_LOGITS: "one logit per view (the face, then its mirror image when there are "
                         "two), quantized; happy score = mean of their sigmoids, in float"}


def geometry_stage(opts: Options):
    """(Geometry, sidecar) from ``geometry.json`` beside the model, or None without one.

    ``python -m happyhouse.train.geometry`` writes it with the head and the
    fused threshold chosen on the classifier's own validation split.
    """
    from happyhouse.train.geometry import stage_beside  # desktop side: the converter has Keras anyway

    stage = None if opts.no_geometry else stage_beside(opts.model)
    if stage is not None:
        log.info("geometry stage beside %s (fused threshold %.3f)", opts.model,
                 stage[1]["threshold"])
    return stage


#: how a path given on the build machine starts: absolute, or relative upward / here
#: (``../shared/datasets/genki4k-train``): the shared data lives beside the checkout
_PATH_STARTS = ("/", "../", "./")


def portable(value, key: str = ""):
    """``value`` with every build-machine path replaced by its last part (a dataset's name).

    Shipped metadata names its data (``genki4k-train``), not the folders of the
    machine that built it. The training model's own files stay findable (the
    benchmark compares against that Keras model): relative to the working
    folder where they lie below it, else as they were given.
    """
    if key in ("model_file", "metadata_file") and isinstance(value, str):
        try:
            return str(Path(value).resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: portable(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, key) for v in value]
    if isinstance(value, str) and value.startswith(_PATH_STARTS) and "\n" not in value:
        path, sep, index = value.partition("#")
        return Path(path).name + sep + index
    return value


def bundle_meta(opts: Options, train_meta: TrainingMeta, clf: Classifier, calib: Dataset,
                data: Dataset, held: Dataset, holdout_source, result: parity_mod.Parity,
                tflite_size: int) -> dict:
    return {
        "name": opts.model.parent.name if opts.model.stem == "model" else opts.model.stem,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "input": {**clf.input.to_dict(), "layout": "NHWC", "color": spec_color(train_meta)},
        "output": {**clf.output.to_dict(), "score": clf.score_kind,
                   "meaning": MEANINGS[clf.score_kind]},
        "preprocess": train_meta.preprocess.to_dict(),
        "labels": list(train_meta.labels),
        "threshold": train_meta.threshold,
        "quantization": {
            "scheme": "full-integer int8 (weights per-channel where supported, activations, "
                      "input and output)",
            "calibration": {"n": int(len(calib)), "sources": [str(p) for p in opts.calibration],
                            "seed": opts.seed, "door_frames": door_frames(train_meta)},
        },
        "training": {
            "model_file": str(opts.model) if opts.model_kept else opts.model.name,
            "model_sha256": sha256_file(opts.model),
            "metadata_file": str(train_meta.path) if opts.model_kept else Path(train_meta.path).name,
            "data": train_meta.data,
            **({"details": train_meta.extra} if train_meta.extra else {}),
        },
        "metrics": {
            "training": train_meta.metrics,
            "parity": {**result.to_dict(), "holdout": holdout_source,
                       "holdout_summary": held.summary(), "max_drop_pp": opts.max_drop},
        },
        "size_bytes": tflite_size,
        "runtime": {"converted_with": versions(), "verified_with": clf.runtime},
    }


def spec_color(train_meta: TrainingMeta) -> str:
    return train_meta.preprocess.color


def convert_paths(model: Union[str, Path], calibration: Sequence[Union[str, Path]],
                  out: Union[str, Path], **kwargs) -> Bundle:
    """Convenience for tests and scripts: paths in, verified bundle out."""
    return convert(Options(model=Path(model), calibration=[Path(p) for p in calibration],
                           out=Path(out), **kwargs))
