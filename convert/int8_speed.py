"""Why is int8 slower than float32 here? Time each model under each LiteRT kernel path.

A probe, not the product benchmark: it converts a model (the tutorial
``happymodel`` by default, or ``--model``) and a few single-layer variants to
float32 and int8 TFLite, then times one invoke under each op resolver:

* ``xnnpack``: ``BUILTIN`` (LiteRT applies the XNNPACK delegate by default)
* ``builtin``: ``BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (TFLite's optimized
  kernels: ruy GEMM after im2col for convolutions)
* ``ref``: ``BUILTIN_REF`` (reference kernels; very slow, only with ``--ref``)

Timings are interleaved (every interpreter runs once per round) and the
median per-invoke time is reported, so a machine shared with other work
slows every row alike. Findings: ``convert/INT8_SPEED.md``.

    python -m happyhouse.convert.int8_speed [--model M.keras] [--sweep] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from happyhouse.daemon.errors import ConfigError, refuse_unless
from happyhouse.daemon.filesafety import a_path

from .quantize import int8_from_dataset, to_float_tflite

RESOLVERS = ("xnnpack", "builtin", "ref")
#: the name its one-line errors and Ctrl-C carry (the shared ``happyhouse-...`` form)
PROG = "happyhouse-convert-int8-speed"


def tutorial_model(input_channels: int = 3, kernel: int = 7, filters: int = 32,
                   head: str = "flatten"):
    """The course's happymodel (ZeroPadding2D(3), Conv 7x7, BN, ReLU, MaxPool, Flatten, Dense)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    tail = [layers.Flatten()] if head == "flatten" else [layers.GlobalAveragePooling2D()]
    return keras.Sequential([
        keras.Input((64, 64, input_channels)),
        layers.ZeroPadding2D(kernel // 2), layers.Conv2D(filters, kernel),
        layers.BatchNormalization(), layers.Activation("relu"), layers.MaxPooling2D(2),
        *tail, layers.Dense(1, activation="sigmoid")])


def conv_only(input_channels: int, kernel: int = 7, filters: int = 32):
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((64, 64, input_channels)),
                             layers.Conv2D(filters, kernel, padding="same", activation="relu")])


def interpreter(model: bytes, resolver: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = {"xnnpack": OpResolverType.BUILTIN,
            "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            "ref": OpResolverType.BUILTIN_REF}[resolver]
    interp = Interpreter(model_content=model, num_threads=threads,
                         experimental_op_resolver_type=kind)
    interp.allocate_tensors()
    detail = interp.get_input_details()[0]
    interp.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    return interp


def ops(interp) -> List[str]:
    return [op["op_name"] for op in interp._get_ops_details()]


def time_interleaved(interps: Sequence, rounds: int, invokes: int, warmup: int = 20) -> List[float]:
    """Median per-invoke milliseconds of each interpreter, rounds interleaved."""
    for interp in interps:
        for _ in range(warmup):
            interp.invoke()
    samples: List[List[float]] = [[] for _ in interps]
    for _ in range(rounds):
        for k, interp in enumerate(interps):
            start = time.perf_counter()
            for _ in range(invokes):
                interp.invoke()
            samples[k].append((time.perf_counter() - start) * 1000.0 / invokes)
    return [float(np.median(s)) for s in samples]


def random_images(channels: int, count: int = 64) -> np.ndarray:
    """Calibration stand-ins: kernel choice and cost do not depend on the ranges learnt."""
    return np.random.default_rng(0).integers(0, 256, (count, 64, 64, channels), dtype=np.uint8)


def convert_pair(model, calibration: np.ndarray) -> Dict[str, bytes]:
    """float32 and int8 TFLite; calibration is uint8 N x 64 x 64 x C (any C)."""
    def batches():
        for image in calibration:
            yield [image[None].astype(np.float32) / np.float32(255.0)]

    return {"float32": to_float_tflite(model), "int8": int8_from_dataset(model, batches)}


def variants(args) -> List[Tuple[str, object, np.ndarray]]:
    rows = []
    if args.model:
        from .quantize import load_keras_model

        rows.append((f"{args.model}", load_keras_model(args.model), random_images(3)))
    else:
        rows.append(("tutorial happymodel", tutorial_model(), random_images(3)))
        rows.append(("tutorial, GAP head instead of Flatten", tutorial_model(head="gap"),
                     random_images(3)))
    if args.train_default:  # beside --model too: the row was dropped silently with it
        from happyhouse.train.models import DEFAULT_ARCH, build

        rows.append((f"train '{DEFAULT_ARCH}' architecture", build(DEFAULT_ARCH), random_images(3)))
    if args.sweep:
        for cin in (1, 3, 8, 16):
            rows.append((f"Conv 7x7 {cin}->32 only", conv_only(cin), random_images(cin)))
        rows.append(("Conv 3x3 3->32 only", conv_only(3, kernel=3), random_images(3)))
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m happyhouse.convert.int8_speed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=a_path, help="a Keras model instead of the tutorial happymodel")
    parser.add_argument("--sweep", action="store_true", help="add single-conv variants (channels, kernel)")
    parser.add_argument("--train-default", action="store_true",
                        help="add the training default architecture (happyhouse.train.models), "
                             "also beside --model")
    parser.add_argument("--ref", action="store_true", help="also time the reference kernels (slow)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--invokes", type=int, default=100)
    args = parser.parse_args(argv)
    from happyhouse.daemon.cli_errors import run_main

    return run_main(PROG, lambda: _main(args))


#: more interpreter threads than any machine here has cores (LiteRT takes a C int)
MAX_THREADS = 256


def check_counts(args: argparse.Namespace) -> None:
    """One line, before any model is converted, for a count nothing can be timed with
    (``--rounds 0`` printed nan for every row)."""
    refuse_unless(((1 <= args.threads <= MAX_THREADS,  # 99999999999 overflowed LiteRT's int
                    f"--threads must be 1 to {MAX_THREADS}, got {args.threads}"),
                   (args.rounds >= 1, f"--rounds must be at least 1, got {args.rounds}"),
                   (args.invokes >= 1, f"--invokes must be at least 1, got {args.invokes}")),
                  ConfigError)


def _main(args: argparse.Namespace) -> int:
    check_counts(args)
    resolvers = RESOLVERS if args.ref else RESOLVERS[:2]
    names, interps = [], []
    for label, model, calib in variants(args):
        for dtype, blob in convert_pair(model, calib).items():
            for resolver in resolvers:
                interp = interpreter(blob, resolver, args.threads)
                names.append((label, dtype, resolver, len(blob), " ".join(ops(interp))))
                interps.append(interp)
    times = time_interleaved(interps, args.rounds, args.invokes)
    sys.stdout.write(f"| model | dtype | kernels | bytes | ms/invoke ({args.threads} thread) | ops |\n"
                     "|---|---|---|---|---|---|\n")
    for (label, dtype, resolver, size, op_list), ms in zip(names, times):
        sys.stdout.write(f"| {label} | {dtype} | {resolver} | {size:,} | {ms:.3f} | {op_list} |\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
