"""Keras model -> full-integer int8 TFLite, calibrated on prepared training images.

Full-integer means int8 weights (per-channel for convolutions), int8
activations and an int8 input and output tensor, so the device never runs a
float op and never guesses a scale: the interpreter carries scale and zero
point, and ``happyhouse.daemon.runtime.Classifier`` reads them from there.

Calibration images go through ``happyhouse.daemon.preprocess`` exactly as
training's did (sized to the contract's ``size``, as ``happyhouse-train
--size N`` sized them), and the door's crops do.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterator, List, Sequence, Tuple, Union

import numpy as np

from happyhouse.daemon.datasets import Dataset
from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.filesafety import require_file
from happyhouse.daemon.preprocess import Preprocess, to_model_input

log = logging.getLogger(__name__)

#: enough images for stable activation ranges on a small CNN, few enough to stay fast
DEFAULT_CALIBRATION_SIZE = 300


def load_keras_model(path: Union[str, Path]):
    """Load a ``.keras``/``.h5`` model; a missing or corrupt file is a ModelError naming it."""
    path = require_file(path, "Keras model", ModelError)
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"Keras model {path} is corrupt: a .keras file must be a zip archive")
    import keras

    from happyhouse.train import mirror  # noqa: F401  (registers the mirror layers before loading)

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises ValueError/OSError/zip errors for bad files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"Keras model {path} cannot be loaded: {first}") from None
    input_shape = model_input_shape(model, path)
    log.info("loaded %s: input %s, %d parameters", path, input_shape, model.count_params())
    return model


def model_input_shape(model, label: Union[str, Path] = "model") -> Tuple[int, int, int]:
    """(H, W, C) of a single-input, single-output model; anything else is refused."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{label}: the door model needs one input and one output, "
                         f"got {len(model.inputs)} and {len(model.outputs)}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ModelError(f"{label}: input must be N x H x W x C with fixed H, W, C, got {shape}")
    h, w, c = (int(d) for d in shape[1:])
    if c != 3:
        raise ModelError(f"{label}: input must have 3 (RGB) channels, got {c}")
    if h != w:
        raise ModelError(f"{label}: input must be square (the preprocessing crops squares), "
                         f"got {h}x{w}")
    out = tuple(model.outputs[0].shape)
    if int(np.prod([d for d in out[1:]])) != 1:
        raise ModelError(f"{label}: output must be one sigmoid score, got shape {out}")
    return h, w, c


def load_images(paths: Sequence[Union[str, Path]], spec: Preprocess,
                input_shape: Tuple[int, int, int], door_frames: bool = False,
                level=None) -> Dataset:
    """Labelled images from each path, sized and prepared as training prepared them.

    The contract's ``size`` is the model's input size (a contract that
    disagrees with the model is refused: it describes another model), and the
    images go through the loader training used (``load_training_data``): face
    crops of another size are resized exactly as ``happyhouse-train --size N``
    resized them, so calibration and parity see the pixels training saw. A
    model trained with ``--door-frames`` (its metadata says so) learnt from
    whole frames gated and cropped like the door does; its data get the same
    treatment.
    """
    from happyhouse.daemon.datasets import refuse_test_split
    from happyhouse.train.data import load_door_frames, load_training_data

    if not paths:
        raise DataError("no calibration data given (--calibration DATA)")
    if not door_frames:  # a house's adapted model calibrates on its own door frames
        refuse_test_split(paths, "calibrating a general model or its parity hold-out")
    h, w, _ = input_shape
    if spec.size != h:
        raise ModelError(f"the training metadata's preprocess size {spec.size} disagrees with "
                         f"the model input {h}x{w}")
    if door_frames:
        data = load_door_frames(list(paths), spec, level=level)  # levelled as the bundle will
        if data.skipped:
            log.warning("door frames: skipped %d (no face or unreadable)", len(data.skipped))
        return data
    data = load_training_data([str(p) for p in paths], spec)
    if data.skipped:
        log.warning("%s: skipped %d unreadable image(s)", ", ".join(map(str, paths)),
                    len(data.skipped))
    return data


def calibration_sample(labels: np.ndarray, pool: np.ndarray, count: int,
                       seed: int = 0) -> np.ndarray:
    """A seeded sample of ``pool`` indices with both classes in their data proportions, and
    at least one of each class present (a share that rounded to 0 for both classes left
    nothing to calibrate on: "need at least one array to stack")."""
    rng = np.random.default_rng(seed)
    if len(pool) <= count:
        return np.sort(pool)
    members = {label: pool[labels[pool] == label] for label in (0, 1)}
    happy = int(round(count * len(members[1]) / len(pool)))
    if len(members[0]) and len(members[1]):
        happy = min(max(1, happy), count - 1)
    takes = {1: happy, 0: count - happy}
    chosen = [rng.choice(members[label], size=min(takes[label], len(members[label])), replace=False)
              for label in (0, 1)]
    return np.sort(np.concatenate(chosen))


def representative(images_uint8: np.ndarray) -> Iterator[List[np.ndarray]]:
    """One prepared float32 [0, 1] image per step, as the converter's calibration wants."""
    for image in images_uint8:
        yield [to_model_input(image)]


def batch_one(model):
    """The same model, same weights, with its batch size fixed at 1.

    The door scores one crop at a time. A dynamic batch makes the converter
    emit SHAPE/STRIDED_SLICE/PACK before every Flatten, which splits the
    XNNPACK delegate into two partitions (see INT8_SPEED.md).
    """
    import keras

    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), batch_size=1)
    return keras.Model(inputs, model(inputs), name=f"{model.name}_batch1")


def view_logits(model):
    """The same weights with the final sigmoid left out: one logit per view, or None.

    What the int8 file outputs (``view_logits``; the daemon applies the sigmoid
    in float, ``runtime.VIEW_LOGITS`` says why). A mirror-averaged model gives
    two logits per image, the face's and its mirror image's, in ``MirrorPair``'s
    order; the mean of their sigmoids is the Keras model's own score, so parity
    compares like with like. None when the model does not end in a sigmoid Dense
    unit (it is then converted as it is, with a probability output).
    """
    import keras

    from happyhouse.train.mirror import MirrorPair, is_mirror_averaged

    if is_mirror_averaged(model):
        nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        if len(nested) != 1:
            return None
        inner = _logit_model(nested[0])
        if inner is None:
            return None
        image = keras.Input(tuple(model.inputs[0].shape[1:]), name="image")
        return keras.Model(image, inner(MirrorPair(name="mirror_pair")(image)),
                           name=model.name + "_view_logits")
    return _logit_model(model)


def _logit_model(model):
    import keras

    last = model.layers[-1]
    if not (isinstance(last, keras.layers.Dense) and last.units == 1
            and getattr(last.activation, "__name__", "") == "sigmoid"):
        return None
    logit = keras.layers.Dense(1, use_bias=last.use_bias, name=last.name + "_logit")
    out = logit(last.input)
    logit.set_weights(last.get_weights())
    return keras.Model(model.inputs, out, name=model.name + "_logit")


def to_int8_tflite(model, calibration_uint8: np.ndarray) -> bytes:
    """Full-integer quantization: int8 weights, activations, input and output."""
    if len(calibration_uint8) == 0:
        raise DataError("calibration needs at least one image")
    return int8_from_dataset(model, lambda: representative(calibration_uint8))


def int8_from_dataset(model, representative_dataset: Callable[[], Iterator[List[np.ndarray]]]) -> bytes:
    """Full-integer conversion with any representative dataset (float32 batches of 1)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(batch_one(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # builtin int8 ops only: conversion fails rather than leaving a float op behind
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # Keras' export prints its signature to stdout; keep stdout for the CLI's own result
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), warnings.catch_warnings():
            # the input's quantization comes from calibration: TF's "no statistics" note is moot
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            return converter.convert()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"int8 conversion failed (the model has an op without an int8 "
                         f"TFLite kernel?): {first}") from None


def to_float_tflite(model) -> bytes:
    """The same model as float32 TFLite (for speed comparisons, never shipped)."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_keras_model(batch_one(model)).convert()


def keras_scores(model, images_uint8: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Float Keras happy scores for prepared uint8 images."""
    out = model.predict(to_model_input(images_uint8), batch_size=batch_size, verbose=0)
    return np.asarray(out, np.float64).reshape(-1)
