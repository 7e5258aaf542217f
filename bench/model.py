"""Model invoke: the shipped int8 bundle vs the same network as float32 TFLite and Keras.

The float32 TFLite and the Keras rows need the training Keras model that the
bundle records (``model.json`` -> ``training.model_file`` and its sha256,
relative to the working folder) or the one given with ``--keras``. TensorFlow is imported
here only, lazily, and only when such a model is found.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from happyhouse.daemon.errors import ConfigError
from happyhouse.daemon.preprocess import to_model_input

from .stages import now_ns, summary_ms


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def find_keras(bundle, explicit: Optional[str] = None) -> Tuple[Optional[Path], str]:
    """(path, note): the Keras model the bundle was converted from, or None and why not.

    A file is only taken as "the same network" when its sha256 matches the
    bundle's ``training.model_sha256``; an explicit ``--keras`` is used even
    when it does not match, and the note says so. An explicit ``--keras`` that is not
    a file is a ConfigError: its rows were null and the run still exited 0.
    """
    training = bundle.meta.get("training", {}) or {}
    want = training.get("model_sha256")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--keras {path} " + ("is not a file" if path.exists()
                                                    else "does not exist"))
        same = want is not None and _sha256(path) == want
        return path, "matches the bundle" if same else \
            "given with --keras; its sha256 does NOT match the bundle's training model"
    recorded = training.get("model_file")
    # the recorded path is relative to the working folder the bundle was built in
    # (or absolute): never to where this module's source happens to lie
    candidates = [Path(recorded)] if recorded else []
    seen = []
    for path in candidates:
        if path.is_file():
            if want is None or _sha256(path) == want:
                return path, "matches the bundle" if want else "bundle records no sha256"
            seen.append(f"{path} (different sha256)")
    if not candidates:
        return None, "the bundle records no training Keras model; pass --keras PATH"
    looked = ", ".join(seen) if seen else ", ".join(str(p) for p in dict.fromkeys(candidates))
    return None, (f"the bundle's training Keras model is not available (looked at {looked}); "
                  f"pass --keras PATH")


def _time_interleaved(runners: Dict[str, Any], inputs: Dict[str, np.ndarray], rounds: int,
                      per_round: int) -> Dict[str, Dict[str, Any]]:
    """Each round times every runner ``per_round`` invokes, so drift hits all alike."""
    wall: Dict[str, List[int]] = {name: [] for name in runners}
    cpu: Dict[str, List[int]] = {name: [] for name in runners}
    for name, clf in runners.items():
        for _ in range(20):
            clf.invoke_raw(inputs[name])
    for _ in range(rounds):
        for name, clf in runners.items():
            x = inputs[name]
            for _ in range(per_round):
                t0 = now_ns()
                clf.invoke_raw(x)
                t1 = now_ns()
                wall[name].append(t1[0] - t0[0])
                cpu[name].append(t1[1] - t0[1])
    return {name: summary_ms(wall[name], cpu[name]) for name in runners}


def _load_tensorflow(threads: int):
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:  # must happen before the first op; one core means one thread
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tf


def time_models(parts, threads: int, rounds: int, per_round: int, keras_iters: int,
                keras_path: Optional[str] = None, sample: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """int8 (shipped), float32 TFLite and Keras predict on one 64x64 image."""
    from happyhouse.daemon.runtime import Classifier

    clf = parts.classifier
    if sample is None:
        golden = parts.bundle.golden()
        sample = golden[0][0]
    unit = to_model_input(sample)
    runners = {"int8": clf}
    inputs = {"int8": clf.quantize_input(unit)}
    path, note = find_keras(parts.bundle, keras_path)
    out: Dict[str, Any] = {"keras_model": str(path) if path else None, "keras_note": note,
                           "runtime": clf.runtime, "threads": threads}
    model = None
    if path is not None:
        from happyhouse.convert.quantize import load_keras_model, to_float_tflite

        _load_tensorflow(threads)
        model = load_keras_model(path)
        blob = to_float_tflite(model)
        runners["float32"] = Classifier(blob, threads=threads)
        inputs["float32"] = runners["float32"].quantize_input(unit)
        out["float32_bytes"] = len(blob)
    out["int8_bytes"] = parts.bundle.model_path.stat().st_size
    timed = _time_interleaved(runners, inputs, rounds, per_round)
    out["int8"] = timed["int8"]
    out["float32"] = timed.get("float32")
    out["keras"] = out["keras_call"] = None
    if model is not None:
        out.update(_time_keras(model, unit, keras_iters))
        scores = {name: float(runners[name].score_from_raw(runners[name].invoke_raw(inputs[name]))[0])
                  for name in runners}
        scores["keras"] = float(np.asarray(model.predict(unit, verbose=0)).reshape(()))
        out["scores"] = {k: round(v, 4) for k, v in scores.items()}
    return out


def _time_keras(model, unit: np.ndarray, iters: int) -> Dict[str, Any]:
    """``model.predict(x)`` on one image, as the tutorial did; and a direct call for reference."""
    for _ in range(3):
        model.predict(unit, verbose=0)
        model(unit, training=False)
    predict: Tuple[List[int], List[int]] = ([], [])
    call: Tuple[List[int], List[int]] = ([], [])
    for _ in range(iters):
        t0 = now_ns()
        model.predict(unit, verbose=0)
        t1 = now_ns()
        np.asarray(model(unit, training=False))
        t2 = now_ns()
        for store, start, end in ((predict, t0, t1), (call, t1, t2)):
            store[0].append(end[0] - start[0])
            store[1].append(end[1] - start[1])
    return {"keras": summary_ms(*predict), "keras_call": summary_ms(*call)}
